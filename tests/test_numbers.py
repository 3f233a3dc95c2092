"""Numbers: classification, official lists, brands and contacts in text, number signals."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.engine.normalize import normalize
from service.engine.numbers.directory import Directory, NumberListError
from service.engine.numbers.parse import NumberType
from service.engine.numbers.signals import number_signals

T = NumberType


@pytest.fixture(scope="module")
def directory() -> Directory:
    return Directory.load()


# --- classification ------------------------------------------------------------------------------

CLASSIFY_TABLE = [
    # raw, type, normalized, detail, region, brand, official
    # official short codes and their pitfalls
    ("95188", T.OFFICIAL_HOTLINE, "95188", "95_short", "CN", "alipay", True),
    ("9 5 1 8 8", T.OFFICIAL_HOTLINE, "95188", "95_short", "CN", "alipay", True),
    ("９５１８８", T.OFFICIAL_HOTLINE, "95188", "95_short", "CN", "alipay", True),
    ("+95188", T.INTERNATIONAL, "+95188", "lookalike_short_code", "MM", None, False),
    ("0095188", T.INTERNATIONAL, "+95188", "lookalike_short_code", "MM", None, False),
    ("+95 188", T.INTERNATIONAL, "+95188", "lookalike_short_code", "MM", None, False),
    ("+86 95188", T.SHORT_CODE, "95188", "plus86_short", "CN", "alipay", False),
    ("008695188", T.SHORT_CODE, "95188", "plus86_short", "CN", "alipay", False),
    ("+8696110", T.SHORT_CODE, "96110", "plus86_short", "CN", "antifraud_96110", False),
    # area code + short code: listed landline, genuine 区号+96110, and a spoof phonenumbers accepts
    ("021-95561", T.OFFICIAL_HOTLINE, "+862195561", "area_code_plus_short", "CN", "cib", True),
    (
        "025-96110",
        T.OFFICIAL_HOTLINE,
        "+862596110",
        "area_code_plus_short",
        "CN",
        "antifraud_96110",
        True,
    ),
    ("0571-95188", T.SHORT_CODE, "+8657195188", "area_code_plus_short", "CN", None, False),
    ("01095588", T.SHORT_CODE, "+861095588", "area_code_plus_short", "CN", None, False),
    # 95 numbers of 6-9 digits (phonenumbers rejects 7-digit ones and 8-digit 95163234)
    ("950618", T.OFFICIAL_HOTLINE, "950618", "95_short", "CN", "jd", True),
    ("9510211", T.SHORT_CODE, "9510211", "95_short", "CN", None, False),
    ("9555801", T.OFFICIAL_HOTLINE, "9555801", "95_short", "CN", "citic", True),
    ("95163234", T.SHORT_CODE, "95163234", "95_short", "CN", None, False),
    ("955581101", T.OFFICIAL_HOTLINE, "955581101", "95_short", "CN", "citic", True),
    ("96169", T.SHORT_CODE, "96169", "96_short", "CN", None, False),
    # recalled entries are listed but not official
    ("95786", T.OFFICIAL_HOTLINE, "95786", "95_short", "CN", "zhaolian", False),
    # 106 ports: 10-digit ones are not Beijing landlines, long ones are not invalid
    ("1065795555", T.OFFICIAL_SMS_PORT, "1065795555", "sms_port_106", "CN", "cmb", True),
    ("1069095599", T.OFFICIAL_SMS_PORT, "1069095599", "sms_port_106", "CN", "abc", True),
    ("106980095533", T.OFFICIAL_SMS_PORT, "106980095533", "sms_port_106", "CN", "ccb", True),
    ("1069079895568", T.OFFICIAL_SMS_PORT, "1069079895568", "sms_port_106", "CN", "cmbc", True),
    ("10659020295566", T.OFFICIAL_SMS_PORT, "10659020295566", "sms_port_106", "CN", "boc", True),
    ("1068915371004053", T.SHORT_CODE, "1068915371004053", "sms_port_106", "CN", None, False),
    ("10659553300", T.SHORT_CODE, "10659553300", "sms_port_106", "CN", None, False),
    ("10699000", T.OFFICIAL_SMS_PORT, "10699000", "sms_port_106", "CN", "miit_12381", True),
    ("+86 10 6579 5555", T.LANDLINE, "+861065795555", "fixed_line", "CN", None, False),
    # government and public numbers belong to their public-service brands
    ("96110", T.OFFICIAL_HOTLINE, "96110", "96_short", "CN", "antifraud_96110", True),
    ("12381", T.OFFICIAL_HOTLINE, "12381", "gov_12", "CN", "miit_12381", True),
    ("12321", T.OFFICIAL_HOTLINE, "12321", "gov_12", "CN", "report_12321", True),
    (
        "010-12321",
        T.OFFICIAL_HOTLINE,
        "+861012321",
        "area_code_plus_short",
        "CN",
        "report_12321",
        True,
    ),
    ("12378", T.OFFICIAL_HOTLINE, "12378", "gov_12", "CN", "nfra_12378", True),
    ("12363", T.OFFICIAL_HOTLINE, "12363", "gov_12", "CN", "pboc_12363", True),
    ("12315", T.OFFICIAL_HOTLINE, "12315", "gov_12", "CN", "samr_12315", True),
    ("110", T.OFFICIAL_HOTLINE, "110", "emergency", "CN", "police_110", True),
    ("12110", T.OFFICIAL_SMS_PORT, "12110", "gov_12", "CN", "police_110", True),
    ("12395", T.SHORT_CODE, "12395", "gov_12", "CN", None, False),
    ("10086", T.OFFICIAL_HOTLINE, "10086", "carrier_100", "CN", "cmcc", True),
    ("10011", T.SHORT_CODE, "10011", "carrier_100", "CN", None, False),
    ("10109777", T.OFFICIAL_HOTLINE, "10109777", "national_1010", "CN", "meituan", True),
    # 400 / 800
    ("400-681-6666", T.OFFICIAL_HOTLINE, "+864006816666", "400", "CN", "huanbei", True),
    ("４００－１２３－４５６７", T.SERVICE_400, "+864001234567", "400", "CN", None, False),
    ("800 123 4567", T.SERVICE_400, "+868001234567", "800", "CN", None, False),
    ("+86 400 670 0700", T.SERVICE_400, "+864006700700", "plus86_400", "CN", "wechatpay", False),
    # mobiles, virtual operators, IoT, prefixes
    ("13800138000", T.MOBILE, "+8613800138000", "mobile", "CN", None, False),
    ("+86 138 0013 8000", T.MOBILE, "+8613800138000", "mobile", "CN", None, False),
    ("0086-138-0013-8000", T.MOBILE, "+8613800138000", "mobile", "CN", None, False),
    ("8613800138000", T.MOBILE, "+8613800138000", "mobile", "CN", None, False),
    ("(138)00138000", T.MOBILE, "+8613800138000", "mobile", "CN", None, False),
    ("１３８００１３８０００", T.MOBILE, "+8613800138000", "mobile", "CN", None, False),
    ("+86 171 2345 6789", T.VIRTUAL_MOBILE, "+8617123456789", "mvno", "CN", None, False),
    ("17001234567", T.VIRTUAL_MOBILE, "+8617001234567", "mvno", "CN", None, False),
    ("16212345678", T.VIRTUAL_MOBILE, "+8616212345678", "mvno", "CN", None, False),
    ("16512345678", T.VIRTUAL_MOBILE, "+8616512345678", "mvno", "CN", None, False),
    ("16712345678", T.VIRTUAL_MOBILE, "+8616712345678", "mvno", "CN", None, False),
    ("1440123456789", T.VIRTUAL_MOBILE, "+861440123456789", "iot_data_sim", "CN", None, False),
    ("14812345678", T.VIRTUAL_MOBILE, "+8614812345678", "iot_data_sim", "CN", None, False),
    ("14712345678", T.MOBILE, "+8614712345678", "data_sim", "CN", None, False),
    ("19212345678", T.MOBILE, "+8619212345678", "broadnet", "CN", None, False),
    ("1795113800138000", T.MOBILE, "+8613800138000", "ip_prefix", "CN", None, False),
    ("1259313800138000", T.MOBILE, "+8613800138000", "ip_prefix", "CN", None, False),
    ("12583113800138000", T.MOBILE, "+8613800138000", "secondary_12583", "CN", None, False),
    ("1259300639171234567", T.INTERNATIONAL, "+639171234567", "ip_prefix", "PH", None, False),
    # landlines
    ("0571-88888888", T.LANDLINE, "+8657188888888", "fixed_line", "CN", None, False),
    ("(021) 6888 8888", T.LANDLINE, "+862168888888", "fixed_line", "CN", None, False),
    ("+86 (0)21 68888888", T.LANDLINE, "+862168888888", "fixed_line", "CN", None, False),
    ("86-21-68888888", T.LANDLINE, "+862168888888", "fixed_line", "CN", None, False),
    ("0755-83765566", T.OFFICIAL_HOTLINE, "+8675583765566", "fixed_line", "CN", "wechatpay", True),
    ("+86 10 6608 5566", T.OFFICIAL_HOTLINE, "+861066085566", "fixed_line", "CN", "boc", True),
    # international
    ("+852 6123 4567", T.INTERNATIONAL, "+85261234567", "mobile", "HK", None, False),
    ("00639171234567", T.INTERNATIONAL, "+639171234567", "mobile", "PH", None, False),
    ("+63 917 123 4567", T.INTERNATIONAL, "+639171234567", "mobile", "PH", None, False),
    ("+12315", T.INTERNATIONAL, "+12315", "lookalike_short_code", "US", None, False),
]


@pytest.mark.parametrize(
    ("raw", "kind", "normalized", "detail", "region", "brand", "official"), CLASSIFY_TABLE
)
def test_classify(
    directory: Directory,
    raw: str,
    kind: NumberType,
    normalized: str,
    detail: str,
    region: str,
    brand: str | None,
    official: bool,
) -> None:
    info = directory.classify(raw)
    assert (info.type, info.normalized, info.detail, info.region, info.brand, info.official) == (
        kind,
        normalized,
        detail,
        region,
        brand,
        official,
    )
    assert info.raw == raw


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "abc",
        "12",
        "95",
        "9518",
        "1380013800",
        "138001380001",
        "+",
        "+86",
        "95188abc",
        "☎95188",
        "0000000",
        "15412345678",
        "+999 1234",
        "13800138000/13900139000",
        "1" * 25,
        # 179xx00…: phonenumbers reads China's IP-dialling prefix (17951 + 00) and raises
        "17984008343",
        "+86 179 1700 6932",
        "0086-17903009790",
    ],
)
def test_garbage_is_invalid(directory: Directory, raw: str) -> None:
    info = directory.classify(raw)
    assert info.type is T.INVALID
    assert info.normalized is None and info.brand is None and not info.official


def test_shared_number_has_both_owners(directory: Directory) -> None:
    info = directory.classify("95511")
    assert info.official
    assert directory.owners(info) == {"pingan", "pab"}


def test_lookalike_brand_of_spoofed_displays(directory: Directory) -> None:
    assert directory.lookalike_brand(directory.classify("+95188")) == "alipay"
    assert directory.lookalike_brand(directory.classify("0571-95188")) == "alipay"
    assert directory.lookalike_brand(directory.classify("13800138000")) is None


# --- the lists -----------------------------------------------------------------------------------

REQUIRED_BRANDS = {
    "alipay": "lender",
    "jd": "lender",
    "fenqile": "lender",
    "webank": "lender",
    "huanbei": "lender",
    "duxiaoman": "lender",
    "zhaolian": "lender",
    "meituan": "lender",
    "douyin": "lender",
    "qubei": "lender",
    "wechatpay": "lender",
    "qifu": "lender",
    "mashang": "lender",
    "pingan": "lender",
    "icbc": "bank",
    "ccb": "bank",
    "abc": "bank",
    "boc": "bank",
    "bocom": "bank",
    "cmb": "bank",
    "citic": "bank",
    "ceb": "bank",
    "hxb": "bank",
    "cmbc": "bank",
    "pab": "bank",
    "cgb": "bank",
    "cib": "bank",
    "spdb": "bank",
    "psbc": "bank",
    "antifraud_96110": "public_service",
    "miit_12381": "public_service",
    "report_12321": "public_service",
    "nfra_12378": "public_service",
    "pboc_12363": "public_service",
    "police_110": "public_service",
    "samr_12315": "public_service",
}


@pytest.mark.parametrize(("brand_id", "category"), sorted(REQUIRED_BRANDS.items()))
def test_brief_brands_exist(directory: Directory, brand_id: str, category: str) -> None:
    brand = directory.brands[brand_id]
    assert brand.category == category
    assert brand.aliases and brand.name


@pytest.mark.parametrize("brand_id", ["qubei", "qifu", "mashang"])
def test_brands_without_a_known_number(directory: Directory, brand_id: str) -> None:
    assert directory.official_numbers(brand_id) == []
    assert not directory.brands[brand_id].verified


def test_official_numbers_are_verified_voice_numbers_main_first(directory: Directory) -> None:
    assert directory.official_numbers("alipay") == ["95188"]
    assert directory.official_numbers("huanbei") == ["4006816666"]
    assert directory.official_numbers("zhaolian") == []  # 95786 is only recalled
    assert directory.official_numbers("cmb")[0] == "95555"
    assert "1065795555" not in directory.official_numbers("cmb")  # an SMS port is not callable
    assert directory.official_numbers("no_such_brand") == []


def test_every_entry_has_a_source_and_check_date(directory: Directory) -> None:
    for brand in directory.brands.values():
        for entry in (*brand.voice, *brand.sms_ports, *brand.domains):
            assert len(entry.source) >= 3, brand.id
            assert entry.checked.year >= 2000


def test_version_is_a_content_hash(tmp_path: Path, directory: Directory) -> None:
    assert len(directory.version) == 12
    copy = tmp_path / "lists"
    copy.mkdir()
    for file in Path(directory_path()).glob("*.yaml"):
        (copy / file.name).write_bytes(file.read_bytes())
    assert Directory.load(copy).version == directory.version
    first = sorted(copy.glob("*.yaml"))[0]
    first.write_text(first.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert Directory.load(copy).version != directory.version


def test_a_stored_copy_is_read_only_for_exactly_the_files_it_was_made_from(
    tmp_path: Path, directory: Directory
) -> None:
    copy = tmp_path / "lists"
    copy.mkdir()
    for file in Path(directory_path()).glob("*.yaml"):
        (copy / file.name).write_bytes(file.read_bytes())
    stored = Directory.snapshot(copy)
    assert stored["version"] == directory.version
    assert Directory.load(copy, stored=stored).brands == directory.brands
    # A copy that says something else shows which one is read: the copy, while the files are
    # as they were; the YAML, once they are edited.
    first = sorted(copy.glob("*.yaml"))[0]
    brand = stored["files"][first.name]["brands"][0]
    brand["name"] = "copy, not the file"
    assert Directory.load(copy, stored=stored).brands[brand["id"]].name == "copy, not the file"
    first.write_text(first.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    reread = Directory.load(copy, stored=stored)
    assert reread.version != directory.version
    assert reread.brands[brand["id"]] == directory.brands[brand["id"]]


def test_a_list_that_is_not_yaml_is_named_with_the_parser_message(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("brands: [\n  - id: x\n", encoding="utf-8")
    with pytest.raises(NumberListError, match=r"(?s)^broken\.yaml: not valid YAML: .+"):
        Directory.load(tmp_path)


def directory_path() -> Path:
    from service.paths import NUMBERS_DIR

    return NUMBERS_DIR


GOOD_BRAND = """\
  - id: {id}
    name: 测试
    category: lender
    aliases: [{alias}]
    voice:
      - number: "{number}"
        source: "https://example.org/page"
        checked: 2026-11-23
