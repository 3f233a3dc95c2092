"""Normalisation: obfuscations fold away and every span maps back into the original text."""

import pytest

from service.engine.normalize import normalize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("【支付寶】請繳納解凍費", "【支付宝】请缴纳解冻费"),  # Traditional -> Simplified
        ("若不還錢就要妳死", "若不还钱就要你死"),  # Taiwan's 妳, which OpenCC keeps
        ("解 冻 费", "解冻费"),  # spaced out
        ("解*冻*费", "解冻费"),
        ("解.冻.费", "解冻费"),
        ("解🔥冻费", "解冻费"),  # emoji inside a word
        ("验\u200b证\u200c码", "验证码"),  # zero-width characters
        ("４００－１２３－４５６７", "400-123-4567"),  # full-width digits and dashes
        ("①③⑧", "138"),  # circled digits
        ("加V信", "加微信"),
        ("请加薇信", "请加微信"),
        ("威❤号", "微信号"),
        ("加v：abc", "加微信:abc"),
        ("扣扣123456", "qq123456"),
        ("13８OO138OOO", "13800138000"),  # letters standing in for digits
        ("ａlipay-huabei.cc", "alipay-huabei.cc"),  # full-width Latin
        ("аlipay.com", "alipay.com"),  # Cyrillic a
        ("第一行\n\n第二行", "第一行第二行"),
        ("call  me\nnow", "call me now"),
        ("逾期，请还款。", "逾期,请还款。"),  # clause punctuation is kept
    ],
)
def test_normalized_text(raw: str, expected: str) -> None:
    assert normalize(raw).text == expected


@pytest.mark.parametrize(
    ("raw", "needle", "original"),
    [
        ("【支付寶】請繳納解 凍 費，加V信", "解冻费", "解 凍 費"),
        ("【支付寶】請繳納解 凍 費，加V信", "微信", "V信"),
        ("🔥🔥验\u200b证码发我", "验证码", "验\u200b证码"),
        ("电话：４００－１２３－４５６７", "400-123-4567", "４００－１２３－４５６７"),
    ],
)
def test_spans_point_into_the_original(raw: str, needle: str, original: str) -> None:
    norm = normalize(raw)
    start = norm.text.index(needle)
    begin, end = norm.span(start, start + len(needle))
    assert raw[begin:end] == original
    assert norm.evidence(start, start + len(needle)) == original


def test_offset_map_is_complete_and_monotonic() -> None:
    raw = "【京東】您的白條已逾期 ❤ 請聯繫 V信 kf-8８8，或撥打 ９５１１８"
    norm = normalize(raw)
    assert len(norm.starts) == len(norm.ends) == len(norm.text)
    assert list(norm.starts) == sorted(norm.starts)
    assert all(0 <= s < e <= len(raw) for s, e in zip(norm.starts, norm.ends, strict=True))


def test_empty_text() -> None:
    norm = normalize("")
    assert norm.text == ""
    assert norm.span(0, 0) == (0, 0)


def _obfuscations(count: int) -> list[str]:
    """Generated messages mixing everything normalisation folds, from a fixed seed."""
    import random

    pieces = [
        "解",
        "冻",
        "费",
        "請",
        "繳",
        "納",
        "驗",
        "證",
        "碼",
        "支付寶",
        "花唄",
        "逾期",
        "还款",
        "４",
        "０",
        "１",
        "３",
        "８",
        "O",
        "o",
        "l",
        "i",
        "ａ",
        "а",
        "ο",
        "Ｖ",
        "v",
        "w",
        "信",
        "薇",
        "❤",
        "♥",
        "💚",
        "扣扣",
        "qq号",
        "wx",
        "vx",
        "weixin",
        "加v",
        "加 w",
        " ",
        "  ",
        "\n",
        "\t",
        "\r",
        "\u3000",
        "*",
        "·",
        ".",
        "_",
        "~",
        "|",
        "/",
        "\\",
        "-",
        "+",
        "#",
        "^",
        "`",
        "'",
        '"',
        "=",
        "\u200b",
        "\u200d",
        "\ufeff",
        "🔥",
        "①",
        "③",
        "ﬁ",
        "Ⅻ",
        "\u0301",
        "，",
        "。",
        "！",
        "【",
        "】",
        "：",
        "http://",
        "t.cn/",
        "138",
        "95188",
        "ABC",
        "É",
    ]
    generator = random.Random(20261202)
    return [
        "".join(generator.choice(pieces) for _ in range(generator.randint(0, 40)))
        for _ in range(count)
    ]


def test_normalize_equals_the_step_by_step_reference() -> None:
    """The one-pass normalisation gives the reference's text and offset map on every corpus and
    real message, every rule example and generated obfuscations."""
    from model import data
    from service.engine.rules import RuleSet
    from tests.normalize_reference import normalize as reference

    texts = [e.record.text for e in data.load_corpus() + data.load_real() if e.record.text]
    for rule in RuleSet.load(check_examples=False).rules:
        texts += [*rule.must_match, *rule.must_not_match]
    texts += _obfuscations(3000)
    assert len(texts) > 5000
    for text in texts:
        got, expected = normalize(text), reference(text)
        assert (got.text, got.starts, got.ends) == (expected.text, expected.starts, expected.ends)
