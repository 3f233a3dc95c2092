"""The project's labelled corpus: every row valid, and the coverage the model and tests rely on."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import opencc
import pytest

from model.corpus.rows import (
    BANK_BRANDS,
    CORPUS_DIR,
    LABELS,
    LENDER_BRANDS,
    SHORT_MAX_CHARS,
    iter_rows,
    load_rows,
    row_problems,
)
from model.corpus.stats import report
from model.corpus.variants import VARIANTS_FILE, build_variants

ROWS: list[dict[str, Any]] = load_rows()
SMS = [row for row in ROWS if row["kind"] == "sms"]
CALLS = [row for row in ROWS if row["kind"] == "call"]


def _with_label(label: str, rows: list[dict[str, Any]] = SMS) -> list[dict[str, Any]]:
    return [row for row in rows if row["label"] == label]


def _digits(sender: str) -> str:
    return re.sub(r"\D", "", sender)


# --- the validator itself -------------------------------------------------------------------

GOOD_SMS = {
    "id": "dc-scam-9999",
    "kind": "sms",
    "sender": "+86 171 2345 6789",
    "text": "【支付宝】您的借呗已冻结，请缴纳解冻费。",
    "label": "scam",
    "brand": "alipay",
    "scenario": "fee_to_unfreeze",
    "variant": "plain",
    "batch": "b1",
    "provenance": "written by the dunscan project (synthetic)",
}
GOOD_CALL = {
    "id": "dc-call-9999",
    "kind": "call",
    "sender": "+95188",
    "duration_s": 42,
    "direction": "incoming",
    "label": "scam",
    "brand": "alipay",
    "scenario": "international_spoof",
    "variant": "plain",
    "batch": "calls",
    "provenance": "written by the dunscan project (synthetic)",
}


def test_validator_accepts_well_formed_rows() -> None:
    assert row_problems(GOOD_SMS) == []
    assert row_problems(GOOD_CALL) == []


@pytest.mark.parametrize(
    ("base", "change", "expected"),
    [
        (GOOD_SMS, {"label": "spam"}, "label"),
        (GOOD_SMS, {"kind": "email"}, "kind"),
        (GOOD_SMS, {"variant": "leet"}, "variant"),
        (GOOD_SMS, {"brand": "alibaba"}, "unknown brand"),
        (GOOD_SMS, {"text": "短"}, "sms text"),
        (GOOD_SMS, {"text": "长" * 301}, "sms text"),
        (GOOD_SMS, {"provenance": "copied from somewhere"}, "provenance"),
        (GOOD_SMS, {"scenario": "fee to unfreeze"}, "scenario"),
        (GOOD_SMS, {"id": 17}, "id"),
        (GOOD_CALL, {"sender": None}, "a call needs a sender"),
        (GOOD_CALL, {"duration_s": -1}, "duration_s"),
        (GOOD_CALL, {"duration_s": "42"}, "duration_s"),
        (GOOD_CALL, {"direction": "sideways"}, "direction"),
        (GOOD_CALL, {"text": "通话记录"}, "no text"),
    ],
)
def test_validator_rejects_broken_rows(base: dict, change: dict, expected: str) -> None:
    problems = row_problems({**base, **change})
    assert any(expected in problem for problem in problems), problems


def test_validator_reports_missing_fields() -> None:
    row = {key: value for key, value in GOOD_SMS.items() if key != "provenance"}
    assert row_problems(row) == ["missing field 'provenance'"]


# --- every row ------------------------------------------------------------------------------


def test_every_row_is_valid() -> None:
    problems = [
        f"{path.name}:{number} {row.get('id')}: {problem}"
        for path, number, row in iter_rows()
        for problem in row_problems(row)
    ]
    assert problems == []


def test_ids_are_unique() -> None:
    duplicates = [key for key, count in Counter(row["id"] for row in ROWS).items() if count > 1]
    assert duplicates == []


def test_texts_are_unique_even_ignoring_whitespace() -> None:
    texts = Counter(re.sub(r"\s+", "", row["text"]) for row in SMS)
    assert [text for text, count in texts.items() if count > 1] == []


def test_short_variant_means_a_short_text() -> None:
    wrong = [
        row["id"] for row in SMS if row["variant"] == "short" and len(row["text"]) > SHORT_MAX_CHARS
    ]
    assert wrong == []


# --- label honesty --------------------------------------------------------------------------

MOBILE = re.compile(r"^(?:\+?86)?1[3-9]\d{9}$")


def test_no_legit_row_comes_from_a_mobile_or_a_foreign_number() -> None:
    """Platforms send from ports and hotlines. The one exception: an agency the platform entrusted
    (受…委托) sending a polite reminder from a mobile, which real borrowers do receive."""
    suspicious = []
    for row in _with_label("legit", ROWS):
        sender = (row["sender"] or "").replace(" ", "").replace("-", "")
        foreign = sender.startswith(("+", "00")) and not sender.startswith(("+86", "0086"))
        text = row.get("text") or ""
        entrusted = "委托" in text or "委託" in text
        agency = row["scenario"] in {"collection_notice", "negotiation_notice"} and entrusted
        if foreign or (MOBILE.match(sender) and not agency):
            suspicious.append(row["id"])
    assert suspicious == []


# A legit reminder may mention codes only to say "do not share"; it never asks for one back.
ASKS_FOR_SECRET = re.compile(
    r"(回复|发给|告诉|提供|报给|念给|发送)[^，。！]{0,12}(验证码|密码|CVV|有效期)"
)


def test_no_legit_row_asks_for_a_code_or_password() -> None:
    to_simplified = opencc.OpenCC("t2s")
    texts = {row["id"]: to_simplified.convert(row["text"]) for row in _with_label("legit")}
    asking = [
        key
        for key, text in texts.items()
        if ASKS_FOR_SECRET.search(text) and not re.search(r"(勿|不要|不会|切勿|不得)", text)
    ]
    assert asking == []


# --- coverage -------------------------------------------------------------------------------


def test_size_and_label_mix() -> None:
    counts = Counter(row["label"] for row in ROWS)
    assert len(ROWS) >= 1000
    assert set(counts) == set(LABELS)
    shares = {label: counts[label] / len(ROWS) for label in LABELS}
    assert shares["scam"] >= 0.35
    assert shares["legit"] >= 0.20
    assert shares["abusive"] >= 0.12
    assert shares["other"] >= 0.15


def test_calls_and_variants_minimums() -> None:
    variants = Counter(row["variant"] for row in ROWS)
    assert len(CALLS) >= 60
    assert variants["traditional"] >= 60
    assert variants["obfuscated"] >= 60
    assert {row["label"] for row in CALLS} >= {"scam", "legit", "other"}


@pytest.mark.parametrize("brand", LENDER_BRANDS + BANK_BRANDS)
def test_every_lender_and_bank_has_genuine_and_impersonating_rows(brand: str) -> None:
    labels = {row["label"] for row in SMS if row["brand"] == brand}
    assert {"legit", "scam"} <= labels


@pytest.mark.parametrize(
    "scenario",
    [
        "fee_to_unfreeze",
        "credential_request",
        "screen_share",
        "safe_account",
        "student_loan_cancel",
        "credit_repair",
        "fake_authority",
        "off_platform_contact",
        "suspicious_link",
        "callback_mismatch",
        "refund_lure",
        "limit_clear",
        "insurance_renewal",
        "service_close",
        "negotiation_fee",
    ],
)
def test_every_scam_type_is_covered(scenario: str) -> None:
    assert len([row for row in _with_label("scam") if row["scenario"] == scenario]) >= 5


@pytest.mark.parametrize(
    "scenario",
    [
        "contact_book_threat",
        "relatives_threat",
        "employer_threat",
        "home_visit",
        "exposure",
        "insult",
        "intimidation",
    ],
)
def test_every_abusive_type_is_covered(scenario: str) -> None:
    assert len([row for row in _with_label("abusive") if row["scenario"] == scenario]) >= 5


@pytest.mark.parametrize(
    ("label", "scenario"),
    [
        ("legit", "genuine_reminder"),
        ("legit", "otp_notice"),
        ("legit", "repayment_receipt"),
        ("legit", "statement"),
        ("legit", "antifraud_warning"),
        ("other", "ad"),
        ("other", "delivery"),
        ("other", "personal"),
        ("other", "carrier"),
        ("other", "loan_ad"),
    ],
)
def test_everyday_scenarios_are_covered(label: str, scenario: str) -> None:
    assert len([row for row in _with_label(label) if row["scenario"] == scenario]) >= 5


SENDER_SHAPES = {
    "95xxx short code": re.compile(r"^95\d{3,4}$"),
    "106 port": re.compile(r"^106\d{5,}$"),
    "mobile": re.compile(r"^1(3|5|8)\d{9}$"),
    "virtual mobile": re.compile(r"^(\+?86)?1(62|65|67|70|71)\d{8}$"),
    "400 number": re.compile(r"^400\d{7}$"),
    "landline with area code": re.compile(r"^0[1-9]\d{1,2}[2-8]\d{6,7}$"),
    "area code + 95xxx": re.compile(r"^0[1-9]\d{1,2}95\d{3}$"),
    "+86 prefix": re.compile(r"^\+86"),
    "international": re.compile(r"^(\+|00)(?!86)"),
}


@pytest.mark.parametrize("shape", SENDER_SHAPES)
def test_every_sender_shape_is_present(shape: str) -> None:
    pattern = SENDER_SHAPES[shape]
    senders = [row["sender"] for row in ROWS if row["sender"]]
    compact = [s.replace(" ", "").replace("-", "") for s in senders]
    matching = [s for s in compact if pattern.match(s)]
    assert len(matching) >= 3, shape


def test_shared_text_without_sender_is_present() -> None:
    assert {row["label"] for row in SMS if row["sender"] is None} == set(LABELS)


def test_international_spoof_of_an_official_number_is_a_scam_call() -> None:
    spoofs = [
        row
        for row in CALLS
        if _digits(row["sender"]) in ("95188", "0095188") and row["sender"].startswith(("+", "00"))
    ]
    plain = [row for row in CALLS if row["sender"] == "95188"]
    assert spoofs and all(row["label"] == "scam" for row in spoofs)
    assert plain and all(row["label"] == "legit" for row in plain)


def test_every_batch_has_every_label() -> None:
    batches = {row["batch"] for row in SMS}
    assert len(batches) >= 5
    for batch in batches:
        assert {row["label"] for row in SMS if row["batch"] == batch} == set(LABELS), batch


# --- derived variants -----------------------------------------------------------------------


def test_variants_file_is_what_the_generator_produces() -> None:
    base = [row for row in ROWS if "derived_from" not in row]
    on_disk = [row for row in ROWS if "derived_from" in row]
    stale = f"{VARIANTS_FILE.name} is stale: rerun python -m model.corpus.variants"
    assert build_variants(base) == on_disk, stale


def test_derived_rows_keep_their_source_label_and_batch() -> None:
    by_id = {row["id"]: row for row in ROWS}
    for row in ROWS:
        if "derived_from" in row:
            source = by_id[row["derived_from"]]
            kept = ("label", "brand", "scenario", "batch", "sender")
            assert {k: row[k] for k in kept} == {k: source[k] for k in kept}, row["id"]


def test_traditional_rows_really_are_traditional() -> None:
    to_simplified = opencc.OpenCC("t2s")
    unchanged = [
        row["id"]
        for row in SMS
        if row["variant"] == "traditional" and to_simplified.convert(row["text"]) == row["text"]
    ]
    assert unchanged == []


def test_readme_counts_are_current() -> None:
    readme = (CORPUS_DIR / "README.md").read_text(encoding="utf-8")
    stale = "README counts are stale: rerun python -m model.corpus.stats into the Counts section"
    assert readme.endswith(report(ROWS)), stale
