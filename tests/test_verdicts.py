"""Verdicts per seed platform: genuine reminders pass, impersonations and abuse are caught.

These messages are written by the project for the tests (not taken from any dataset).
"""

from __future__ import annotations

import pytest

from service.engine.pipeline import HIGH_RISK, MEDIUM_RISK, Analyzer, _content_rule_floor
from service.engine.schemas import Signal, Verdict, parse_record


def check(
    analyzer: Analyzer, text: str | None = None, sender: str | None = None, **extra
) -> Verdict:
    data = {"sender": sender, **extra}
    if text is not None:
        data["text"] = text
    return analyzer.check(parse_record(data))


def signal_ids(verdict: Verdict) -> set[str]:
    return {signal.id for signal in verdict.signals}


GENUINE = [
    pytest.param(
        "95188",
        "【支付宝】您的花呗11月账单1,286.50元将于11月25日到期，请登录支付宝App按时还款，"
        "逾期将影响您的信用记录。",
        "alipay",
        id="huabei",
    ),
    pytest.param(
        "95118",
        "【京东金融】尊敬的用户，您的京东白条本期应还款426.30元，还款日为12月1日，"
        "请打开京东金融App还款。拒收请回复R",
        "jd",
        id="jd-baitiao",
    ),
    pytest.param(
        "95730",
        "【分期乐】您本期账单2,180.00元已到期，请于今日23:59前在分期乐App完成还款，以免产生逾期。",
        "fenqile",
        id="fenqile",
    ),
    pytest.param(
        None,
        "【取呗】您的借款本期应还1,050元，还款日12月5日，请在取呗App内按时还款。退订回T",
        "qubei",
        id="qubei-no-sender",
    ),
]


@pytest.mark.parametrize(("sender", "text", "brand"), GENUINE)
def test_genuine_reminder_is_not_flagged(analyzer: Analyzer, sender, text, brand) -> None:
    verdict = check(analyzer, text, sender)
    assert verdict.category == "legit"
    assert verdict.level == "low"
    assert brand in {b.brand for b in verdict.claimed_brands}
    assert not any(signal.fail_closed for signal in verdict.signals)


IMPERSONATIONS = [
    pytest.param(
        "+86 171 2345 6789",
        "【支付宝】您的花呗已严重逾期，账户即将冻结，请立即缴纳解冻费2000元至指定账户，"
        "详询客服17123456789",
        "alipay",
        id="huabei-unfreeze-fee",
    ),
    pytest.param(
        "13912345678",
        "京东金融客服：您在校期间开通的京东金条属于校园贷，需要注销，否则影响征信，"
        "请下载腾讯会议共享屏幕配合操作",
        "jd",
        id="jd-student-loan-screen-share",
    ),
    pytest.param(
        "0755-95730",
        "分期乐：您的额度异常，请将资金转入安全账户进行验证，并提供短信验证码给专员。",
        "fenqile",
        id="fenqile-safe-account",
    ),
    pytest.param(
        "16512345678",
        "【取呗】您的借款已逾期，可协商减免，需先支付保证金500元，请加微信 qubei_kf88 办理",
        "qubei",
        id="qubei-deposit",
    ),
]


@pytest.mark.parametrize(("sender", "text", "brand"), IMPERSONATIONS)
def test_impersonation_is_scam(analyzer: Analyzer, sender, text, brand) -> None:
    verdict = check(analyzer, text, sender)
    assert verdict.category == "scam"
    assert verdict.level == "high"
    assert brand in {b.brand for b in verdict.claimed_brands}
    rule_signals = [s for s in verdict.signals if s.source == "rule" and s.category == "scam"]
    assert rule_signals, "an impersonation must be explained by content rules"
    for signal in verdict.signals:
        if signal.span is not None:
            start, end = signal.span
            assert text[start:end] == signal.evidence


