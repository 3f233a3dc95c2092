"""Verdicts a person can trust (issue 9, part 4): every warning has a reason they can read; chat,
numbers alone and foreign text are never over-read; abusive collection carries its harm."""

from __future__ import annotations

import pytest

from model import data
from service.engine.pipeline import (
    CAP_BAND,
    FOREIGN_MODEL_MAX_RISK,
    HIGH_RISK,
    LEGIT_MAX_RISK,
    LOOKALIKE_LINK_SIGNALS,
    MEDIUM_RISK,
    NUMBER_ALONE_MAX_RISK,
    SHORT_CHAT_MAX_RISK,
    UNEXPLAINED_MAX_RISK,
    Analyzer,
    creditor_pressing,
    level_for,
)
from service.engine.schemas import parse_record
from service.engine.summary import headline
from service.paths import DATA_DIR
from service.phones.notify import should_notify


def _check(analyzer: Analyzer, **record: object):
    return analyzer.check(parse_record(record))


@pytest.mark.parametrize(
    "text", ["行行行", "好的", "在吗？", "嗯嗯，知道了", "收到，谢谢", "哈哈哈哈"]
)
@pytest.mark.parametrize("sender", [None, "17012345678", "+852 6123 4567"])
def test_a_few_words_of_chat_never_reach_medium(
    analyzer: Analyzer, text: str, sender: str | None
) -> None:
    record = {"text": text} if sender is None else {"text": text, "sender": sender}
    verdict = _check(analyzer, **record)
    assert verdict.level == "low"
    assert verdict.risk < MEDIUM_RISK
    assert verdict.category in {"other", "legit"}


@pytest.mark.parametrize(
    "sender", ["17012345678", "+86 171 2345 6789", "13812345678", "+852 6123 4567", "02112345678"]
)
@pytest.mark.parametrize("duration", [0, 38, 240])
def test_a_number_alone_is_at_most_medium(analyzer: Analyzer, sender: str, duration: int) -> None:
    verdict = _check(analyzer, kind="call", sender=sender, duration_s=duration)
    assert verdict.level != "high"
    assert verdict.risk < HIGH_RISK


def test_a_hong_kong_banks_reminder_from_852_is_not_called_a_scam(analyzer: Analyzer) -> None:
    verdict = _check(
        analyzer,
        sender="+852 6123 4567",
        text="【恒生銀行】閣下的信用卡結單已發出，最低還款額為HK$500，到期日為12月15日，"
        "請經恒生網上理財或手機App還款。",
    )
    assert verdict.category != "scam"
    assert verdict.level != "high"
    if verdict.level == "medium":
        # A genuine reading with a doubt (the overseas mobile sender) says both at once.
        assert "正常提醒，但要留意" in headline(verdict)
        assert "looks genuine, but be careful" in headline(verdict, "en")


def test_abusive_collection_is_high_risk_and_pushed(analyzer: Analyzer) -> None:
    verdict = _check(
        analyzer,
        sender="17012345678",
        text="你再不还钱，我们就把你欠钱的事发给你通讯录所有人，让你爸妈和单位都知道你是老赖",
    )
    assert verdict.category == "abusive"
    assert verdict.risk >= HIGH_RISK and verdict.level == "high"
    assert should_notify(verdict)
    assert any(s.category == "abusive" and s.explanation for s in verdict.signals)


# From her phone, or pasted on the page with no sender: the model reads the pasted text as a
# scam and then as a creditor pressing for money; "你借的那个网贷" asks for nothing.
@pytest.mark.parametrize("sender", ["13812345678", None])
def test_a_worried_family_message_about_a_loan_is_not_abusive(
    analyzer: Analyzer, sender: str | None
) -> None:
    verdict = _check(
        analyzer,
        sender=sender,
        text="老公，你借的那个网贷还了吗？今天又有人打电话到家里催，我好担心，你早点回来我们商量一下",
    )
    assert verdict.category not in {"abusive", "scam"}
    assert not should_notify(verdict)


