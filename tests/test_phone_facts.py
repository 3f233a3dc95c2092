"""归属地 and carrier for the sender and every number in the text
(service/engine/numbers/phone_facts.py), in the verdict JSON, the /v1/numbers answer, the OpenAPI
document and the CLI's text summary."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import phonenumbers
import pytest
from flask.testing import FlaskClient

from service.engine.numbers.directory import Directory
from service.engine.numbers.phone_facts import (
    _carrier_name,
    _place,
    phone_facts,
    prefix_arrays,
)
from service.engine.pipeline import Analyzer
from service.engine.schemas import parse_record
from service.paths import PHONE_PREFIXES_PATH


@pytest.fixture(scope="module")
def directory(analyzer: Analyzer) -> Directory:
    return analyzer.directory


# Real allocations: 138 (China Mobile, Beijing block 1380013), 186 (China Unicom), 0571 Hangzhou
# and 021 Shanghai landlines, the MVNO segments of number_facts.md §6, a Hong Kong mobile, a
# London landline, China Broadnet's 192.
@pytest.mark.parametrize(
    ("number", "location", "carrier", "virtual"),
    [
        ("13800138000", "北京市", "中国移动", False),
        ("+86 186 1234 5678", "北京市", "中国联通", False),
        ("0571-8888-8888", "浙江省杭州市", None, False),
        ("021 6123 4567", "上海市", None, False),
        ("057195188", "浙江省杭州市", None, False),  # 区号+95188: the area code's place
        ("19212345678", None, "中国广电", False),
        # Virtual operators, named as such with the network they resell. phonenumbers alone gives
        # "" for 162/165 and the bare host for 167/170x/171.
        ("17123456789", None, "虚拟运营商（中国联通网络）", True),
        ("16712345678", None, "虚拟运营商（中国联通网络）", True),
        ("16212345678", None, "虚拟运营商（中国电信网络）", True),
        ("16512345678", None, "虚拟运营商（中国移动网络）", True),
        ("17001234567", "北京市", "虚拟运营商（中国电信网络）", True),
        ("17051234567", None, "虚拟运营商（中国移动网络）", True),
        ("17081234567", "天津市", "虚拟运营商（中国联通网络）", True),
        ("1440123456789", None, "物联网卡", False),
        ("+852 6123 4567", "香港", "香港移动通讯", False),
        ("+44 20 7946 0000", "英国", None, False),
        # No 归属地 for service numbers: "中国" from the geocoder is not a place.
        ("400-820-8888", None, None, False),
        ("95188", None, None, False),
        ("10690095188", None, None, False),
        ("87654321", None, None, False),  # a local landline without its area code
    ],
)
def test_location_and_carrier_of_real_numbers(
    directory: Directory, number: str, location: str | None, carrier: str | None, virtual: bool
) -> None:
    facts = phone_facts(directory.classify(number))
    assert (facts.location, facts.carrier, facts.virtual_operator) == (location, carrier, virtual)


def test_english_names(directory: Directory) -> None:
    assert phone_facts(directory.classify("13800138000"), "en").location == "Beijing"
    assert phone_facts(directory.classify("13800138000"), "en").carrier == "China Mobile"
    assert phone_facts(directory.classify("17123456789"), "en").carrier == (
        "MVNO (China Unicom network)"
    )


def test_invalid_number_has_no_facts(directory: Directory) -> None:
    facts = phone_facts(directory.classify("abc"))
    assert (facts.location, facts.carrier) == (None, None)
    assert phone_facts(None).location is None


TEXT = "【支付宝】您的借呗已逾期，请致电 138-0013-8000 或 +852 6123 4567，官方 95188"


def test_verdict_carries_facts_for_the_sender_and_every_number(analyzer: Analyzer) -> None:
    verdict = analyzer.check(parse_record({"text": TEXT, "sender": "+86 171 2345 6789"}))
    assert verdict.sender is not None
    assert verdict.sender.carrier == "虚拟运营商（中国联通网络）"
    assert verdict.sender.virtual_operator is True
    found = [(n.raw, n.location, n.carrier) for n in verdict.numbers_in_text]
    assert found == [
        ("138-0013-8000", "北京市", "中国移动"),
        ("+852 6123 4567", "香港", "香港移动通讯"),
        ("95188", None, None),
    ]
    for number in verdict.numbers_in_text:
        assert number.span is not None
        assert TEXT[number.span[0] : number.span[1]] == number.raw
    assert verdict.numbers_in_text[2].official is True


def test_api_verdict_and_number_lookup(client: FlaskClient) -> None:
    body = client.post("/v1/check", json={"text": TEXT, "sender": "17001234567"}).get_json()
    assert body["sender"]["location"] == "北京市"
    assert body["sender"]["carrier"] == "虚拟运营商（中国电信网络）"
    assert [n["raw"] for n in body["numbers_in_text"]] == [
        "138-0013-8000",
        "+852 6123 4567",
        "95188",
    ]
    english = client.post("/v1/check?lang=en", json={"text": TEXT}).get_json()
    assert english["numbers_in_text"][0]["location"] == "Beijing"

    number = client.get("/v1/numbers/13800138000").get_json()
    assert (number["location"], number["carrier"]) == ("北京市", "中国移动")


def test_old_clients_still_validate_and_the_document_describes_the_fields(
    client: FlaskClient,
) -> None:
    schemas = client.get("/openapi.json").get_json()["components"]["schemas"]
    # Backward compatible: the new fields are optional, none of them required.
    for name in ("location", "carrier", "virtual_operator"):
        assert name in schemas["SenderInfo"]["properties"]
        assert name not in schemas["SenderInfo"].get("required", [])
        assert name in schemas["NumberResponse"]["properties"]
    assert "numbers_in_text" in schemas["Verdict"]["properties"]
    assert "numbers_in_text" not in schemas["Verdict"]["required"]
    assert schemas["NumberInText"]["properties"]["span"]


def test_cli_text_summary_names_place_and_carrier() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "check", "--format=text", "--from=17123456789", TEXT],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "发件号码 17123456789：虚拟运营商（中国联通网络）" in result.stdout
    assert "短信里的号码 138-0013-8000：北京市 中国移动" in result.stdout


def test_the_server_reads_the_prefix_data_before_forking_and_never_the_full_geocoder() -> None:
    # In a fresh interpreter: loading the analyzer leaves the prefix data unread (the CLI reads it
    # only when a number needs it); warm(), which the app runs in the gunicorn master before the
    # workers fork, reads it so the workers share one copy. phonenumbers' own geocoder and
    # carrier modules (~110 MB of dicts) are never imported, even after a check with numbers.
    script = (
        "import sys\n"
        "from service.engine.numbers import phone_facts\n"
        "from service.engine.pipeline import Analyzer\n"
        "from service.engine.schemas import parse_record\n"
        "analyzer = Analyzer.load(use_model=False)\n"
        "print(phone_facts._prefix_data.cache_info().currsize)\n"
        "analyzer.warm()\n"
        "print(phone_facts._prefix_data.cache_info().currsize)\n"
        f"record = parse_record({{'text': {TEXT!r}, 'sender': '+8613800138000'}})\n"
        "verdict = analyzer.check(record)\n"
        "print(verdict.sender.location)\n"
        "print(sorted(m for m in sys.modules if m.startswith(('phonenumbers.geo', "
        "'phonenumbers.carrier'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.split("\n")[:4] == ["0", "1", "北京市", "[]"]


def test_the_prefix_file_holds_what_the_installed_phonenumbers_holds() -> None:
    # After a phonenumbers upgrade this fails until
    # `python -m service.engine.numbers.phone_facts` rebuilds it.
    expected = prefix_arrays()
    with np.load(PHONE_PREFIXES_PATH, allow_pickle=False) as stored:
        assert sorted(stored.files) == sorted(expected)
        for name, array in expected.items():
            assert np.array_equal(stored[name], array), name


def test_places_and_carriers_equal_phonenumbers_own_lookups_across_its_prefix_table() -> None:
    # Every 11th prefix of phonenumbers' geocoder and carrier tables (all countries), padded to
    # a few lengths, in both languages: the compact lookup gives the library's exact strings.
    from phonenumbers import carrier, geocoder
    from phonenumbers.carrierdata import CARRIER_DATA
    from phonenumbers.geodata import GEOCODE_DATA

    compared = 0
    prefixes = sorted(set(GEOCODE_DATA) | set(CARRIER_DATA))
    for prefix in prefixes[::11]:
        for padding in ("0000", "1234567"):
            try:
                number = phonenumbers.parse(f"+{prefix}{padding}", None)
            except phonenumbers.NumberParseException:
                continue
            for lang in ("zh", "en"):
                expected = (
                    geocoder.description_for_number(number, lang),
                    carrier.name_for_number(number, lang),
                )
                assert (_place(number, lang), _carrier_name(number, lang)) == expected, (
                    prefix,
                    padding,
                    lang,
                )
                compared += 1
    assert compared > 40_000
