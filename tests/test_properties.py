"""Properties over generated input (hypothesis): phone-number masking in logs, the normalisation
offset map, and the request parsers that meet whatever the internet sends.

Runs are derandomized (a fixed seed per test, from its name), so CI sees the same cases on every
run; `--hypothesis-seed` or HYPOTHESIS_PROFILE=explore widens a local search.
"""

from __future__ import annotations

import json
import os
import unicodedata
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from service.app import create_app
from service.engine.normalize import normalize
from service.engine.numbers.parse import NumberType
from service.engine.pipeline import Analyzer
from service.logs import mask_hook_tokens, mask_numbers, scrub_text
from service.phones.smsforwarder import ForwarderRequestError, to_record
from service.phones.store import HookInfo, create_hook, store_for

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,  # the machine is shared: a slow example is not a failure
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile("explore", parent=settings.get_profile("ci"), derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

FULL_WIDTH = {str(d): chr(0xFF10 + d) for d in range(10)}
# Every separator form the issue names, ASCII and full-width, and the ones people type.
SEPARATORS = ["", " ", "-", ".", "_", "\u3000", "－", "．", "＿", "·", " - ", "\t"]
# Context around a number in a log line or message: Chinese, punctuation, spaces; never a digit
# or a Latin letter glued to it (those are spared on purpose: request ids, hashes).
CONTEXT = st.text(
    alphabet=st.sampled_from(list("您好请回电联系客服，。：:；！？【】“” \n话号码电")), max_size=8
)


@st.composite
def written_numbers(draw: st.DrawFn) -> tuple[str, str]:
    """(the number as someone wrote it, its 11 national digits)."""
    national = (
        "1"
        + draw(st.sampled_from("3456789"))
        + "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=9, max_size=9)))
    )
    country = draw(st.sampled_from(["", "+86", "+86 ", "0086", "0086-", "＋86", "+86."]))
    cuts = draw(st.sampled_from([(), (3, 7), (3,), (7,), (3, 5, 7, 9), (4, 8)]))
    groups, previous = [], 0
    for cut in (*cuts, 11):
        groups.append(national[previous:cut])
        previous = cut
    written = groups[0]
    for group in groups[1:]:
        written += draw(st.sampled_from(SEPARATORS)) + group
    digit_style = draw(st.sampled_from(["ascii", "full", "mixed"]))
    if digit_style != "ascii":
        written = "".join(
            FULL_WIDTH[ch]
            if ch.isdigit() and (digit_style == "full" or draw(st.booleans()))
            else ch
            for ch in written
        )
    return country + written, national


def _flat_digits(text: str) -> str:
    """NFKC digits of a text, with everything that is not a digit or a mask star dropped."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text) if ch.isdigit() or ch == "*")


@given(written_numbers(), CONTEXT, CONTEXT)
@settings(max_examples=600)
def test_no_phone_number_survives_masking(number: tuple[str, str], before: str, after: str) -> None:
    written, national = number
    masked = mask_numbers(f"{before}{written}{after}")
    flat = _flat_digits(masked)
    # The subscriber digits are gone: no six consecutive digits of the number remain anywhere.
    for start in range(len(national) - 5):
        assert national[start : start + 6] not in flat, (written, masked)
    assert "****" in masked
    # And the text around it is untouched.
    assert masked.startswith(before) and masked.endswith(after)


@given(st.lists(written_numbers(), min_size=2, max_size=4), CONTEXT)
@settings(max_examples=200)
def test_every_number_in_a_line_is_masked(numbers: list[tuple[str, str]], glue: str) -> None:
    line = "，".join(written for written, _ in numbers) + glue
    flat = _flat_digits(mask_numbers(line))
    for _, national in numbers:
        assert national[3:9] not in flat


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Nd")), max_size=60))
@settings(max_examples=300)
def test_text_without_digits_is_left_alone(text: str) -> None:
    if "/hooks/sf/" in text:
        return
    assert scrub_text(text) == text


@given(
    st.lists(
        st.one_of(
            st.text(max_size=12),
            st.sampled_from(["/hooks/sf/", "AbCdEfGh1234", "171", "２345", "6789", " ", "-"]),
        ),
        max_size=8,
    ).map("".join)
)
@settings(max_examples=300)
def test_the_quick_path_scrubs_exactly_as_the_full_one(text: str) -> None:
    """scrub_text skips the scans a string cannot need (no digit, no hook path): the result is
    the full scrub's, always."""
    assert scrub_text(text) == mask_numbers(mask_hook_tokens(text))


@given(
    st.integers(min_value=0, max_value=999_999),
    st.sampled_from(["took {} ms", "{} 条", "rules 2026-11-22 n={}", "v2026.11.30 #{}"]),
)
def test_counts_dates_and_versions_are_kept(count: int, template: str) -> None:
    line = template.format(count)
    assert mask_numbers(line) == line


@given(
    st.sampled_from(["GET", "POST", "DELETE", "TRACE", "PUT", "PROPFIND"]),
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
        min_size=8,
        max_size=40,
    ),
    st.text(max_size=30).filter(lambda s: not any(c.isspace() for c in s)),
)
def test_hook_tokens_are_cut_to_four_characters(method: str, token: str, rest: str) -> None:
    line = scrub_text(f"{method} /hooks/sf/{token}{rest} 405")
    assert token not in line
    assert f"/hooks/sf/{token[:4]}…" in line