ABUSIVE = [
    pytest.param(
        "13800138000",
        "张三你欠花呗的钱再不还，明天就给你通讯录里所有人打电话，让你爸妈和同事都知道你是老赖！",
        id="huabei-contact-book",
    ),
    pytest.param(
        "18612345678",
        "白条逾期三个月了还装死？我们的人下午就去你单位和你家里，当着你领导的面把事情说清楚。",
        id="baitiao-home-employer",
    ),
    pytest.param(
        "15012345678",
        "分期乐欠款再拖，就把你的照片和欠款信息发到你家族群里曝光，你这种人真不要脸。",
        id="fenqile-exposure-insult",
    ),
    pytest.param(
        "17712345678",
        "您好，您是李四在分期乐办理业务时预留的紧急联系人，他的账单已经逾期两个月，本人一直联系不上。",
        id="written-to-the-emergency-contact",
    ),
    pytest.param(
        None,
        "台端積欠本公司手機分期款已逾期三個月，倘仍置之不理，本公司將委任律師提出侵占及詐欺罪嫌之刑事告訴。",
        id="lender-threatens-fraud-charges",
    ),
    pytest.param(
        None,
        "你在某某贷的借款严重逾期，现已纳入公安数据库，公安机关将依法打击恶意逃废债行为。",
        id="lender-names-the-police-as-its-enforcer",
    ),
    pytest.param(
        None,
        "You refused to pay back your loan. I will destroy your life and enjoy your shame.",
        id="english-threat",
    ),
    pytest.param(
        None,
        "限你两日之内补足所欠款项，如你继续拖欠，我们会在你所在小区和单位扩散你的欠款信息。",
        id="threat-to-spread-the-debt",
    ),
    pytest.param(
        None,
        "We have sent you reminders about your loan, but you are not cooperating. "
        "We are now reaching your phone book from the next hour.",
        id="english-loan-app-phone-book",
    ),
]


@pytest.mark.parametrize(("sender", "text"), ABUSIVE)
def test_abusive_collection_is_abusive(analyzer: Analyzer, sender, text) -> None:
    verdict = check(analyzer, text, sender)
    assert verdict.category == "abusive"
    assert any(s.category == "abusive" for s in verdict.signals if s.source == "rule")


@pytest.mark.parametrize(
    "text",
    [
        "【滴滴出行】您已开启自动分享行程，行程中如遇紧急情况，系统将向您的紧急联系人发送短信。",
        "您好，您是张三在平安银行开户时预留的联系人，如有疑问请致电95511。",
        # No brand and no port: the model had read the bare notice as a scam (stop 50)
        "行程中如遇紧急情况，系统将向您的紧急联系人发送短信",
    ],
)
def test_a_notice_about_emergency_contacts_without_a_debt_is_not_collection(
    analyzer: Analyzer, text: str
) -> None:
    verdict = check(analyzer, text, "10690000")
    assert verdict.category != "abusive"
    assert verdict.level != "high"


OBFUSCATED = [
    pytest.param(
        "【支付宝】您的花呗已逾期，请缴纳解冻费2000元，详询客服17123456789",
        "【支付寶】您的花唄已逾期，請繳納解凍費2000元，詳詢客服17123456789",
        id="traditional",
    ),
    pytest.param(
        "【支付宝】您的花呗已逾期，请缴纳解冻费2000元，详询客服17123456789",
        "【支付宝】您的花呗已逾期，请缴纳解 冻 费２０００元，详询客服１７１２３４５６７８９",
        id="spaced-fullwidth",
    ),
    pytest.param(
        "京东客服：请将短信验证码发给专员，加微信 jd_kf 办理注销",
        "京东客服：请将短信验\u200b证\u200b码发给专员🙏，加V信 jd_kf 办理注销",
        id="zero-width-emoji-vxin",
    ),
]


