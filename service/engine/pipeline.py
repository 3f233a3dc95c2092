"""The scoring pipeline: record → normalise → numbers → rules → model → verdict.

`Analyzer` is loaded once per process (rules, official lists, model) and is then read-only, so one
instance serves every request of a worker.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import phonenumbers
import re2

from service.engine import advice as advice_text
from service.engine.analysis import Analysis
from service.engine.artifact import ModelError, load_model
from service.engine.model import Reading
from service.engine.normalize import normalize
from service.engine.numbers.directory import Directory, NumberListError
from service.engine.numbers.parse import NumberInfo
from service.engine.numbers.phone_facts import load_data as load_phone_data
from service.engine.numbers.phone_facts import phone_facts
from service.engine.numbers.signals import number_signals
from service.engine.rules import RuleLoadError, RuleSet
from service.engine.schemas import (
    CallRecord,
    ClaimedBrand,
    Lang,
    NumberInText,
    SenderInfo,
    Signal,
    SmsRecord,
    Verdict,
)
from service.paths import MODEL_PATH, NUMBERS_DIR, PATTERNS_DIR

log = logging.getLogger(__name__)

HIGH_RISK = 0.7
MEDIUM_RISK = 0.3
# Summed weight of content scam rules that is enough on its own (one strong rule, e.g. a fee
# to "unfreeze" a loan, or two weaker ones together).
STRONG_CONTENT_EVIDENCE = 2.5
# One abusive rule (hand-set weights 2.0-2.2): enough to call collection abusive.
ABUSIVE_CONTENT_EVIDENCE = 2.0
# Number signals as precise as a content rule, counted with them: a foreign number dressed as a
# 95xxx hotline, a link on a 12381/96110 message (they never carry one), a brand's name inside a
# domain it does not own. (A link merely missing from our lists is not: the lists are incomplete.)
PRECISE_NUMBER_SIGNALS = frozenset(
    {"international_lookalike_official", "public_service_with_link", "lookalike_domain"}
)

# A link dressed as a brand's own domain (its name with a dash and a cheap suffix, as a rule or
# the link check reads it). A genuine notice links to the brand's real domain, so a message with
# one is not a genuine notice (`legit`), whatever its words read like.
LOOKALIKE_LINK_SIGNALS = frozenset(
    {"lookalike_domain", "link_lookalike_domain", "en_lookalike_brand_link"}
)

# Number facts the meaning neighbours' lowering of a scam reading stands against
# (_evidence_unseen_by_meaning) leave out these: the kind of sender and a short link.
NOT_UNSEEN_BY_MEANING = frozenset({"virtual_mobile_sender", "international_sender", "short_link"})

# A message with fewer letters and digits than this ("行行行", "在吗？") is a few words of chat:
# without a rule, a known script or a number fact, it never reaches medium.
SHORT_CHAT_CHARS = 10
SHORT_CHAT_MAX_RISK = 0.25
# A number alone (an unlisted mobile, a 170/171 call, a +852 sender) is at most medium unless a
# list says more (PRECISE_NUMBER_SIGNALS, an official number used by someone else).
NUMBER_ALONE_MAX_RISK = 0.5
# Abusive collection threatens real harm: a clear abusive rule makes it high risk (and pushed).
ABUSIVE_RULE_RISK = 0.75
# A near match to a published scam script is evidence as strong as a content rule.
KNOWN_SCRIPT_WEIGHT = 3.0
# Text that is mostly not Chinese: dunscan's rules and model read Chinese; below this share of
# CJK characters among letters the verdict says so (and English phishing rules still run).
MIN_CJK_SHARE = 0.3
# On such text the model has read few examples (a couple of hundred foreign rows): with no rule,
# script or precise number fact behind it, its reading may warn but never reaches high. On the
# grouped real evaluation this un-pushed 10 genuine or everyday English rows it read as abusive
# ("Honey, I love you") at the cost of 7 English scams that were only flagged by that reading.
FOREIGN_MODEL_MAX_RISK = HIGH_RISK - 0.01
# Its foreign "abusive" reading is mostly the language (its English rows are mostly loan-app
# harassment): without a word about money owed it is not collection. On the grouped real CV this
# stopped 18 English, Russian and Vietnamese rows (one-time codes, "Honey, I love you", health
# notices, scams) being pushed as abusive collection, and lost 5 abusive rows with no debt word
# ("I will destroy your life").
FOREIGN_DEBT_WORDS = re2.compile(
    r"(?:^|[^a-z])(?:loans?|debts?|debtors?|pay|paid|paying|payment|repay\w*|owe|owes|owing|owed|"
    r"default\w*|overdue|outstanding|money|borrow\w*|guarantor|kin|cash|amount|reminders?|o\$p\$)(?:[^a-z]|$)"
)
COVERAGE_NOTE = {
    "zh": "dunscan 主要识别中文短信；这条以外文为主，只做了基本的钓鱼检查（仿冒链接、礼品卡付费、"
    "放款前收费、催促验证），结果仅供参考。",
    "en": "dunscan mainly reads Chinese messages; this one is mostly in another language, so only "
    "basic phishing checks ran (look-alike links, gift-card fees, fees before a loan is paid out, "
    "urgent verification).",
}
# Model-driven verdicts show the phrases that pushed the model most (at most this many).
MAX_MODEL_PHRASES = 3

# Marks of a genuine notice (rules/patterns/legit.yaml: a code that warns not to share it, the
# official app or automatic deduction, an amount and a due date) summing to this much, with not
# one rule, number fact or known script pointing to harm, keep a model-only reading below medium:
# the model flagged real one-time codes and repayment notices for their wording alone ("验证码",
# "账户", "扣款"), while a scam that copies these marks still asks for something a rule sees.
LEGIT_CONTENT_EVIDENCE = 0.8
LEGIT_MAX_RISK = 0.25

# A model reading with no rule, number fact or phrase behind it stays below medium.
UNEXPLAINED_MAX_RISK = MEDIUM_RISK - 0.01
# A cap squeezes the risks above it into this band just below it (`_capped`) instead of setting
# them all to the cap, so the risk still ranks the messages a cap holds back. As a plain `min`,
# the foreign-text cap alone put 416 real scams and 53 genuine rows of the grouped real
# evaluation on one value (0.69), so a cut there could not tell them apart.
CAP_BAND = 0.1

# A message that opens by addressing the reader as family ("老公，…", "妈，…") comes from family.
# Without a rule that shows a collector's threat, the model's abusive reading of such a message
# (it has the words of collection: "打电话到家里催") is not abusive collection. A scam reading is
# left alone: "妈，我换号了" is how fake-relative scams open, and "Hi mum, this is my new number"
# the English one (the English address after an optional greeting; normalised text is lower case).
KIN_ADDRESS = re2.compile(
    r"^\s*(?:老公|老婆|亲爱的|宝贝|爸爸?|妈妈?|老爸|老妈|儿子|女儿|闺女|哥|姐|弟弟?|妹妹?|"
    r"(?:(?:hi|hey|hello|my)\s+)?(?:honey|hun|babe|baby|darling|sweetheart|sweetie|love|"
    r"mum|mom|mummy|mommy|mama|dad|daddy|papa|son|sis|bro))\s*[，,：:！!。.]"
)
# What a message from "family" must carry to be the 冒充亲友 scam rather than family: money, a
# transfer, a new number or account, an emergency. Without any of it, a model-only scam reading of
# "老公，你怎么还没回家？看到回个电话" is the model hearing "回个电话", not a scam. A request to
# lend ("借我", "借点") is an ask; "你借的那个网贷" is a worried spouse, not one.
FAMILY_SCAM_ASK = re2.compile(
    r"钱|汇|转账|转给|转过来|打给|卡号|[账帐]号|[账帐]户|借(?:我|给我|点|些|一下|几|用)|元|块|万|"
    r"急用|验证码|链接|http|www|微信|"
    r"qq|新号|号码|手机(?:掉|丢|坏|被)|出事|救命|医院|派出所|警察|公安|学费|押金|保证金|罚款|绑架|手术|"
    # The English "Hi mum" script: a new or broken phone, then money or a code
    r"money|cash|send|sent|transfer|pay|bank|account|card|code|number|link|urgent|emergency|"
    r"help|hospital|police|phone|whatsapp|gift|fee|loan|borrow|lend|\$|£|€|\d{3,}"
)


# Debt talk with no scam evidence (no rule, script or precise number fact, nothing asked for):
# when the model's abusive reading is at least this share of its scam reading, the message is
# a creditor pressing for money, not an impersonation. On the grouped real evaluation (2,264
# rows) a share of 0.3 moved abusive recall from 72.9 % to 76.7 % and changed no genuine or scam
# row's flag: the threats it catches ("若不處理，要讓大家難看") read to the model as extortion
# scams. At 0.15 (2,483 rows) three more loan sharks' threats ("你先生在我手裡，他欠我錢") are
# collection, no genuine row's flag changed, and the one scam it took (a fake friend's "能借我
# 2000元急用吗") is why a request to lend (BORROW_ASK) is never a creditor's.
ABUSIVE_SHARE_OF_SCAM = 0.15
# The genuine-notice rule that reads a police or bank warning about scams.
ANTI_FRAUD_REMINDER = "legit_anti_fraud_reminder"
# Someone asking the reader to lend them money is not collecting a debt owed to them.
BORROW_ASK = re2.compile(r"借(?:给)?我(?:[^们]|$)|(?:能|可以|可否|能不能|可不可以)(?:先)?借")
DEBT_TALK = re2.compile(
    r"还款|还钱|还上|还清|不还|欠款|欠钱|欠债|欠的|所欠|欠(?:我|你)|逾期|催收|债|借款|借钱|贷|"
    r"拖欠|赖账|老赖|这笔钱|筹钱|本票|利息"
)

# Calling codes whose regions' metadata `Analyzer.warm` reads ahead: mainland China, Hong Kong,
# Macao, Taiwan, where scam calls are commonly routed from, and the shared codes (+1, +7, +44)
# whose 归属地 reads the metadata of every region under them.
_WARM_CALLING_CODES = (86, 852, 853, 886, 1, 7, 44, 65, 60, 63, 66, 84, 855, 95, 81, 82)


def _warm_regions() -> list[str]:
    return sorted(
        {
            region
            for code in _WARM_CALLING_CODES
            for region in phonenumbers.region_codes_for_country_code(code)
        }
    )


class LoadError(ValueError):
    """Something the analyzer needs could not be loaded; the message says what and where."""


def _sigmoid(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-value))


def _capped(risk: float, cap: float) -> float:
    """At most `cap`, keeping the order of risks: those above `cap - CAP_BAND` are squeezed into
    the band below the cap (each cap sits at least CAP_BAND above its level's lower bound, so the
    level is the one `min` would give; tests/test_trust.py holds that for every cap)."""
    floor = cap - CAP_BAND
    if risk <= floor:
        return risk
    return floor + (risk - floor) * CAP_BAND / (1.0 - floor)


def _words_and_number(words_share: float, reading_share: float) -> float:
    """A share the words alone give, and what the sender's number adds to it: the reading with
    the number counts for as much as a number alone can carry (medium at most)."""
    return max(words_share, _capped(reading_share, NUMBER_ALONE_MAX_RISK))


def level_for(risk: float, category: str) -> str:
    if risk >= HIGH_RISK:
        return "high"
    if risk >= MEDIUM_RISK or category == "abusive":
        return "medium"
    return "low"


def rule_prior_probabilities(signals: list[Signal], finance_related: bool) -> dict[str, float]:
    """Category probabilities from hand-set weights alone: used when no model is shipped.

    Logistic link over summed weights, like SpamAssassin scores; the trained model replaces this.
    """
    totals = {"scam": 0.0, "abusive": 0.0, "legit": 0.0}
    for signal in signals:
        if signal.category in totals and signal.weight:
            totals[signal.category] += signal.weight
    p_scam = _sigmoid(totals["scam"] - 0.5 * totals["legit"] - 2.0)
    p_abusive = (1 - p_scam) * _sigmoid(totals["abusive"] - 2.0)
    rest = 1.0 - p_scam - p_abusive
    legit_share = 0.9 if finance_related else 0.1
    return {
        "scam": p_scam,
        "abusive": p_abusive,
        "legit": rest * legit_share,
        "other": rest * (1 - legit_share),
    }


class Analyzer:
    """Loads rules, official lists and the model once; turns records into verdicts."""

    def __init__(self, directory: Directory, ruleset: RuleSet, model: Any | None = None) -> None:
        self.directory = directory
        self.ruleset = ruleset
        self.model = model

    @classmethod
    def load(
        cls,
        patterns_dir: Path | None = None,
        numbers_dir: Path | None = None,
        model_path: Path | None = None,
        use_model: bool = True,
    ) -> Analyzer:
        """Load everything; raise LoadError naming what is wrong. Refuses a tampered model."""
        started = time.perf_counter()
        model = _load_model(model_path) if use_model else None
        # The parsed copy of the files the training run checked, used for files unchanged since.
        stored = getattr(model, "data_files", None) or {}
        try:
            directory = Directory.load(numbers_dir or NUMBERS_DIR, stored=stored.get("numbers"))
        except NumberListError as error:
            raise LoadError(f"official number lists: {error}") from error
        try:
            ruleset = RuleSet.load(
                patterns_dir or PATTERNS_DIR,
                verified_version=getattr(model, "rules_version", None),
                stored=stored.get("rules"),
            )
        except RuleLoadError as error:
            raise LoadError(f"rules: {error}") from error
        analyzer = cls(directory, ruleset, model)
        log.info(
            "analyzer loaded",
            extra={
                "rules": len(ruleset.rules),
                "brands": len(directory.brands),
                "versions": analyzer.versions,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return analyzer

    def warm(self) -> Analyzer:
        """Build what the first checks would otherwise build lazily (the rules' regexes, the
        known-script lookup, the explanation terms): in a server that loads once and forks, the
        workers then share them instead of each building its own copy."""
        self.ruleset.compile_all()
        if getattr(self.model, "reads_embedding", False):
            # The sentence encoder's tokenizer and memory-mapped weights (service/engine/
            # sentence.py), loaded once for every worker instead of on each one's first check.
            from service.engine.sentence import shared_encoder

            shared_encoder().encode(["预热"])
        scripts = getattr(self.model, "scripts", None)
        if scripts is not None:
            scripts.positions()
        for model in (self.model, getattr(self.model, "fast", None)):
            explainer = getattr(model, "_explainer", None)
            if explainer is not None:
                explainer()
        # The 归属地 and carrier prefixes (~5 MB): one shared copy rather than one per worker.
        load_phone_data()
        # phonenumbers reads a region's metadata and compiles its patterns on the first number
        # from there: each such first number took 1-5 ms (the bench's slowest checks). One
        # example number of each region senders mostly come from does it here, before the fork.
        for region in _warm_regions():
            example = phonenumbers.example_number(region)
            if example is None:
                continue
            info = self.directory.classify(
                phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            )
            for lang in ("zh", "en"):
                phone_facts(info, lang)
        return self

    @property
    def versions(self) -> dict[str, str | None]:
        return {
            "rules": self.ruleset.version,
            "numbers": self.directory.version,
            "model": getattr(self.model, "version", None),
        }

    @property
    def rules_version(self) -> str:
        return f"{self.ruleset.version}+{self.directory.version}"

    def analyze(self, record: SmsRecord | CallRecord) -> Analysis:
        """Collect evidence from numbers and rules (no verdict yet)."""
        sender = self.directory.classify(record.sender) if record.sender else None
        text = record.text or ""
        norm = normalize(text) if text else None
        brands = self.directory.find_brands(norm) if norm else []
        contacts = self.directory.find_contacts(norm) if norm else []
        signals = list(self.ruleset.signals(norm)) if norm else []
        signals.extend(number_signals(record.kind, sender, brands, contacts, norm, self.directory))
        return Analysis(record, norm, sender, brands, contacts, signals)

    def check(self, record: SmsRecord | CallRecord, lang: Lang = "zh") -> Verdict:
        """One record in, one explained verdict out (a batch of one: the same code and the same
        arithmetic as `check_many`, so both give the same verdict)."""
        return self.check_many([record], lang)[0]

    def check_many(
        self, records: Sequence[SmsRecord | CallRecord], lang: Lang = "zh"
    ) -> list[Verdict]:
        """Verdicts for a batch of records, in order: the model scores the whole batch in one
        TF-IDF transform and one matrix product; the rest runs per record.

        Records with the same content (a campaign sent to many people, an export with repeated
        rows) are scored once: each gets that verdict under its own id."""
        first_of: dict[tuple[Any, ...], int] = {}  # content -> index in `distinct`
        distinct: list[SmsRecord | CallRecord] = []
        slots = []
        for record in records:
            slot = first_of.setdefault(_content_key(record), len(distinct))
            if slot == len(distinct):
                distinct.append(record)
            slots.append(slot)
        analyses = [self.analyze(record) for record in distinct]
        if self.model is not None:
            readings: list[Reading | None] = list(self.model.read_many(analyses))
        else:
            readings = [None] * len(analyses)
        verdicts = [
            self._verdict(analysis, reading, lang)
            for analysis, reading in zip(analyses, readings, strict=True)
        ]
        return [
            verdicts[slot]
            if verdicts[slot].id == record.id
            else verdicts[slot].model_copy(update={"id": record.id})
            for record, slot in zip(records, slots, strict=True)
        ]

    def _verdict(self, analysis: Analysis, reading: Reading | None, lang: Lang) -> Verdict:
        record = analysis.record
        signals = list(analysis.signals)
        script = self._known_script(analysis)
        if script is not None:
            signals.append(script)
        # A lender's phishing notice sits among the genuine notices it imitates; the look-alike
        # link or the QQ number that gives it away is not in its meaning. With such evidence the
        # meaning neighbours may raise the scam odds, never lower them, and the words alone are
        # read without them.
        unseen = _evidence_unseen_by_meaning(signals)
        if reading is not None:
            probabilities = reading.probabilities
            plain = reading.plain
            if unseen and plain is not None and probabilities["scam"] < plain["scam"]:
                probabilities = plain
            model_slot = Signal(id="model", source="model", score=round(probabilities["scam"], 4))
        else:
            probabilities = rule_prior_probabilities(signals, analysis.finance_related)
            model_slot = Signal(id="model", source="model", absent=True)

        category = max(probabilities, key=probabilities.__getitem__)
        risk = probabilities["scam"]
        if self.model is not None:
            category, risk = _content_rule_floor(signals, category, risk)
        evidence = _content_evidence(signals)
        # The model's reading of the words alone, as if pasted without a sender; read at most
        # once a verdict, and only where a branch asks (the reading itself when the sender
        # gave the model nothing).
        words_alone = (
            functools.cache(
                lambda: self.model.predict_text_only(analysis, full=reading, neighbours=not unseen)
            )
            if reading is not None
            else None
        )
        if not evidence["scam"] and not evidence["abusive"]:
            category, risk = self._without_content_evidence(analysis, words_alone, category, risk)
        genuine = _reads_as_genuine(signals)
        if genuine and category in {"scam", "abusive"}:
            category = "legit" if analysis.finance_related else "other"
            risk = _capped(risk, LEGIT_MAX_RISK)
        if genuine and category == "legit" and _only_anti_fraud_reminder_rule(signals):
            # A warning about scams is about no account of the person's: `other` (LABELING.md),
            # whichever genuine category the model leans to.
            category = "other"
        # Which kind of harm a message is (a scam or collection) is in its words: a
        # collector's mobile or a +852 number moves the model between the two, so the words
        # alone decide between them.
        if category == "abusive" and words_alone is not None and not evidence["abusive"]:
            # "你涉嫌经济犯罪" from a 136 number read as collection: the number made it so.
            # (With no evidence at all `_without_content_evidence` has decided; here a rule or a
            # number fact points to a scam, so words that do not read as collection are one.)
            words_category, words_risk = _words_reading(analysis, words_alone())
            if words_category != "abusive":
                # Its risk is the words' own, and what a number alone can add to them.
                share = probabilities["scam"] + probabilities["abusive"]
                category = "scam"
                risk = max(risk, _words_and_number(words_risk, share))
        if (
            category == "scam"
            and self.model is not None
            and creditor_pressing(
                analysis,
                signals,
                words_alone if words_alone is not None else probabilities,
            )
        ):
            category = "abusive"
        foreign = analysis.norm is not None and not _reads_as_chinese(analysis.norm.text)
        if category == "abusive":
            # Risk is the harm a message threatens (DESIGN.md): abusive collection is never
            # "risk 0", and a clear threat or insult is high risk, pushed like a scam.
            share = probabilities["scam"] + probabilities["abusive"]
            if words_alone is not None and not evidence["abusive"]:
                # No threat a rule reads: what the sender adds to the words' own share is
                # what a number alone can carry ("欠錢的又不是我，你客氣一點" from a 136 number
                # read high and was pushed; alone it is medium).
                words = words_alone()
                share = _words_and_number(words["scam"] + words["abusive"], share)
            risk = max(risk, share)
            if evidence["abusive"] >= ABUSIVE_CONTENT_EVIDENCE:
                risk = max(risk, ABUSIVE_RULE_RISK)
        if foreign and not evidence["scam"] and not evidence["abusive"]:
            risk = _capped(risk, FOREIGN_MODEL_MAX_RISK)
        reader = self._reader(reading)
        signals = [_with_weight_source(reader, signal) for signal in signals]
        # The risk comes from the scam (or abusive) reading; when no rule or script explains it,
        # show the words the model weighed for it.
        harm = category if category in {"scam", "abusive"} else "scam"
        if self.model is not None and level_for(risk, category) != "low" and not evidence[harm]:
            phrases = self._model_phrases(analysis, harm, reading)
            signals.extend(phrases)
            if not phrases and not any(s.category == harm for s in signals):
                # Nothing the person could read backs the warning (not a rule, a number fact or
                # a phrase: the reading comes from the model's prior on short text), so it is not
                # a warning: a verdict must show why (DESIGN.md).
                if category == "abusive":
                    category = "other"
                risk = _capped(risk, UNEXPLAINED_MAX_RISK)
        signals.append(model_slot)
        if category == "legit" and any(s.id in LOOKALIKE_LINK_SIGNALS for s in signals):
            # "【广发银行】…请于当日登录 cgb-tk.cn/r8 领取" reads as the bank's notice it copies.
            category = "scam"
            risk = max(risk, MEDIUM_RISK)
        if category != "scam" and any(s.fail_closed for s in signals):
            # A request for a code, a password, a fee or a transfer is never legit (DESIGN.md);
            # the strongest non-scam reading becomes at most a medium-risk scam.
            if category != "abusive" or probabilities["scam"] >= probabilities[category] / 2:
                category = "scam"
                risk = max(risk, 0.5)
        if category == "legit" and not analysis.finance_related:
            category = "other"

        claimed = self._claimed_brands(analysis)
        coverage = COVERAGE_NOTE[lang] if foreign else None
        verdict = Verdict(
            kind=record.kind,
            risk=round(min(max(risk, 0.0), 1.0), 4),
            level=level_for(risk, category),
            category=category,
            sender=_sender_info(record.sender, analysis.sender, lang),
            claimed_brands=claimed,
            signals=_ordered(signals),
            advice=advice_text.build(category, record.kind, claimed, lang),
            model_version=getattr(self.model, "version", None),
            rules_version=self.rules_version,
            id=record.id,
            coverage=coverage,
            numbers_in_text=_numbers_in_text(analysis, lang),
        )
        return verdict

    def _known_script(self, analysis: Analysis) -> Signal | None:
        scripts = getattr(self.model, "scripts", None)
        if scripts is None or analysis.norm is None:
            return None
        found = scripts.match(analysis.norm.text)
        if found is None:
            return None
        where = found.script.publisher or "公开来源"
        when = f" {found.year} 年" if found.year else ""
        start, end = found.span
        return Signal(
            id="known_script",
            source="script",
            category="scam",
            weight=KNOWN_SCRIPT_WEIGHT,
            evidence=analysis.norm.evidence(start, end),
            span=analysis.norm.span(start, end),
            explanation=f"与{where}{when}公布的诈骗话术高度相似（相似度 {found.score:.0%}）",
            explanation_en=(
                f"Closely matches a scam script published by {where}"
                f"{' in ' + found.year if found.year else ''} ({found.score:.0%} alike)"
            ),
            score=found.score,
            reference=found.script.source or None,
        )

    def _without_content_evidence(
        self,
        analysis: Analysis,
        words_alone: Callable[[], dict[str, float]] | None,
        category: str,
        risk: float,
    ) -> tuple[str, float]:
        """No rule, script or precise number fact backs a warning: keep what the model and the
        numbers can say, within what they can honestly carry. `words_alone`: the model's
        reading of the words without the sender (None without a model)."""
        norm = analysis.norm
        letters = sum(map(str.isalnum, norm.text)) if norm is not None else 0
        if norm is not None and letters < SHORT_CHAT_CHARS:
            # "行行行": a few words of chat say nothing a model can be sure of.
            if category in {"scam", "abusive"}:
                category = "other"
            return category, _capped(risk, SHORT_CHAT_MAX_RISK)
        if norm is None and analysis.sender is not None and analysis.sender.official:
            # A call from a brand's listed number is the brand calling: the list says so.
            return "legit", _capped(risk, SHORT_CHAT_MAX_RISK)
        if norm is not None and _family_asking_nothing(norm.text):
            # Family chat that asks for nothing: a harm reading is the model mishearing it, and
            # so is the scam share it keeps under a genuine top reading; low either way.
            genuine = "other" if category in {"scam", "abusive"} else category
            return genuine, _capped(risk, SHORT_CHAT_MAX_RISK)
        if norm is not None and _text_belies_the_reading(norm.text, category):
            return "other", _capped(risk, SHORT_CHAT_MAX_RISK)
        if category == "abusive" and words_alone is not None and norm is not None:
            # Abusive collection is in the words (threats, insults, exposure); when the words
            # alone read as a genuine message, only the sender (an unlisted mobile, as most
            # collectors' are) made it look abusive: an everyday message, in the words' category.
            text_category, words_risk = _words_reading(analysis, words_alone())
            if text_category in {"legit", "other"}:
                return text_category, _capped(risk, NUMBER_ALONE_MAX_RISK)
            if text_category == "scam":
                # "领导让你明天把材料交上来，开完会再说。" reads as a scam at medium alone and
                # from a 136 number read as abusive collection at 0.94, pushed: the number made
                # it collection. What a number adds is medium at most.
                return text_category, _words_and_number(words_risk, risk)
            return category, risk
        if category != "scam" or words_alone is None:  # no reading: no model to ask
            return category, risk
        if norm is None:
            # A call with nothing but its number: at most medium.
            return category, _capped(risk, NUMBER_ALONE_MAX_RISK)
        text_category, words_risk = _words_reading(analysis, words_alone())
        if text_category != "scam":
            # The words read as a genuine message; only the sender made it look like a scam
            # (an unlisted mobile, a +852 bank): medium at most, in the words' category.
            if text_category == "abusive" and DEBT_TALK.search(norm.text) is None:
                # Nor is it collection when no rule reads a threat and no word speaks of a
                # debt: "我下午要开会，晚上再联系你。" from a +852 number read as abusive at
                # 0.999 (the abusive risk adds the sender-driven scam share) and was pushed.
                text_category = "other"
            return text_category, _capped(risk, NUMBER_ALONE_MAX_RISK)
        if risk >= HIGH_RISK and words_risk < HIGH_RISK:
            # The words read as a scam, short of high; the kind of sender (a 170 number, an
            # unlisted mobile) lifted them there. A number alone is at most medium, so what it
            # adds is too: the words' own risk, or medium at most.
            return category, _words_and_number(words_risk, risk)
        return category, risk

    def _reader(self, reading: Reading | None) -> Any | None:
        """The model whose weights gave `reading` (the cascade's first reader or the full
        model): the phrases and learned weights a verdict shows come from the same weights."""
        if reading is not None and hasattr(self.model, "reader_of"):
            return self.model.reader_of(reading)
        return self.model

    def _model_phrases(
        self, analysis: Analysis, category: str, reading: Reading | None
    ) -> list[Signal]:
        """The phrases that pushed the model toward `category`, as spans of the original text."""
        explain = getattr(self._reader(reading), "phrases", None)
        if explain is None or analysis.norm is None:
            return []
        found = []
        text = reading.text if reading is not None else None
        for start, end, weight in explain(analysis, category, text)[:MAX_MODEL_PHRASES]:
            shown = round(weight, 3)
            if shown <= 0:
                # Pushed by less than the shown precision: not evidence a person should weigh
                # (a common greeting like "尊敬的" can carry a sliver of the scam reading).
                continue
            found.append(
                Signal(
                    id="model_phrase",
                    source="model",
                    category=category,  # type: ignore[arg-type]
                    weight=shown,
                    evidence=analysis.norm.evidence(start, end),
                    span=analysis.norm.span(start, end),
                    explanation=_PHRASE_EXPLANATION[category],
                    explanation_en=_PHRASE_EXPLANATION_EN[category],
                )
            )
        return found

    def _claimed_brands(self, analysis: Analysis) -> list[ClaimedBrand]:
        brand_ids: list[str] = [mention.brand_id for mention in analysis.brands]
        if analysis.sender and analysis.sender.brand and analysis.sender.brand not in brand_ids:
            brand_ids.append(analysis.sender.brand)
        claimed = []
        for brand_id in brand_ids:
            brand = self.directory.brands.get(brand_id)
            if brand is None:
                continue
            numbers = self.directory.official_numbers(brand_id)
            claimed.append(
                ClaimedBrand(
                    brand=brand_id,
                    name=brand.name,
                    official_numbers=numbers,
                    official_verified=bool(numbers),
                    app=brand.app,
                    category=brand.category,
                )
            )
        return claimed


_PHRASE_EXPLANATION = {
    "scam": "这类说法在真实诈骗短信中很常见（模型依据）",
    "abusive": "这类说法在违规催收信息中很常见（模型依据）",
}
_PHRASE_EXPLANATION_EN = {
    "scam": "Wording common in real scam messages (what the model weighed)",
    "abusive": "Wording common in abusive collection messages (what the model weighed)",
}


# CJK unified ideographs, all of them letters (str.isalpha).
_CJK = re.compile("[\u4e00-\u9fff]")


def _content_key(record: SmsRecord | CallRecord) -> tuple[Any, ...]:
    """Everything of a record the verdict reads: two records with the same key get the same
    verdict but for its id (the id and received_at are carried, never read)."""
    return (
        record.kind,
        record.sender,
        record.text,
        getattr(record, "duration_s", None),
        getattr(record, "direction", None),
    )


def _reads_as_chinese(text: str) -> bool:
    # Counted in C (map, findall) rather than one Python step per character.
    letters = sum(map(str.isalpha, text))
    if letters < 8:
        return True  # too little text to call it foreign (a code, a name, a link)
    cjk = len(_CJK.findall(text))
    return cjk / letters >= MIN_CJK_SHARE


def _content_evidence(signals: list[Signal]) -> dict[str, float]:
    """Summed weight of content rules, known scripts and precise number facts, per category."""
    content = {"scam": 0.0, "abusive": 0.0}
    for signal in signals:
        precise_number = signal.source == "numbers" and signal.id in PRECISE_NUMBER_SIGNALS
        counted = signal.source in {"rule", "script"} or precise_number
        if counted and signal.category in content:
            content[signal.category] += signal.weight or 0.0
    return content


def _evidence_unseen_by_meaning(signals: list[Signal]) -> bool:
    """A scam rule, a known script or a fact about a number or link in the message (not the kind
    of sender, not a short link: genuine notices use both): what the meaning neighbours, which
    read what a message says, cannot weigh. With it they may raise the scam odds, not lower them."""
    return any(
        signal.category == "scam"
        and (
            signal.source in {"rule", "script"}
            or (signal.source == "numbers" and signal.id not in NOT_UNSEEN_BY_MEANING)
        )
        for signal in signals
    )


def _words_reading(analysis: Analysis, words_only: dict[str, float]) -> tuple[str, float]:
    """The top category and scam risk of the words-alone reading; a genuine reading of a
    message about no account of the person's is `other`."""
    category = max(words_only, key=words_only.__getitem__)
    if category == "legit" and not analysis.finance_related:
        category = "other"
    return category, words_only["scam"]


