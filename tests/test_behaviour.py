"""Behaviour tests of the shipped model through the real Analyzer (Made-With-ML style).

Invariance: what should not matter (amount, date, platform) does not change the category.
Direction: adding a request for a verification code never lowers the risk.
Minimum functionality: one plain example per category gets its category.
"""

from __future__ import annotations

import pytest

from model import sender_probe
from service.engine.pipeline import Analyzer
from service.engine.schemas import parse_record

# (platform shown in the text, its official sender, its app)
PLATFORMS = [
    ("花呗", "95188", "支付宝"),
    ("京东白条", "95118", "京东金融"),
    ("分期乐", "95730", "分期乐"),
    ("微粒贷", "95384", "微信"),
]
AMOUNTS = ["320.50", "1,200.00", "8,650"]
DATES = ["11月25日", "2026-12-03", "本月18日"]

GENUINE = (
    "【{platform}】尊敬的客户，您本期账单{amount}元将于{date}到期，"
    "请登录{app}App按时还款，如已还款请忽略。"
)
SCAM = (
    "【{platform}】您的账户因还款流水异常已被冻结，需于{date}前缴纳解冻费{amount}元至专员账户，"
    "详询18529317740"
)
ABUSIVE = (
    "你欠{platform}的{amount}元拖到{date}还不还？再不还我们就打电话给你全部通讯录联系人"
    "和你单位领导，让大家都知道你是老赖"
)


def _verdict(analyzer: Analyzer, text: str, sender: str | None):
    return analyzer.check(parse_record({"sender": sender, "text": text}))


@pytest.mark.parametrize(
    ("template", "sender_kind", "expected"),
    [
        (GENUINE, "official", "legit"),
        (SCAM, "mobile", "scam"),
        (ABUSIVE, "mobile", "abusive"),
    ],
)
def test_amount_date_and_platform_do_not_change_the_category(
    analyzer: Analyzer, template: str, sender_kind: str, expected: str
) -> None:
    categories = set()
    for platform, official, app in PLATFORMS:
        sender = official if sender_kind == "official" else "13912345678"
        for amount, date in zip(AMOUNTS, DATES, strict=True):
            text = template.format(platform=platform, amount=amount, date=date, app=app)
            categories.add(_verdict(analyzer, text, sender).category)
    assert categories == {expected}


@pytest.mark.parametrize(
    ("text", "sender"),
    [
        (GENUINE.format(platform="花呗", amount="560.00", date="12月1日", app="支付宝"), "95188"),
        ("【京东金融】您的白条已逾期3天，请尽快在京东金融App还款，以免影响信用。", "95118"),
        ("周末火锅店全场八折，欢迎光临，回T退订", None),
        ("妈，我今晚不回家吃饭了", "13812345678"),
        (ABUSIVE.format(platform="分期乐", amount="3000", date="周五"), "17012345678"),
        (SCAM.format(platform="微粒贷", amount="2000", date="今天"), "17112345678"),
    ],
)
def test_asking_for_a_verification_code_never_lowers_the_risk(
    analyzer: Analyzer, text: str, sender: str | None
) -> None:
    before = _verdict(analyzer, text, sender)
    after = _verdict(analyzer, text + "请提供验证码。", sender)
    assert after.risk >= before.risk
    assert after.category != "legit"


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (
            {
                "sender": "95188",
                "text": "【支付宝】您的花呗本月应还1,024.00元，最后还款日12月10日，"
                "请通过支付宝App还款。回复TD退订",
            },
            "legit",
        ),
        (
            {
                "sender": "+86 171 2345 6789",
                "text": "【支付宝】您的借呗额度已冻结，需缴纳解冻费2000元，"
                "请添加专员微信办理，逾期将影响征信。",
            },
            "scam",
        ),
        (
            {
                "sender": "13698765432",
                "text": "欠钱不还是吧？今天不还款明天就上门找你，"
                "再把你欠债的事发给你所有亲戚朋友和同事。",
            },
            "abusive",
        ),
        (
            {"sender": "13612345678", "text": "周六同学聚会改到晚上七点，地点不变，记得带相机。"},
            "other",
        ),
        ({"kind": "call", "sender": "+95188", "duration_s": 35}, "scam"),
    ],
)
def test_one_plain_example_per_category_gets_its_category(
    analyzer: Analyzer, record: dict, expected: str
) -> None:
    assert analyzer.check(parse_record(record)).category == expected


def test_verdict_carries_the_shipped_model_version(analyzer: Analyzer) -> None:
    verdict = analyzer.check(parse_record({"text": "你好"}))
    assert verdict.model_version == analyzer.model.version
    assert verdict.model_version is not None


def test_an_unlisted_106_port_does_not_make_genuine_notices_risky(analyzer: Analyzer) -> None:
    # Invariance on real data: banks send from many 106 ports no list holds. Real genuine notices
    # (mudou) from an unlisted port must not reach medium risk more often than with no sender.
    texts = sender_probe.finance_notices(60)
    assert len(texts) == 60
    unlisted, _ = sender_probe.flagged_shares(analyzer, texts, "1069012345678")
    no_sender, _ = sender_probe.flagged_shares(analyzer, texts, None)
    assert unlisted <= no_sender + 1 / 60
    # Direction: the same notices from a personal mobile are more suspicious, not less.
    mobile, _ = sender_probe.flagged_shares(analyzer, texts, "13812345678")
    assert mobile > unlisted