@pytest.mark.parametrize(("plain", "obfuscated"), OBFUSCATED)
def test_obfuscation_keeps_the_verdict(analyzer: Analyzer, plain: str, obfuscated: str) -> None:
    sender = "17123456789"
    plain_verdict = check(analyzer, plain, sender)
    hidden_verdict = check(analyzer, obfuscated, sender)
    assert plain_verdict.category == hidden_verdict.category == "scam"
    plain_rules = {s.id for s in plain_verdict.signals if s.source == "rule"}
    hidden_rules = {s.id for s in hidden_verdict.signals if s.source == "rule"}
    assert plain_rules == hidden_rules
    for signal in hidden_verdict.signals:
        if signal.span is not None:
            start, end = signal.span
            assert obfuscated[start:end] == signal.evidence


def test_otp_notice_is_not_a_credential_request(analyzer: Analyzer) -> None:
    text = "【支付宝】验证码628401，您正在登录支付宝，切勿将验证码告诉他人，工作人员不会向您索取。"
    verdict = check(analyzer, text, "95188")
    assert verdict.category in {"legit", "other"}
    assert not any(signal.fail_closed for signal in verdict.signals)


def test_credential_request_is_never_legit_even_from_official_sender(analyzer: Analyzer) -> None:
    text = "【支付宝】您的花呗账单异常，请回复收到的短信验证码和支付密码以完成身份核验。"
    verdict = check(analyzer, text, "95188")
    assert verdict.category == "scam"
    assert any(signal.fail_closed for signal in verdict.signals)


@pytest.mark.parametrize(
    ("sender", "category"),
    [
        pytest.param("+95188", "scam", id="myanmar-lookalike-of-95188"),
        pytest.param("0095188", "scam", id="00-prefixed-lookalike"),
        pytest.param("95188", "legit", id="alipay-hotline"),
    ],
)
def test_call_record_is_judged_by_the_number(analyzer: Analyzer, sender: str, category) -> None:
    verdict = check(analyzer, sender=sender, kind="call", duration_s=42, direction="incoming")
    assert verdict.kind == "call"
    assert verdict.category == category
    assert verdict.sender is not None and verdict.sender.raw == sender


def test_verdict_contract(analyzer: Analyzer) -> None:
    text = "【支付宝】您的花呗已逾期，请缴纳解冻费，联系客服17123456789"
    verdict = check(analyzer, text, "+86 171 2345 6789").model_dump(mode="json")
    assert set(verdict) >= {
        "risk",
        "level",
        "category",
        "sender",
        "claimed_brands",
        "signals",
        "advice",
        "model_version",
        "rules_version",
    }
    assert 0.0 <= verdict["risk"] <= 1.0
    assert verdict["sender"]["type"] == "virtual_mobile"
    assert verdict["claimed_brands"][0]["official_numbers"][0] == "95188"
    assert any("95188" in line for line in verdict["advice"])
    assert any(s["source"] == "model" for s in verdict["signals"])


def test_english_advice_on_request(analyzer: Analyzer) -> None:
    record = parse_record({"text": "【支付宝】请缴纳解冻费", "sender": "17123456789"})
    english = analyzer.check(record, lang="en")
    chinese = analyzer.check(record, lang="zh")
    assert english.category == chinese.category
    assert english.advice[0].startswith("Do not transfer")
    assert len(english.advice) == len(chinese.advice)


def test_signal_weights_are_the_models_learned_weights(analyzer: Analyzer) -> None:
    text = "【支付宝】您的花呗已逾期，请缴纳解冻费2000元，详询客服17123456789"
    verdict = check(analyzer, text, "17123456789")
    evidence = [s for s in verdict.signals if s.source != "model"]
    assert evidence and all(s.weight_source in {"learned", "hand-set"} for s in evidence)
    learned = [s for s in evidence if s.weight_source == "learned"]
    assert learned, "rules with enough training data show the weight the model learned"
    # The weights of the model that read the message: this clear scam is decided by the
    # cascade's n-gram-only first reader, whose weights differ from the full model's.
    analysis = analyzer.analyze(parse_record({"sender": "17123456789", "text": text}))
    (reading,) = analyzer.model.read_many([analysis])
    assert reading.fast
    reader = analyzer.model.reader_of(reading)
    for signal in learned:
        expected = reader.learned_weight(f"{signal.source}:{signal.id}", signal.category)
        assert signal.weight == round(expected, 3)
        full = analyzer.model.learned_weight(f"{signal.source}:{signal.id}", signal.category)
        assert full != expected
    weights = [s.weight for s in evidence]
    assert weights == sorted(weights, reverse=True), "strongest evidence first"