def test_family_asking_where_you_are_is_not_a_scam(analyzer: Analyzer) -> None:
    # The model hears "回个电话" as a scam's callback; addressed to kin and asking for nothing
    # (no money, number, account or emergency), it is family.
    verdict = _check(analyzer, text="老公，你怎么还没回家？电话也不接，我很担心你，看到回个电话。")
    assert verdict.category == "other"
    assert verdict.level == "low"


@pytest.mark.parametrize(
    "text",
    [
        "Honey, I love you. Call me when you land.",
        "Hey babe! I saw you came online for a second and then you disappeared, what happened?",
    ],
)
def test_english_family_chat_that_asks_for_nothing_is_not_a_scam(
    analyzer: Analyzer, text: str
) -> None:
    # Model 5023d5 read both as a scam at medium (0.59, 0.60): romance scams open this way too,
    # but with nothing asked (no money, code, number or new phone) it is chat, as in Chinese.
    verdict = _check(analyzer, text=text)
    assert verdict.category != "scam"
    assert verdict.level == "low"


@pytest.mark.parametrize(
    "text",
    [
        "妈，我手机掉了，这是我新号码，加我微信",
        "爸，我在外面出事了，急需用钱，先别告诉妈",
        "Hi mum, I've dropped my phone and now it's broken, this is my new number for now",
    ],
)
def test_family_that_asks_for_money_or_a_new_number_is_still_checked(
    analyzer: Analyzer, text: str
) -> None:
    verdict = _check(analyzer, text=text)
    assert verdict.category == "scam"
    assert verdict.level in {"medium", "high"}


@pytest.mark.parametrize(
    "text",
    [
        "PayPal: Your account has been limited. Please verify your information at "
        "http://paypa1-secure.com/login within 24 hours.",
        "Congratulations! You won a $1000 Walmart prize. Pay the $25 shipping fee in Google Play "
        "gift cards to claim.",
        "USPS: your parcel is on hold due to an incomplete address. Update it at "
        "usps-redelivery.top/track within 12 hours.",
    ],
)
def test_english_phishing_is_flagged_with_a_coverage_note(analyzer: Analyzer, text: str) -> None:
    verdict = _check(analyzer, text=text)
    assert verdict.category == "scam" and verdict.level != "low"
    assert verdict.coverage and "中文" in verdict.coverage
    assert any(s.source == "rule" and s.explanation for s in verdict.signals)


def test_english_text_without_a_phishing_sign_gets_a_note_not_a_confident_green(
    analyzer: Analyzer,
) -> None:
    verdict = _check(analyzer, text="Your Uber code is 4821. Never share this code.")
    assert verdict.category != "scam"
    assert verdict.coverage
    english = analyzer.check(parse_record({"text": "See you at 7 tonight then"}), lang="en")
    assert english.coverage and "Chinese" in english.coverage


@pytest.mark.parametrize(
    "cap",
    [
        LEGIT_MAX_RISK,
        FOREIGN_MODEL_MAX_RISK,
        UNEXPLAINED_MAX_RISK,
        SHORT_CHAT_MAX_RISK,
        NUMBER_ALONE_MAX_RISK,
    ],
)
def test_a_caps_band_stays_inside_its_level(cap: float) -> None:
    # A cap squeezes the risks above `cap - CAP_BAND` into the band below it; the whole band must
    # lie in the cap's level, or the squeeze would move a risk to a lower level than `min` gave.
    assert level_for(cap - CAP_BAND, "scam") == level_for(cap, "scam")