def creditor_pressing(
    analysis: Analysis,
    signals: list[Signal],
    probabilities: dict[str, float] | Callable[[], dict[str, float]],
) -> bool:
    """Debt talk that no scam evidence backs (no rule, script or precise number fact, nothing
    asked for), where the model hears collection too (ABUSIVE_SHARE_OF_SCAM): a creditor's
    threat, not an impersonation. `probabilities` may be a function giving them, called only
    for such talk (a words-alone reading costs a model read)."""
    if analysis.norm is None:
        return False
    if _content_evidence(signals)["scam"] or any(s.fail_closed for s in signals):
        return False
    if any(s.id == ANTI_FRAUD_REMINDER for s in signals):
        # A warning about loan scams speaks of 贷 and collects nothing.
        return False
    text = analysis.norm.text
    if DEBT_TALK.search(text) is None or BORROW_ASK.search(text) is not None:
        return False
    shares = probabilities() if callable(probabilities) else probabilities
    return shares["abusive"] >= ABUSIVE_SHARE_OF_SCAM * shares["scam"]


def _family_asking_nothing(text: str) -> bool:
    """Chat addressed to kin that asks for no money, transfer, number, account or help."""
    return KIN_ADDRESS.search(text) is not None and FAMILY_SCAM_ASK.search(text) is None