"""


def _write(tmp_path: Path, name: str, body: str) -> Path:
    (tmp_path / name).write_text("brands:\n" + body, encoding="utf-8")
    return tmp_path


BROKEN_LISTS = [
    # (files {name: body}, file named, brand named, words of the fix)
    (
        {"a.yaml": GOOD_BRAND.format(id="x", alias="测试甲", number="95999") + "    colour: red\n"},
        "a.yaml",
        "'x'",
        "unknown key",
    ),
    (
        {
            "a.yaml": GOOD_BRAND.format(id="x", alias="测试甲", number="95999"),
            "b.yaml": GOOD_BRAND.format(id="x", alias="测试乙", number="95998"),
        },
        "b.yaml",
        "'x'",
        "duplicate brand id",
    ),
    (
        {
            "a.yaml": GOOD_BRAND.format(id="x", alias="测试甲", number="95999")
            + GOOD_BRAND.format(id="y", alias="测试乙", number="95999")
        },
        "a.yaml",
        "'y'",
        "already claimed by brand 'x'",
    ),
    (
        {"a.yaml": GOOD_BRAND.format(id="x", alias="测试甲", number="95x99")},
        "a.yaml",
        "'x'",
        "not a valid number",
    ),
    (
        {"a.yaml": GOOD_BRAND.format(id="x", alias="测试甲", number="12")},
        "a.yaml",
        "'x'",
        "not a valid number",
    ),
    (
        {
            "a.yaml": GOOD_BRAND.format(id="x", alias="测试甲", number="95999").replace(
                '"95999"', "95999"
            )
        },
        "a.yaml",
        "'x'",
        "quoted string",
    ),
    (
        {
            "a.yaml": GOOD_BRAND.format(id="x", alias="测试甲", number="95999").replace(
                "2026-11-23", "2026-13-45"
            )
        },
        "a.yaml",
        "'x'",
        "checked",
    ),
    (
        {
            "a.yaml": GOOD_BRAND.format(id="x", alias="测试甲", number="95999").replace(
                "2026-11-23", "last week"
            )
        },
        "a.yaml",
        "'x'",
        "checked",
    ),
    (
        {"a.yaml": GOOD_BRAND.format(id="x", alias="測試甲", number="95999")},
        "a.yaml",
        "'x'",
        "write '测试甲'",
    ),
    (
        {
            "a.yaml": GOOD_BRAND.format(id="x", alias="测试甲", number="95999")
            + GOOD_BRAND.format(id="y", alias="测试甲", number="95998")
        },
        "a.yaml",
        "'y'",
        "alias '测试甲'",
    ),
    (
        {"a.yaml": GOOD_BRAND.format(id="X-1", alias="测试甲", number="95999")},
        "a.yaml",
        "'X-1'",
        "id",
    ),
    (
        {
            "a.yaml": GOOD_BRAND.format(id="x", alias="测试甲", number="95999").replace(
                "category: lender", "category: shop"
            )
        },
        "a.yaml",
        "'x'",
        "category",
    ),
    (
        {
            "a.yaml": GOOD_BRAND.format(id="x", alias="测试甲", number="95999").replace(
                '        source: "https://example.org/page"\n', ""
            )
        },
        "a.yaml",
        "'x'",
        "source",
    ),
    (
        {
            "a.yaml": GOOD_BRAND.format(id="x", alias="测试甲", number="95999").replace(
                "checked: 2026-11-23", "checked: 2026-11-23\n        shared_with: nobody"
            )
        },
        "a.yaml",
        "'x'",
        "unknown brand 'nobody'",
    ),
    (
        {
            "a.yaml": GOOD_BRAND.format(id="x", alias="测试甲", number="95999")
            + "    domains:\n      - domain: Not A Domain\n        source: s://x\n"
            "        checked: 2026-11-23\n"
        },
        "a.yaml",
        "'x'",
        "domain",
    ),
]


@pytest.mark.parametrize(("files", "file_name", "brand", "fix"), BROKEN_LISTS)
def test_broken_lists_are_refused_with_file_brand_and_fix(
    tmp_path: Path, files: dict[str, str], file_name: str, brand: str, fix: str
) -> None:
    for name, body in files.items():
        _write(tmp_path, name, body)
    with pytest.raises(NumberListError) as caught:
        Directory.load(tmp_path)
    message = str(caught.value)
    assert file_name in message
    assert brand in message
    assert fix in message


def test_shared_number_needs_shared_with_on_both_sides(tmp_path: Path) -> None:
    one = GOOD_BRAND.format(id="x", alias="测试甲", number="95999") + ("        shared_with: y\n")
    other = GOOD_BRAND.format(id="y", alias="测试乙", number="95999") + ("        shared_with: x\n")
    _write(tmp_path, "a.yaml", one + other)
    loaded = Directory.load(tmp_path)
    assert loaded.owners(loaded.classify("95999")) == {"x", "y"}


@pytest.mark.parametrize(
    "content",
    ["brands: [unclosed", "- just a list", "brands:\n  - 42\n", "other: 1\n", ""],
)
def test_malformed_files_name_the_file(tmp_path: Path, content: str) -> None:
    (tmp_path / "bad.yaml").write_text(content, encoding="utf-8")
    with pytest.raises(NumberListError, match=r"bad\.yaml"):
        Directory.load(tmp_path)


def test_empty_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NumberListError, match=r"no \*\.yaml"):
        Directory.load(tmp_path)


# --- brands in text ------------------------------------------------------------------------------

BRAND_TEXTS = [
    ("【支付宝】您的花呗已逾期", ["alipay"], "alipay"),
    ("【支付寶】您的花唄已逾期", ["alipay"], "alipay"),  # Traditional
    ("您的花 呗 额度已冻结", ["alipay"], None),  # spaced out
    ("[招商银行]您的信用卡本期账单", ["cmb"], "cmb"),  # ASCII brackets
    ("您的京东白条逾期。【京东金融】", ["jd"], "jd"),  # signature at the end
    ("我是京东金融客服，您的金条需要注销", ["jd"], None),
    ("您在微粒贷的借款已逾期", ["webank"], None),
    ("【分期乐】乐花卡还款提醒", ["fenqile"], "fenqile"),
    ("度小满有钱花提醒您还款", ["duxiaoman"], None),
    ("招联好期贷账单", ["zhaolian"], None),
    ("美团月付本期待还", ["meituan"], None),
    ("抖音月付账单已出", ["douyin"], None),
    ("取呗借款已逾期", ["qubei"], None),
    ("还呗提醒您按时还款", ["huanbei"], None),
    ("【建设银行】龙卡信用卡", ["ccb"], "ccb"),
    ("【國家反詐中心】提醒您", ["antifraud_96110"], "antifraud_96110"),
    ("【工信部反诈中心】预警", ["miit_12381"], "miit_12381"),
    ("我是银保监会工作人员，支付宝", ["alipay", "nfra_12378"], None),
    ("ALIPAY 客服", ["alipay"], None),  # case folded by normalize
    ("平安夜快乐，祝您平安", [], None),  # the word 平安 is not a brand
    ("兴业消费金融", [], None),  # a different company from 兴业银行
    ("访问 abc.xyz 查看", [], None),  # 'abc' inside a domain is not 农业银行
    ("部分付款员工行为施工行业", [], None),
]


@pytest.mark.parametrize(("text", "expected", "signature"), BRAND_TEXTS)
def test_find_brands(
    directory: Directory, text: str, expected: list[str], signature: str | None
) -> None:
    norm = normalize(text)
    mentions = directory.find_brands(norm)
    assert sorted(m.brand_id for m in mentions) == sorted(expected)
    signed = [m.brand_id for m in mentions if m.signature]
    assert signed == ([signature] if signature else [])
    if signature:
        assert mentions[0].brand_id == signature  # signature first
    for mention in mentions:
        alias = norm.text[mention.start : mention.end]
        assert alias in directory.brands[mention.brand_id].aliases


def test_brand_mentions_are_one_per_brand(directory: Directory) -> None:
    mentions = directory.find_brands(normalize("花呗借呗都是支付宝的，支付宝客服95188"))
    assert [m.brand_id for m in mentions] == ["alipay"]
    assert mentions[0].start == 0


# --- contacts in text ----------------------------------------------------------------------------

CONTACT_TEXTS = [
    # text, [(kind, normalised raw, host or normalized number, brand)]
    ("请拨打 ４００－１２３－４５６７ 联系", [("phone", "400-123-4567", "+864001234567", None)]),
    ("请拨打 9 5 1 8 8 核实", [("phone", "9 5 1 8 8", "95188", "alipay")]),
    (
        "联系 138 0013 8000 或 0571-88888888",
        [
            ("phone", "138 0013 8000", "+8613800138000", None),
            ("phone", "0571-88888888", "+8657188888888", None),
        ],
    ),
    ("来电 +86 171 2345 6789", [("phone", "+86 171 2345 6789", "+8617123456789", None)]),
    ("回拨 +95188", [("phone", "+95188", "+95188", None)]),
    ("短信来自1065795555", [("phone", "1065795555", "1065795555", "cmb")]),
    ("详情 alipay-huabei[.]cc 查看", [("domain", "alipay-huabei[.]cc", "alipay-huabei.cc", None)]),
    # Links without a single "." (the link finder skips texts with no ".", "//" or "dot").
    (
        "详情 alipay-huabei[dot]cc 查看",
        [("domain", "alipay-huabei[dot]cc", "alipay-huabei.cc", None)],
    ),
    (
        "详情 alipay-huabei(dot)cc 查看",
        [("domain", "alipay-huabei(dot)cc", "alipay-huabei.cc", None)],
    ),
    ("打开 http://localhost/x 领取", [("url", "http://localhost/x", "localhost", None)]),
    ("点击 http://1.2.3.4/x 领取", [("url", "http://1.2.3.4/x", "1.2.3.4", None)]),
    ("点击 t.cn/A6x9 查看", [("url", "t.cn/a6x9", "t.cn", None)]),
    (
        "登录 https://www.alipay.com/x?a=1。",
        [("url", "https://www.alipay.com/x?a=1", "www.alipay.com", "alipay")],
    ),
    ("访问 cmbchina.com", [("domain", "cmbchina.com", "cmbchina.com", "cmb")]),
    # Cheap phishing TLDs, upper case as quoted in a police warning
    (
        "请登录移动商城10860.PT5JF.PW,按提示安装",
        [("domain", "10860.pt5jf.pw", "10860.pt5jf.pw", None)],
    ),
    ("打开www.abc12.fyi更新", [("url", "www.abc12.fyi", "www.abc12.fyi", None)]),
    ("官网:dwz.cz/2c04。", [("url", "dwz.cz/2c04", "dwz.cz", None)]),
    ("打开 ｗｗｗ．ｊｄ．ｃｏｍ", [("url", "www.jd.com", "www.jd.com", "jd")]),
    (
        "hxxp://fenqile-vip[.]top/login",
        [("url", "hxxp://fenqile-vip[.]top/login", "fenqile-vip.top", None)],
    ),
    # not phone numbers: amounts, dates, codes, card tails, decimals, ids, versions
    ("您尾号95188的卡", []),
    ("验证码：951234，请勿泄露", []),
    ("本期应还12000元，已逾期95天", []),
    ("于2026-11-23前还款", []),
    ("金额95188.50元", []),
    ("订单号sn95188x", []),
    ("版本 v1.2.3", []),
    ("qq123456", []),
]


@pytest.mark.parametrize(("text", "expected"), CONTACT_TEXTS)
def test_find_contacts(directory: Directory, text: str, expected: list[tuple]) -> None:
    norm = normalize(text)
    contacts = directory.find_contacts(norm)
    got = [
        (c.kind, c.raw, c.host if c.kind != "phone" else c.info.normalized, c.brand)
        for c in contacts
    ]
    assert got == expected
    for contact in contacts:
        assert norm.text[contact.start : contact.end] == contact.raw


def test_contact_spans_map_to_the_original(directory: Directory) -> None:
    text = "【支付宝】请拨打４００－１２３－４５６７"
    norm = normalize(text)
    (contact,) = directory.find_contacts(norm)
    start, end = norm.span(contact.start, contact.end)
    assert text[start:end] == "４００－１２３－４５６７"


def test_numbers_late_in_a_long_digit_run_are_found(directory: Directory) -> None:
    text = "请拨打 " + " ".join(["12"] * 30) + " 400-123-4567"  # one run of 33 digit groups
    contacts = directory.find_contacts(normalize(text))
    assert [c.info.normalized for c in contacts if c.info] == ["+864001234567"]


def test_official_contacts_are_marked(directory: Directory) -> None:
    contacts = directory.find_contacts(normalize("拨打95188或登录alipay.com"))
    assert [(c.brand, c.official) for c in contacts] == [("alipay", True), ("alipay", True)]


# --- signals -------------------------------------------------------------------------------------


def _signals(directory: Directory, sender: str | None, text: str | None, kind: str = "sms"):
    norm = normalize(text) if text else None
    info = directory.classify(sender) if sender else None
    brands = directory.find_brands(norm) if norm else []
    contacts = directory.find_contacts(norm) if norm else []
    return number_signals(kind, info, brands, contacts, norm, directory)


def _ids(signals) -> set[str]:
    return {s.id for s in signals}


SIGNAL_CASES = [
    # sender, text, kind, must include, must not include
    (
        "95188",
        "【支付宝】您的花呗本期账单已出，请在支付宝App内还款",
        "sms",
        {"official_sender"},
        {"brand_number_mismatch", "sender_mobile_claims_brand"},
    ),
    (
        "13800138000",
        "【支付宝】您的花呗已逾期，请联系客服 400-123-4567",
        "sms",
        {"sender_mobile_claims_brand", "brand_number_mismatch", "unofficial_400"},
        {"official_sender"},
    ),
    (
        "17123456789",
        "我是京东金融客服，您的金条需注销",
        "sms",
        {"virtual_mobile_sender", "sender_mobile_claims_brand"},
        set(),
    ),
    (
        "0571-88888888",
        "我是支付宝客服，花呗需要关闭",
        "call",
        {"sender_landline_claims_brand"},
        {"official_sender"},
    ),
    (
        "95188",
        "【支付宝】花呗异常，点击 alipay-huabei[.]cc 处理",
        "sms",
        {"official_sender", "brand_link_mismatch", "lookalike_domain"},
        set(),
    ),
    (
        "95555",
        "[招商银行]请登录 http://1.2.3.4/x 或 t.cn/abc 更新",
        "sms",
        {"ip_link", "short_link", "brand_link_mismatch"},
        set(),
    ),
    (
        "12381",
        "【工信部反诈中心】您可能遭遇诈骗，请拨打 13800138000 咨询",
        "sms",
        {"public_service_with_link"},
        set(),
    ),
    (
        "12381",
        "【工信部反诈中心】您正在使用的号码可能遭遇诈骗，请提高警惕",
        "sms",
        {"official_sender"},
        {"public_service_with_link"},
    ),
    (
        "10699000",
        "【国家反诈中心】凡要求转账汇款的都是诈骗，如有疑问请拨打96110咨询，紧急情况请拨110",
        "sms",
        {"official_sender"},
        {"public_service_with_link"},
    ),
    (
        "+8612381",
        "【工信部反诈中心】点击 www.12381.top 认证",
        "sms",
        {"spoofed_short_code", "public_service_with_link"},
        {"official_sender"},
    ),
    ("+95188", None, "call", {"international_lookalike_official"}, {"international_sender"}),
    ("0095188", None, "call", {"international_lookalike_official"}, set()),
    ("+852 6123 4567", None, "call", {"international_sender"}, set()),
    ("+86 95188", None, "call", {"spoofed_short_code"}, {"official_sender"}),
    ("0571-95188", None, "call", {"spoofed_short_code"}, {"official_sender"}),
    ("+86 400 670 0700", None, "call", {"spoofed_short_code"}, {"official_sender"}),
    ("025-96110", None, "call", {"official_sender"}, {"spoofed_short_code"}),
    ("95588", None, "call", {"official_sender"}, set()),
    ("+86 171 2345 6789", None, "call", {"virtual_mobile_sender"}, set()),
    ("4001234567", None, "call", {"unofficial_400"}, set()),
    ("95566", "【支付宝】您的借呗已逾期", "sms", {"sender_brand_mismatch"}, {"official_sender"}),
    ("95123", "【支付宝】您的借呗已逾期", "sms", {"sender_not_brand_number"}, {"official_sender"}),
    ("106980095533", "【建设银行】您的信用卡账单已出", "sms", {"official_sender"}, set()),
    ("1069012395533", "【建设银行】您的信用卡账单已出", "sms", {"official_port_suffix"}, set()),
    (
        "13800138000",
        "明天一起吃饭，我用支付宝付",
        "sms",
        set(),
        {"sender_mobile_claims_brand", "official_sender"},
    ),
    (
        None,
        "【取呗】您的借款已逾期，请拨打 021-12345678 协商",
        "sms",
        {"brand_number_mismatch"},
        set(),
    ),
    (
        None,
        "【招商银行】如有疑问请致电95555或访问cmbchina.com",
        "sms",
        set(),
        {"brand_number_mismatch", "brand_link_mismatch"},
    ),
    (None, "【支付宝】如遇诈骗请拨打96110或12321举报", "sms", set(), {"brand_number_mismatch"}),
    (None, "【平安银行】请致电95511", "sms", set(), {"brand_number_mismatch"}),
    # A fake base station spoofs 95599 and gives its own callback: the text names no brand, the
    # official sender is the brand the callback must belong to.
    (
        "95599",
        "银行温馨提醒您:我行将于下午20∶00之前从您账户中扣除1200.00元年费,如有疑问请咨询4008121556",
        "sms",
        {"official_sender", "brand_number_mismatch"},
        set(),
    ),
    (
        "95599",
        "您尾号1234的卡消费100元，如有疑问请致电95599",
        "sms",
        {"official_sender"},
        {"brand_number_mismatch"},
    ),
    (
        "95599",
        "您的网银证书已过期，请登录 abc-yh.com 更新",
        "sms",
        {"brand_link_mismatch"},
        set(),
    ),
    ("95599", "详情请登录 abchina.com 查询", "sms", set(), {"brand_link_mismatch"}),
    # Service companies and agencies (rules/numbers/services.yaml)
    (
        None,
        "【中国移动】您的积分即将清零，请登录 10086-jf.cc 兑换现金",
        "sms",
        {"lookalike_domain"},
        set(),
    ),
    (
        "10086",
        "尊敬的客户，您本月账单已出，详情登录 www.10086.cn 查询",
        "sms",
        {"official_sender"},
        {"brand_link_mismatch"},
    ),
    # Carriers' lists are open: a regional or partner site is no evidence by itself.
    (
        None,
        "【中国移动】流量套餐办理请登录北京移动 mobilebj.cn 查询",
        "sms",
        set(),
        {"brand_link_mismatch", "lookalike_domain"},
    ),
    # 12306's are closed: its refunds happen in the 12306 app and on 12306.cn.
    (
        None,
        "【铁路12306】您的车次已停运，退票理赔请登录 tk-refund.top 办理",
        "sms",
        {"brand_link_mismatch"},
        set(),
    ),
    (
        "12306",
        "订单E123456789，您已购3月1日G12次车票，请凭身份证检票。",
        "sms",
        {"official_sender"},
        set(),
    ),
]


@pytest.mark.parametrize(("sender", "text", "kind", "present", "absent"), SIGNAL_CASES)
def test_number_signals(
    directory: Directory,
    sender: str | None,
    text: str | None,
    kind: str,
    present: set[str],
    absent: set[str],
) -> None:
    ids = _ids(_signals(directory, sender, text, kind))
    assert present <= ids
    assert not (absent & ids)


# A brand's own short-link and finance domains are official; look-alikes of them are not.
BRAND_LINK_CASES = [
    # sender, text, must include, must not include, brand a look-alike imitates (or None)
    (
        "95555",
        "【招商银行】您尾号1234的信用卡本期账单已出，详情 cmbt.cn/a1B2c 。",
        {"official_sender"},
        {"brand_link_mismatch", "lookalike_domain", "short_link"},
        None,
    ),
    (
        "95555",
        "您账户0111于02月13日他行实时转入人民币299.85。推荐享好礼 http://cmburl.cn/yY7 [招商银行]",
        {"official_sender"},
        {"brand_link_mismatch", "lookalike_domain", "short_link"},
        None,
    ),
    (
        None,
        "【京东金融】您的白条本期账单已出，查看详情 3.cn/1x-AbCd 拒收请回复R",
        set(),
        {"brand_link_mismatch", "lookalike_domain", "short_link"},
        None,
    ),
    (
        None,
        "【京东金融】您的金条额度已更新，详见 https://www.jdfinance.com/x",
        set(),
        {"brand_link_mismatch", "lookalike_domain"},
        None,
    ),
    (
        None,
        "【云闪付】您有一张优惠券待领取 https://youhui.95516.com/x",
        set(),
        {"brand_link_mismatch", "lookalike_domain"},
        None,
    ),
    (
        "95555",
        "【招商银行】您的账户存在异常，请登录 cmbt-cn.top/a1 验证身份",
        {"brand_link_mismatch", "lookalike_domain"},
        set(),
        "cmb",
    ),
    (
        "95555",
        "【招商银行】您的信用卡已冻结，请登录 https://cmbchina-pay.com/login 解冻",
        {"brand_link_mismatch", "lookalike_domain"},
        set(),
        "cmb",
    ),
    (
        None,
        "【京东金融】您的白条已逾期，请访问 jdfinance-vip.cc 处理",
        {"brand_link_mismatch", "lookalike_domain"},
        set(),
        "jd",
    ),
]


@pytest.mark.parametrize(("sender", "text", "present", "absent", "imitated"), BRAND_LINK_CASES)
def test_brand_short_link_domains(
    directory: Directory,
    sender: str | None,
    text: str,
    present: set[str],
    absent: set[str],
    imitated: str | None,
) -> None:
    signals = _signals(directory, sender, text)
    ids = _ids(signals)
    assert present <= ids
    assert not (absent & ids)
    lookalikes = [s for s in signals if s.id == "lookalike_domain"]
    if imitated is not None:
        host = next(c.host for c in directory.find_contacts(normalize(text)) if c.host)
        assert directory.lookalike_domain_brand(host) == imitated
        assert directory.brands[imitated].name.split("/")[0] in lookalikes[0].explanation


@pytest.mark.parametrize(
    ("host", "brand"),
    [
        ("cmbt.cn", "cmb"),
        ("cmburl.cn", "cmb"),
        ("3.cn", "jd"),
        ("jd.cn", "jd"),
        ("jdfinance.com", "jd"),
        ("ibaitiao.com", "jd"),
        ("wallet.95516.com", "unionpay"),
        ("spdbccc.com.cn", "spdb"),
        ("bocomcc.com", "bocom"),
    ],
)
def test_brand_short_domains_are_owned(directory: Directory, host: str, brand: str) -> None:
    assert directory.domain_owner(host) == (brand, True)
    assert directory.lookalike_domain_brand(host) is None


def test_signals_carry_original_spans_and_explanations(directory: Directory) -> None:
    text = "【支付寶】花唄逾期，請撥打 ４００－１２３－４５６７"
    signals = _signals(directory, "13800138000", text)
    mismatch = next(s for s in signals if s.id == "brand_number_mismatch")
    assert mismatch.source == "numbers" and mismatch.category == "scam"
    assert mismatch.span is not None
    assert text[mismatch.span[0] : mismatch.span[1]] == "４００－１２３－４５６７"
    assert mismatch.evidence == "４００－１２３－４５６７"
    assert "支付宝" in mismatch.explanation and "95188" in mismatch.explanation
    assert mismatch.explanation_en and not mismatch.fail_closed
    assert mismatch.weight and mismatch.weight > 2
    for signal in signals:
        assert signal.explanation and signal.explanation_en and signal.weight


def test_official_sender_is_legit_but_modest(directory: Directory) -> None:
    (official,) = [
        s for s in _signals(directory, "95188", "【支付宝】账单已出") if s.id == "official_sender"
    ]
    assert official.category == "legit"
    assert 0 < official.weight <= 1.0
    assert official.evidence == "95188"
    (unverified,) = [
        s for s in _signals(directory, "95786", "【招联金融】账单已出") if s.id == "official_sender"
    ]
    assert unverified.weight < official.weight  # recalled list entries count for less


def test_call_signals_use_the_sender_alone(directory: Directory) -> None:
    signals = _signals(directory, "+95188", None, kind="call")
    (lookalike,) = signals
    assert lookalike.span is None and lookalike.evidence == "+95188"
    assert "95188" in lookalike.explanation and "支付宝" in lookalike.explanation