def test_a_cap_holds_back_the_risk_without_flattening_it(analyzer: Analyzer) -> None:
    # Real English scam SMS (model/real, en34) that no rule reads: the model alone calls them
    # scams, and on foreign text its reading stays below high; the risks keep their order, so a
    # cut on risk can still tell one held-back message from another.
    texts = [
        "Claim your tax refund of $825.09NZD, follow the link below,",
        "Medicare: You have been in close contact with someone who has contracted Omicron. You "
        "must receive a PCR test kit at:",
        "HALIFAX: We would like to verify a recent payment from your account. Please follow our "
        "link for more details: https://halifax.co.uk.app-review-1485.info.",
    ]
    verdicts = [_check(analyzer, text=text) for text in texts]
    assert all(v.category == "scam" and v.level == "medium" for v in verdicts)
    assert all(MEDIUM_RISK <= v.risk < HIGH_RISK for v in verdicts)
    assert len({v.risk for v in verdicts}) == len(texts)


@pytest.mark.parametrize(
    "text",
    [
        "【广发银行】您的信用卡分期账户多收利息268.00元已核准退还，请于当日登录 cgb-tk.cn/r8 领取，"
        "逾期视为自动放弃。",
        "【建设银行】您尾号1234的储蓄卡本月账单已出，详情请登录 ccb-zd.cn 查看。",
    ],
)
def test_a_link_dressed_as_the_brands_own_domain_is_never_a_genuine_notice(
    analyzer: Analyzer, text: str
) -> None:
    # Their words read as the bank's notices they copy (legit, without this check); the domain
    # carries the bank's name with a dash, where the bank's own notice links to its real domain.
    verdict = _check(analyzer, text=text)
    assert any(s.id in LOOKALIKE_LINK_SIGNALS for s in verdict.signals)
    assert verdict.category == "scam"
    assert verdict.level != "low"


@pytest.mark.parametrize(
    "text",
    [
        "Honey, I love you. Call me when you land and I will pick you up.",
        "Enter this verification code when prompted by the bank to complete your sign in: 729565",
        "Dear Sir/Madam, an officer will be contacting you in the next 30 minutes to follow up on "
        "your recent feedback to the Police.",
    ],
)
def test_a_model_reading_of_foreign_text_is_never_high(analyzer: Analyzer, text: str) -> None:
    # Nothing a rule can see: the model's reading of English is a hint (it has read a couple of
    # hundred foreign rows), so it may warn but never reaches high risk.
    verdict = _check(analyzer, text=text)
    assert verdict.coverage
    assert verdict.level != "high" and verdict.risk < HIGH_RISK


@pytest.mark.parametrize(
    "text",
    [
        "Honey, I love you. Call me when you land.",
        "Nikomu ne govorite etot SMS-kod: 8867. Vy vhodite v mobil'niy bank",
    ],
)
def test_foreign_text_without_a_word_of_debt_is_never_abusive_collection(
    analyzer: Analyzer, text: str
) -> None:
    # The model's foreign "abusive" reading is mostly the language itself; abusive collection is
    # pushed to the phone, so it needs a rule or at least a word about money owed.
    verdict = _check(analyzer, text=text)
    assert verdict.category != "abusive"
    assert not should_notify(verdict)


_GATHERING = "周六同学聚会改到晚上七点，地点不变，记得带相机。"
_MEETING = "会议改到下午三点，地点在三楼会议室。"


@pytest.mark.parametrize(
    ("text", "sender"),
    [
        (_GATHERING, "13612345678"),
        (_GATHERING, "17012345678"),
        (_MEETING, "13612345678"),
        (_MEETING, "17012345678"),
    ],
)
def test_an_unlisted_mobile_does_not_make_everyday_words_abusive_collection(
    analyzer: Analyzer, text: str, sender: str
) -> None:
    # Most collectors write from mobiles, so the sender alone leans the model to collection;
    # abusive collection is in the words, and these words alone read as an everyday message.
    verdict = _check(analyzer, text=text, sender=sender)
    assert verdict.category == "other"
    assert not should_notify(verdict)