def _text_belies_the_reading(text: str, category: str) -> bool:
    """A harm reading no rule backs that the text itself contradicts: chat addressed to kin read
    as collection (kin chat that asks for nothing is `_family_asking_nothing`'s), or foreign text
    read as collection with no word about money owed."""
    if KIN_ADDRESS.search(text):
        return category == "abusive"
    return (
        category == "abusive"
        and not _reads_as_chinese(text)
        and not FOREIGN_DEBT_WORDS.search(text)
    )


def _reads_as_genuine(signals: list[Signal]) -> bool:
    """Genuine-notice rules carry enough weight and nothing at all points to harm."""
    legit = 0.0
    for signal in signals:
        harmful = signal.category in {"scam", "abusive"}
        if harmful and signal.source in {"rule", "numbers", "script"}:
            return False
        if signal.fail_closed:
            return False
        if signal.source == "rule" and signal.category == "legit":
            legit += signal.weight or 0.0
    return legit >= LEGIT_CONTENT_EVIDENCE


def _only_anti_fraud_reminder_rule(signals: list[Signal]) -> bool:
    """The anti-fraud reminder is the only genuine-notice rule that fired."""
    genuine = {s.id for s in signals if s.source == "rule" and s.category == "legit"}
    return genuine == {ANTI_FRAUD_REMINDER}