# --- normalisation: every normalised character points back into the original -----------------

MESSAGE_ALPHABET = st.one_of(
    st.characters(min_codepoint=0x4E00, max_codepoint=0x4FFF),  # CJK
    st.sampled_from(list("借唄賬戶凍結還款")),  # Traditional
    st.sampled_from(list("０１２３４５６７８９ＡＢＣａｂｃ")),  # full-width
    st.sampled_from(list("vVwWxX信薇微❤ 　\t\n*·-._|/+#")),  # obfuscations and fillers
    st.sampled_from(
        ["\u200b", "\ufe0f", "😀", "\u0301", "ﬁ", "㈱", "①"]
    ),  # marks, emoji, ligatures
    st.characters(blacklist_categories=("Cs",)),  # anything else that is text
)


@given(st.text(alphabet=MESSAGE_ALPHABET, max_size=80))
@settings(max_examples=400)
def test_the_offset_map_is_complete_ordered_and_inside_the_original(text: str) -> None:
    result = normalize(text)
    assert len(result.starts) == len(result.ends) == len(result.text)
    for start, end in zip(result.starts, result.ends, strict=True):
        assert 0 <= start < end <= len(text)
    assert list(result.starts) == sorted(result.starts)
    for i in range(len(result.text)):
        for j in range(i + 1, min(len(result.text), i + 6) + 1):
            original_start, original_end = result.span(i, j)
            assert 0 <= original_start < original_end <= len(text)
            assert result.evidence(i, j) == text[original_start:original_end]


# --- request parsers: whatever arrives, an answer that is not a 5xx --------------------------


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, analyzer: Analyzer) -> Flask:
    config = {
        "TESTING": True,
        "DATABASE_URL": f"sqlite:///{tmp_path_factory.mktemp('props') / 'p.sqlite3'}",
        "RATELIMIT_ENABLED": False,
        "NOTIFY_WORKER": 0,
    }
    return create_app(config, analyzer=analyzer)


@pytest.fixture(scope="module")
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="module")
def hook(app: Flask) -> HookInfo:
    return create_hook("props", store=store_for(app))


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=40),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "text",
                    "sender",
                    "kind",
                    "id",
                    "received_at",
                    "duration_s",
                    "direction",
                    "records",
                    "from",
                    "org_content",
                    "content",
                    "timestamp",
                    "sign",
                ]
            )
            | st.text(max_size=8),
            children,
            max_size=6,
        )
    ),
    max_leaves=20,
)
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-16",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/plain",
        "text/plain; charset=gbk",
        "text/plain; charset=nope",
        "application/octet-stream",
        "",
    ]
)


@given(
    st.sampled_from(["", "+86", "0086", "+86 "]),
    st.integers(min_value=100, max_value=199),
    st.text(alphabet="0123456789", min_size=8, max_size=8),
)
@example("", 179, "84008343")  # China's IP-dialling prefix 17984 + 00, then 8343
@example("+86", 179, "12008343")
@settings(max_examples=1000)
def test_every_eleven_digit_number_is_classified(
    analyzer: Analyzer, country: str, segment: int, subscriber: str
) -> None:
    """Any mobile-like sender, whatever its segment, parses to a type, never an exception (which
    an API request would answer with a 500): "17984008343" once raised inside phonenumbers."""
    info = analyzer.directory.classify(f"{country}{segment}{subscriber}")
    assert isinstance(info.type, NumberType)
    assert info.type is not NumberType.INVALID or info.brand is None


def _assert_answered(response: Any) -> None:
    assert response.status_code < 500, response.get_data()[:300]
    if response.status_code >= 400:
        assert response.mimetype == "application/json"
        assert response.get_json()["error"]["message"]


@given(JSON_VALUES)
@settings(max_examples=300)
def test_any_json_to_check_and_batch_is_answered(client: FlaskClient, body: Any) -> None:
    data = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    _assert_answered(client.post("/v1/check", data=data, content_type="application/json"))
    batch = json.dumps({"records": [body, body]}).encode()
    _assert_answered(client.post("/v1/check/batch", data=batch, content_type="application/json"))


@given(st.binary(max_size=200), CONTENT_TYPES)
@settings(max_examples=300)
def test_any_bytes_in_any_content_type_are_answered(
    client: FlaskClient, hook: HookInfo, data: bytes, content_type: str
) -> None:
    _assert_answered(client.post("/v1/check", data=data, content_type=content_type))
    _assert_answered(client.post(hook.path, data=data, content_type=content_type))


@given(JSON_VALUES)
@settings(max_examples=300)
def test_any_json_to_a_hook_is_answered(client: FlaskClient, hook: HookInfo, body: Any) -> None:
    data = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    _assert_answered(client.post(hook.path, data=data, content_type="application/json"))


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "from",
                "org_content",
                "content",
                "kind",
                "receive_time",
                "timestamp",
                "body",
                "sender",
                "text",
            ]
        ),
        st.text(max_size=60),
        max_size=6,
    )
)
@settings(max_examples=400)
def test_the_forwarder_parser_gives_a_record_or_says_why(fields: dict[str, str]) -> None:
    try:
        record = to_record(fields)
    except (ForwarderRequestError, ValidationError):
        return
    assert record.kind in ("sms", "call")
    if record.kind == "sms":
        assert (record.text or "").strip()