def test_rules_only_verdict_shows_hand_set_weights(rules_only_analyzer: Analyzer) -> None:
    verdict = check(rules_only_analyzer, "【支付宝】请缴纳解冻费2000元", "17123456789")
    fee = next(s for s in verdict.signals if s.id == "fee_unfreeze")
    assert fee.weight_source == "hand-set"
    assert fee.weight == rules_only_analyzer.ruleset.get("fee_unfreeze").weight
    model_slot = next(s for s in verdict.signals if s.source == "model")
    assert model_slot.absent is True


def _signal(signal_id: str, category: str, weight: float, source: str = "rule") -> Signal:
    return Signal(id=signal_id, source=source, category=category, weight=weight)


def test_strong_content_rules_set_a_floor_under_the_models_reading() -> None:
    strong = [_signal("fee_unfreeze", "scam", 3.0)]
    category, risk = _content_rule_floor(strong, "legit", 0.05)
    assert category == "scam"
    assert risk >= HIGH_RISK, "one rule of weight 3 alone reaches high risk"
    # Two weaker rules together count as strong evidence too, and the floor never lowers risk.
    pair = [_signal("a", "scam", 1.5), _signal("b", "scam", 1.2)]
    assert _content_rule_floor(pair, "other", 0.9) == ("scam", 0.9)


def test_one_abusive_rule_makes_a_genuine_or_other_reading_abusive() -> None:
    threat = [_signal("abusive_public_exposure", "abusive", 2.2)]
    assert _content_rule_floor(threat, "other", 0.01) == ("abusive", 0.01)
    assert _content_rule_floor(threat, "legit", 0.0) == ("abusive", 0.0)
    # A scam reading stands when scam wording backs it: a threat next to a fee is still a scam.
    fee = [*threat, _signal("fee_unfreeze", "scam", 1.0)]
    assert _content_rule_floor(fee, "scam", 0.8) == ("scam", 0.8)
    # Without it, even a high scam reading yields to the threat, keeping its risk.
    assert _content_rule_floor(threat, "scam", 0.8) == ("abusive", 0.8)
    weak = [_signal("abusive_hint", "abusive", 1.0)]
    assert _content_rule_floor(weak, "other", 0.01) == ("other", 0.01)
    # A medium scam reading with no scam wording (a collector's mobile) yields to the threat.
    assert _content_rule_floor(threat, "scam", 0.55) == ("abusive", 0.55)


def test_precise_number_signals_count_as_strong_evidence() -> None:
    spoofed_12381 = [_signal("public_service_with_link", "scam", 3.0, source="numbers")]
    category, risk = _content_rule_floor(spoofed_12381, "legit", 0.07)
    assert category == "scam" and risk >= HIGH_RISK
    unlisted_link = [_signal("brand_link_mismatch", "scam", 2.5, source="numbers")]
    assert _content_rule_floor(unlisted_link, "legit", 0.07) == ("legit", 0.07)


def test_weak_content_rules_and_stronger_abuse_leave_the_reading_alone() -> None:
    weak = [_signal("urgency", "scam", 1.0), _signal("legit_app", "legit", 3.0)]
    assert _content_rule_floor(weak, "legit", 0.1) == ("legit", 0.1)
    # Illegal collection that also threatens is kept as abusive when abuse weighs more.
    abuse = [_signal("threat", "abusive", 3.5), _signal("fee", "scam", 2.5)]
    assert _content_rule_floor(abuse, "abusive", 0.2) == ("abusive", 0.2)