def _content_rule_floor(signals: list[Signal], category: str, risk: float) -> tuple[str, float]:
    """Let strong content evidence outvote the model on scripts it has never seen.

    Content rules (and the few number signals as precise as they are) are written from how these
    scams and abuses work and fire on under 0.2 % of real genuine SMS, while the model learned
    from a small written corpus: held out by writing batch, the rules caught more scams than the
    model. So strong scam evidence sets a floor under the risk, and one abusive rule sets the
    category, in the way SpamAssassin adds its Bayes score to the rule scores rather than
    replacing them.
    """
    content = _content_evidence(signals)
    if content["scam"] >= STRONG_CONTENT_EVIDENCE and not (
        category == "abusive" and content["abusive"] >= content["scam"]
    ):
        return "scam", max(risk, _sigmoid(content["scam"] - 2.0))
    if content["abusive"] >= ABUSIVE_CONTENT_EVIDENCE and content["abusive"] > content["scam"]:
        # Threats, insults, exposure and calls to third parties are what makes collection
        # abusive (DESIGN.md); one such rule is enough, whatever the model read in the wording.
        if category in {"legit", "other"}:
            return "abusive", risk
        if category == "scam" and content["scam"] == 0:
            # A scam reading with no scam wording behind it (a collector's mobile, or the model
            # hearing "錢" and "處理" in a loan shark's threat) does not outweigh a threat in the
            # text: that is illegal collection, not impersonation. The risk stays as high as the
            # model put it, so the warning is still pushed.
            return "abusive", risk
    return category, risk