_LATE = "抱歉今天上午公司有一个紧急会议，开完会我联系你。"
_LATER = "我下午要开会，晚上再联系你。"
_BOSS = "领导让你明天把材料交上来，开完会再说。"
_SENDERS = ["17012345678", "+852 6123 4567", "13612345678"]


@pytest.mark.parametrize("text", [_LATER, _BOSS])
@pytest.mark.parametrize("sender", _SENDERS)
def test_the_kind_of_sender_never_lifts_words_to_high(
    analyzer: Analyzer, text: str, sender: str
) -> None:
    # "开会" is in many fake-boss scripts. Before the number cap a 170 number lifted such words
    # (0.46 with model be53dc) to high (0.84), a +852 one to 0.99, and the phone was pushed.
    # Until stop 57 a +852 number made _LATER abusive collection at 0.999, pushed: the words
    # alone leaned to collection with no debt in them. Until stop 58 a 136 number made _BOSS
    # (words alone: a scam at medium) abusive collection at 0.94, pushed. A number alone is at
    # most medium, and so is what it adds to the words.
    alone = _check(analyzer, text=text)
    assert alone.level != "high" and alone.category != "abusive"  # what the test is about
    verdict = _check(analyzer, text=text, sender=sender)
    assert verdict.level != "high"
    assert verdict.category != "abusive"
    assert not should_notify(verdict)


@pytest.mark.parametrize("text", ["你涉嫌经济犯罪", "领导的声音都听不出来？"])
def test_a_collectors_kind_of_number_never_makes_a_scam_collection(
    analyzer: Analyzer, text: str
) -> None:
    # Collectors call from ordinary mobiles, so the model hears collection in a 136 number:
    # until stop 58 these impersonation lines from one read as abusive collection.
    alone = _check(analyzer, text=text)
    assert alone.category == "scam"  # what the test is about
    verdict = _check(analyzer, text=text, sender="13612345678")
    assert verdict.category == "scam"
    # Nor does the number take the words out of their level: a first version of the fix read
    # them as a scam at low risk. (Within the level the model's prior that ordinary mobiles
    # send chat may lower the risk: 0.98 alone, 0.87 from this number with model dd1b9c.)
    assert verdict.level == alone.level


@pytest.mark.parametrize("sender", _SENDERS)
def test_a_number_adds_at_most_medium_to_words_that_lean_to_collection(
    analyzer: Analyzer, sender: str
) -> None:
    # A borrower's friend answering a collector; the words lean to collection (model 385cc0:
    # abusive at medium; model dd1b9c: other at low, with a third of the reading abusive). Until
    # stop 58 the abusive risk added the sender-driven shares: high from any of these numbers.
    text = "欠錢的又不是我，你客氣一點"
    alone = _check(analyzer, text=text)
    (words,) = analyzer.model.read_many([analyzer.analyze(parse_record({"text": text}))])
    assert words.probabilities["abusive"] > 0.2 + words.probabilities["scam"]  # the lean
    verdict = _check(analyzer, text=text, sender=sender)
    assert verdict.level != "high"
    assert verdict.risk <= max(alone.risk, NUMBER_ALONE_MAX_RISK)


@pytest.mark.parametrize("sender", ["17012345678", "13612345678"])
def test_a_police_reminder_about_loan_scams_is_not_collection(
    analyzer: Analyzer, sender: str
) -> None:
    # "贷" is debt talk, and a mobile claiming the police tilts the words toward a scam with
    # a share of collection: until stop 58 this read as abusive collection at high risk.
    text = "我是钱江世纪城派出所的民警,你遇到贷款诈骗了,千万不要转账!"
    assert _check(analyzer, text=text).category == "other"  # what the test is about
    verdict = _check(analyzer, text=text, sender=sender)
    assert verdict.category != "abusive"
    assert verdict.level != "high"