def test_a_fee_script_the_corpus_never_used_is_still_a_scam(analyzer: Analyzer) -> None:
    # Wording chosen to be far from the training corpus; the fee rules carry the verdict.
    text = "您在分期乐的欠款已转入风控冻结名单，须先交纳账户解冻保证金3800元方可办理停息挂账"
    verdict = check(analyzer, text, "13812345678")
    assert verdict.category == "scam"
    assert verdict.risk >= HIGH_RISK
    assert {"fee_unfreeze", "fee_deposit_proof"} <= signal_ids(verdict)


# Shapes found by probing the shipped model with messages written after the corpus (2026-12-02):
# each was misread before its fix (unlisted 106 port, brand short link, warning naming a scam,
# entrusted agency, rate-adjustment script).
REAL_WORLD_SHAPES = [
    pytest.param(
        "1069055512345",
        "【建设银行】您尾号1234的信用卡已逾期，当前欠款1520元，请尽快还款，以免影响您的信用记录。",
        "legit",
        id="bank-notice-from-unlisted-106-port",
    ),
    pytest.param(
        "95555",
        "【招商银行】您的信用卡账单已出，点击 cmbt.cn/a1B2c 查看，或打开掌上生活App还款。",
        "legit",
        id="brand-short-link",
    ),
    pytest.param(
        "12381",
        "【工信部反诈专号】您好，近期“注销校园贷”诈骗高发，任何要求您转账到“安全账户”的都是诈骗。",
        # An anti-fraud reminder is genuine but not about the person's own account: `other`
        # (model/real/LABELING.md).
        "other",
        id="warning-naming-a-scam",
    ),
    pytest.param(
        "13900001111",
        "您好，我是受分期乐委托的催收专员，您的账单已逾期15天，请尽快登录分期乐App还款，"
        "如有困难可联系官方客服协商。",
        "legit",
        id="entrusted-agency-reminder",
    ),
    pytest.param(
        "+8617612345678",
        "亲，您的京东金条借款利率过高，不符合国家规定，我们帮您调整为3.6%，需要您先结清一下",
        "scam",
        id="rate-adjustment-script",
    ),
    pytest.param(
        None,
        "Hi mum, my phone fell in the sink and is broken, this is my new number for now. "
        "Can you save it and message me on WhatsApp?",
        "scam",
        id="english-hi-mum",
    ),
    pytest.param(
        None,
        "您好，您的医保卡在外地被盗刷，已被冻结，请联系专员处理。",
        "scam",
        id="medical-insurance-card-frozen",
    ),
    pytest.param(
        None,
        "那部电影里展示了各种被怪物弄死的死法，男主都一一目睹了。",
        "other",
        id="film-talk-is-not-a-threat",
    ),
]


@pytest.mark.parametrize(("sender", "text", "category"), REAL_WORLD_SHAPES)
def test_real_world_shapes(analyzer: Analyzer, sender: str, text: str, category: str) -> None:
    verdict = check(analyzer, text, sender)
    assert verdict.category == category
    if category in {"legit", "other"}:
        # Never a high-risk alarm; a bare overdue notice with no app or hotline named may sit at
        # medium risk (the model is unsure of it without a listed sender).
        assert verdict.risk < HIGH_RISK
    else:
        assert verdict.risk >= MEDIUM_RISK


def test_entrusted_agency_on_a_mobile_does_not_claim_to_be_the_brand(analyzer: Analyzer) -> None:
    agency = check(
        analyzer,
        "您好，我是XX资产管理公司工作人员（工号A1176），受招联消费金融委托提醒您：您的借款已逾期"
        "18天，请通过招联金融App还款。",
        "13522810394",
    )
    assert "sender_mobile_claims_brand" not in signal_ids(agency)
    assert agency.category == "legit"
    signed = check(analyzer, "【招联金融】您的借款已逾期，请联系专员处理。", "13522810394")
    assert "sender_mobile_claims_brand" in signal_ids(signed)
    # Entrusted or not, asking for a transfer to a private account is a scam.
    paying = check(
        analyzer,
        "我是受招联金融委托的催收专员，您的欠款今天转到我个人账户6222021234567890即可结清。",
        "13522810394",
    )
    assert paying.category == "scam"