def _with_weight_source(model: Any | None, signal: Signal) -> Signal:
    """Show the weight the model learned for a rule or number signal, where data sufficed;
    otherwise the hand-set prior from the rule file or number module."""
    if signal.source in {"model", "script"} or signal.weight is None:
        return signal
    learned = None
    if model is not None and signal.category is not None:
        learned = model.learned_weight(f"{signal.source}:{signal.id}", signal.category)
    if learned is None:
        return signal.model_copy(update={"weight_source": "hand-set"})
    return signal.model_copy(update={"weight": round(learned, 3), "weight_source": "learned"})


def _load_model(model_path: Path | None) -> Any | None:
    """Load the shipped model. A model that exists but fails its checks stops start-up."""
    path = model_path or MODEL_PATH
    manifest = path.with_suffix(".json")
    if not path.exists() and not manifest.exists() and model_path is None:
        log.warning("no model shipped yet; verdicts use rule weights only")
        return None
    try:
        return load_model(path)
    except ModelError as error:
        raise LoadError(f"model: {error}") from error


def _sender_info(raw: str | None, info: NumberInfo | None, lang: Lang) -> SenderInfo | None:
    if raw is None or info is None:
        return None
    facts = phone_facts(info, lang)
    return SenderInfo(
        raw=raw,
        normalized=info.normalized,
        type=str(info.type),
        brand=info.brand,
        official=info.official,
        detail=info.detail,
        region=info.region,
        location=facts.location,
        carrier=facts.carrier,
        virtual_operator=facts.virtual_operator,
    )


def _numbers_in_text(analysis: Analysis, lang: Lang) -> list[NumberInText]:
    """Every phone number the text contains, with original spans, 归属地 and carrier."""
    norm = analysis.norm
    found = []
    for contact in analysis.contacts:
        if contact.kind != "phone" or contact.info is None or norm is None:
            continue
        facts = phone_facts(contact.info, lang)
        found.append(
            NumberInText(
                raw=norm.evidence(contact.start, contact.end),
                normalized=contact.info.normalized,
                type=str(contact.info.type),
                brand=contact.info.brand,
                official=contact.info.official,
                span=norm.span(contact.start, contact.end),
                location=facts.location,
                carrier=facts.carrier,
                virtual_operator=facts.virtual_operator,
            )
        )
    return found


def _ordered(signals: list[Signal]) -> list[Signal]:
    """Strongest evidence first, the model last, duplicates (same id and span) dropped."""
    seen: set[tuple[str, tuple[int, int] | None]] = set()
    unique = []
    for signal in signals:
        key = (signal.id, signal.span)
        if key in seen:
            continue
        seen.add(key)
        unique.append(signal)
    return sorted(unique, key=lambda s: (s.id == "model", s.source == "model", -(s.weight or 0.0)))