@pytest.mark.parametrize("text", [_LATE, _LATER, _BOSS])
@pytest.mark.parametrize("sender", _SENDERS)
def test_the_words_alone_read_as_a_message_without_a_sender(
    analyzer: Analyzer, text: str, sender: str
) -> None:
    # The sender cap weighs the words alone; until stop 58 it read them with the reader that
    # read the message with its sender (the cascade's first reader, sure of a +852 scam), while
    # the same words pasted without a sender went on to the full model: _LATE read 0.67 in
    # the cap and 0.72 pasted alone, so a sender lowered it.
    model = analyzer.model
    with_sender = analyzer.analyze(parse_record({"text": text, "sender": sender}))
    without = analyzer.analyze(parse_record({"text": text}))
    words = model.predict_text_only(with_sender)
    (pasted_alone,) = model.read_many([without])
    assert words == pytest.approx(pasted_alone.probabilities, abs=1e-9)


@pytest.mark.parametrize(
    "text",
    [
        "你欠的钱今天再不还，明天就去你家门口等你。",
        "三天内不还款，我们就上门找你家人。",
    ],
)
def test_a_threat_that_names_the_debt_is_still_abusive(analyzer: Analyzer, text: str) -> None:
    verdict = _check(analyzer, text=text, sender="13698765432")
    assert verdict.category == "abusive"
    assert should_notify(verdict)


def test_english_collection_threatening_the_employer_is_abusive(analyzer: Analyzer) -> None:
    verdict = _check(
        analyzer,
        text="Dear Musa, since you are unresponsive, we may escalate recovery efforts, including "
        "contacting your employer regarding your debt with Zenka. Call us ASAP.",
    )
    assert verdict.category == "abusive"
    assert any(s.id == "en_abusive_collection" for s in verdict.signals)


def _signals_of(analyzer: Analyzer, text: str):
    analysis = analyzer.analyze(parse_record({"text": text}))
    return analysis, list(analysis.signals)


@pytest.mark.parametrize(
    ("text", "scam", "abusive", "pressing"),
    [
        # A creditor's threat the model hears as extortion: debt talk, no scam evidence.
        ("你這筆錢若不處理，要讓大家難看", 0.6, 0.3, True),
        ("欠的钱今天不还，你自己看着办", 0.55, 0.2, True),
        # The model hears no collection in it: the scam reading stands.
        ("欠的钱今天不还，你自己看着办", 0.9, 0.05, False),
        # Not about a debt at all.
        ("领导的声音都听不出来？明天来我办公室", 0.6, 0.3, False),
        # Asking the reader to lend is the opposite of collecting: a fake friend's request.
        ("能借我2000元急用吗？领导问我借钱，他下午就能还", 0.6, 0.3, False),
        # "借我们的钱" is still the creditor speaking.
        ("你借我们的钱到现在还不还？再拖下去后果自负", 0.6, 0.2, True),
        # A fee to settle the debt is a scam's ask, whatever the model hears.
        ("你的网贷逾期了，先交500元手续费到指定账户就能停催，不然通知你家人", 0.6, 0.35, False),
    ],
)
def test_debt_talk_the_model_half_hears_as_collection_is_abusive_only_without_scam_evidence(
    analyzer: Analyzer, text: str, scam: float, abusive: float, pressing: bool
) -> None:
    analysis, signals = _signals_of(analyzer, text)
    probabilities = {"scam": scam, "abusive": abusive, "legit": 0.05, "other": 0.05}
    assert creditor_pressing(analysis, signals, probabilities) is pressing


def test_chinese_text_gets_no_coverage_note(analyzer: Analyzer) -> None:
    verdict = _check(
        analyzer, text="【招商银行】您尾号1234的信用卡本期账单已出，请于12月8日前还款。"
    )
    assert verdict.coverage is None


@pytest.fixture(scope="module")
def real_verdicts(analyzer: Analyzer):
    examples, _ = data.deduplicate(data.load_real() + data.load_real_quoted())
    return [(e, analyzer.check(e.record)) for e in examples]


def test_every_medium_or_high_verdict_on_real_messages_has_a_readable_reason(
    real_verdicts,
) -> None:
    unexplained = [
        example.record.text
        for example, verdict in real_verdicts
        if verdict.level != "low"
        and not any(s.id != "model" and (s.explanation or s.evidence) for s in verdict.signals)
    ]
    assert unexplained == []


def test_model_phrases_are_spans_of_the_original_text(real_verdicts) -> None:
    phrases = [
        (example.record.text, signal)
        for example, verdict in real_verdicts
        for signal in verdict.signals
        if signal.id == "model_phrase"
    ]
    assert phrases, "no model-driven verdict among the real rows"
    for text, signal in phrases:
        start, end = signal.span
        assert text[start:end] == signal.evidence
        assert signal.explanation and signal.category in {"scam", "abusive"}
        assert (signal.weight or 0) > 0


# Real one-time codes that the model alone read as scams for their wording ("验证码", "账户"); the
# texts are from model/real (pasted_sms, pasted_issues2, traditional).
@pytest.mark.parametrize(
    "text",
    [
        "【蝦皮購物】輸入 123456 以登入您的帳號，15 分鐘有效。"
        "請不要將驗證碼分享給任何人，包括蝦皮員工。",
        "【闲鱼】951826（验证码仅用于您本人登录验证）。别人包括客服要验证码是骗子，会导致钱财账号被盗。",
        "Citi ID Code: 12345678 We'll NEVER call or text for this code.",
    ],
)
def test_a_genuine_code_notice_with_nothing_harmful_stays_low(
    analyzer: Analyzer, text: str
) -> None:
    verdict = _check(analyzer, text=text)
    assert verdict.level == "low"
    assert verdict.category in {"legit", "other"}
    assert any(s.id == "legit_code_warning" for s in verdict.signals)


def test_the_genuine_marks_never_cover_a_phishing_link(analyzer: Analyzer) -> None:
    # A scam that copies a code notice's warning still sends the person to a site: that wins.
    verdict = _check(
        analyzer,
        text="【支付宝】验证码834201，请勿泄露给他人。您的账户存在异常，请登录 http://alipay-verify.cc"
        " 核实身份。",
    )
    assert verdict.category == "scam"
    assert verdict.level == "high"


def test_a_collectors_made_up_criminal_charge_is_abusive(analyzer: Analyzer) -> None:
    verdict = _check(
        analyzer,
        text="你在我司的借款已严重逾期，已涉嫌贷款诈骗，再不还款我们将向你户籍地派出所报案。",
    )
    assert verdict.category in {"abusive", "scam"}
    assert verdict.level == "high"
    assert any(s.id == "abusive_false_criminal_charge" for s in verdict.signals)


def test_family_address_never_hides_a_fake_relative_scam(analyzer: Analyzer) -> None:
    # Family words lift only a model-only abusive reading; "妈，…" is how fake-relative scams open.
    verdict = _check(
        analyzer,
        text="妈，我手机丢了，这是我新号。我在外面出了点事急需用钱，你先转5000到这个账户"
        "6222020200112233445，别告诉爸",
    )
    assert verdict.category == "scam"
    assert verdict.level == "high"


def test_everyday_english_is_not_read_as_a_scam(analyzer: Analyzer) -> None:
    # The UCI half the model never trained on (data.uci_half): friends' and family's everyday
    # English SMS. Model a71e46, trained with English scams but no everyday English, flagged 77 %
    # of such messages as scams; a warning must mean something in English too.
    ham = [e for e in data.load_uci(DATA_DIR, "report") if e.group == "uci:ham"]
    verdicts = analyzer.check_many([e.record for e in ham])
    flagged = sum(v.category == "scam" or v.level == "high" for v in verdicts)
    pushed = sum(v.level == "high" for v in verdicts)
    assert len(ham) > 2000
    assert flagged / len(ham) < 0.25
    assert pushed / len(ham) < 0.01
