"""What the result page shows, built from a verdict: words for a person, not for an engineer.

The people most often cheated are older, so the first screen answers three questions in this
order, in everyday words: how bad is it, what do I do now (one thing, with a big call button),
and why (one reason per piece of evidence: a number that appears as the sender and twice in the
text is one reason, not four). Technical explanations stay available, folded.

Marks in the message are of two kinds, told apart by icon, underline style and label as well as
colour: suspicious (⚠, wavy underline) and reassuring (✓, double underline). A mark never cuts a
word in two: its edges are moved out to the ends of the run of Chinese characters (or of Latin
letters and digits) they fall inside, when that end is near.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from service.engine.schemas import ClaimedBrand, NumberInText, SenderInfo, Signal, Verdict
from service.engine.summary import headline

Kind = Literal["suspicious", "reassuring"]

# How far (in characters) a mark's edge may move to reach the end of the word run it falls in.
# Chinese words are 1-4 characters; a run longer than this is a clause, which is left as it is.
SNAP_LIMIT = 6
# Reasons shown before "还有 N 条理由" on the first screen.
FIRST_REASONS = 3

# Complaint and help lines (research/number_facts.md §4-5; advice.py names the same ones).
ANTI_FRAUD = "96110"
POLICE = "110"
NFRA_COMPLAINTS = "12378"  # 国家金融监督管理总局: loans, consumer finance, collection
PBOC_COMPLAINTS = "12363"  # 中国人民银行: payment and credit complaints

# --- words ----------------------------------------------------------------------------------------

_LEVEL_WORDS: dict[tuple[str, str], str] = {
    ("scam", "high"): "很可能是诈骗",
    ("scam", "medium"): "可能是诈骗，要小心",
    ("scam", "low"): "风险不高，但仍要小心",
    ("abusive", "high"): "这是违规的暴力催收",
    ("abusive", "medium"): "催收方式可能违规",
    ("abusive", "low"): "催收方式可能违规",
    ("legit", "high"): "像是正规的还款提醒",
    ("legit", "medium"): "像是正规的还款提醒，但要留意",
    ("legit", "low"): "像是正规的还款提醒",
    ("other", "high"): "没发现催收诈骗，但要小心",
    ("other", "medium"): "没发现催收诈骗，但要小心",
    ("other", "low"): "没发现催收诈骗的迹象",
}

# Short sentences in everyday words for the signals whose technical explanation uses words like
# "虚拟运营商/物联网号段（mvno）" or "域名". Rule explanations are already written for people and
# are used as they are. {brand} is the brand the message claims to be.
_PLAIN: dict[str, str] = {
    "virtual_mobile_sender": (
        "发来的是“虚拟运营商”号码（170、171 等开头），骗子常用，正规平台不用这种号码"
    ),
    "sender_mobile_claims_brand": "自称{brand}，却用个人手机号发来；{brand}只用官方号码联系你",
    "sender_landline_claims_brand": (
        "自称{brand}，却用普通座机打来或发来；{brand}只用官方号码联系你"
    ),
    "brand_number_mismatch": "短信让你联系的号码不是{brand}的官方电话",
    "unofficial_400": "这个400号码不是官方号码",
    "international_sender": "号码来自境外；国内的平台、银行和警察不会用境外号码联系你",
    "international_lookalike_official": "这是境外号码，只是看起来像官方号码",
    "spoofed_short_code": "号码显示的样子不对，像是用改号软件假冒的官方号码",
    "sender_brand_mismatch": "发来的号码和短信里的署名对不上",
    "sender_not_brand_number": "短信署名{brand}，发来的号码却不是{brand}的",
    "official_sender": "发来的号码是{brand}的官方号码",
    "official_port_suffix": "发来的号码像是{brand}的正规短信号码",
    "public_service_with_link": "真正的反诈提醒短信不带链接和电话，这条很可能是假的",
    "ip_link": "这个链接不是正规网址，不要点",
    "short_link": "短链接看不出会打开哪里，不要点",
    "lookalike_domain": "这个网址冒用了{brand}的名字，是假网站，不要点",
    "brand_link_mismatch": "这个网址不是{brand}的官网，不要点",
    "link_lookalike_domain": "这个网址冒用银行或平台的名字，是假网站，不要点",
    "known_script": "和公开发布过的诈骗短信几乎一模一样",
}
_PLAIN_MODEL_PHRASE = {
    "scam": "这种说法在诈骗短信里很常见",
    "abusive": "这种说法在违规催收里很常见",
}

# --- data the template reads ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of the original message; `marked` runs are evidence.

    `title` lists the explanations of the signals under the mark, `kind` says whether they warn
    or reassure, `reasons` are the ids of the reasons (list items) they belong to."""

    text: str
    marked: bool = False
    title: str = ""
    kind: Kind = "suspicious"
    reasons: tuple[str, ...] = ()


@dataclass
class Reason:
    """One piece of evidence: a phrase, a number or a link, however many signals name it."""

    id: str
    kind: Kind
    plain: str
    evidence: str | None = None
    facts: str | None = None  # 归属地 and carrier when the evidence is a phone number
    more: list[str] = field(default_factory=list)  # further plain sentences, same evidence
    details: list[str] = field(default_factory=list)  # the technical explanations, folded
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class Link:
    """A piece of advice text; `href` is set when the piece is a phone number to call."""

    text: str
    href: str | None = None


@dataclass(frozen=True, slots=True)
class CallButton:
    number: str
    href: str
    label: str


@dataclass
class Action:
    """The one thing to do now."""

    lead: str
    call: CallButton | None
    note: list[Link] = field(default_factory=list)
    also: list[CallButton] = field(default_factory=list)


# --- helpers --------------------------------------------------------------------------------------


def tel_href(number: str) -> str:
    """A `tel:` URI for a number as lists write it ("400-820-8888" -> "tel:4008208888")."""
    digits = "".join(ch for ch in number if ch.isdigit())
    return f"tel:{'+' if number.strip().startswith('+') else ''}{digits}"


_NUMBER_IN_ADVICE = re.compile(r"(?<![\d.,])\+?\d[\d-]{1,14}\d(?![\d.,%元])")


def linkify_numbers(line: str) -> list[Link]:
    """Split a line of advice so every phone number in it (110, 96110, 12321, 95188,
    400-820-8888 ...) becomes a tap-to-call link. Advice is written by dunscan, not by the sender,
    so every number in it is one to call."""
    pieces: list[Link] = []
    position = 0
    for match in _NUMBER_IN_ADVICE.finditer(line):
        if match.start() > position:
            pieces.append(Link(line[position : match.start()]))
        pieces.append(Link(match.group(), tel_href(match.group())))
        position = match.end()
    if position < len(line):
        pieces.append(Link(line[position:]))
    return pieces


def _run_class(ch: str) -> str:
    if "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff":
        return "cjk"
    if ch.isascii() and ch.isalnum():
        return "latin"
    return ""  # punctuation, spaces, symbols, emoji: always a boundary


def _within(distance: int, limit: int | None) -> bool:
    return limit is None or distance < limit


def snap_to_words(
    text: str, start: int, end: int, limit: int | None = SNAP_LIMIT
) -> tuple[int, int]:
    """Move a span's edges outward to the ends of the word runs they fall inside ("专|员微信" ->
    "请添加专员微信"), when that end is at most `limit` characters away. A run is a stretch of
    Chinese characters, or of Latin letters and digits, between punctuation or spaces.

    No segmenter is needed at run time (jieba is a development tool here, and its own errors,
    such as "解冻费后", would move correct edges); a run end is never inside a word."""
    if start > 0 and start < len(text):
        kind = _run_class(text[start])
        if kind and _run_class(text[start - 1]) == kind:
            edge = start
            while edge > 0 and _run_class(text[edge - 1]) == kind and _within(start - edge, limit):
                edge -= 1
            if edge == 0 or _run_class(text[edge - 1]) != kind:
                start = edge
    if 0 < end < len(text):
        kind = _run_class(text[end - 1])
        if kind and _run_class(text[end]) == kind:
            edge = end
            while (
                edge < len(text) and _run_class(text[edge]) == kind and _within(edge - end, limit)
            ):
                edge += 1
            if edge == len(text) or _run_class(text[edge]) != kind:
                end = edge
    return start, end


def _kind(signal: Signal) -> Kind:
    return "reassuring" if signal.category == "legit" else "suspicious"


def _phone_key(evidence: str | None) -> str | None:
    """The digits of evidence that is only a phone number ("+86 171-2345-6789" -> "17123456789")."""
    if not evidence or not re.fullmatch(r"\s*\+?[\d\s\-()（）]{5,}\s*", evidence):
        return None
    digits = re.sub(r"\D", "", evidence)
    if evidence.strip().startswith("+86") or digits.startswith("0086"):
        digits = digits[2:] if evidence.strip().startswith("+86") else digits[4:]
    return digits


_HOST = re.compile(r"(?:[a-z][a-z0-9+.-]*://)?((?:[a-z0-9-]+\.)+[a-z]{2,})", re.IGNORECASE)


def _link_key(evidence: str | None) -> str | None:
    match = _HOST.search(evidence or "")
    return match.group(1).lower() if match else None


# --- marks ----------------------------------------------------------------------------------------


def _mark_ranges(
    text: str, signals: list[Signal], snap: bool
) -> list[tuple[int, int, list[str], list[Kind], list[int]]]:
    """(start, end, explanations, kinds, signal indexes) for every mark, merged where spans
    overlap or touch. Signal indexes refer to the order of `signals`."""
    spans = []
    for index, signal in enumerate(signals):
        if signal.span is None:
            continue
        start, end = max(0, signal.span[0]), min(len(text), signal.span[1])
        if start >= end:
            continue
        if snap:
            start, end = _snapped(text, signal) or (start, end)
        spans.append((start, end, signal.explanation or "", _kind(signal), index))
    ranges: list[tuple[int, int, list[str], list[Kind], list[int]]] = []
    for start, end, explanation, kind, index in sorted(spans):
        if ranges and start <= ranges[-1][1]:
            last_start, last_end, explanations, kinds, indexes = ranges[-1]
            if explanation and explanation not in explanations:
                explanations.append(explanation)
            kinds.append(kind)
            indexes.append(index)
            ranges[-1] = (last_start, max(last_end, end), explanations, kinds, indexes)
        else:
            ranges.append((start, end, [explanation] if explanation else [], [kind], [index]))
    return ranges


def evidence_segments(
    text: str,
    signals: list[Signal],
    reason_of: dict[int, str] | None = None,
    snap: bool = False,
) -> list[Segment]:
    """Split the ORIGINAL text at the signals' spans; overlapping or touching spans merge into one
    mark whose title lists every explanation. Spans outside the text are clipped or ignored.
    With `snap`, edges move out to whole words first (see `snap_to_words`). A mark is suspicious
    if any signal under it warns; `reason_of` maps a signal's index to its reason id."""
    segments: list[Segment] = []
    position = 0
    for start, end, explanations, kinds, indexes in _mark_ranges(text, signals, snap):
        if start > position:
            segments.append(Segment(text[position:start]))
        reasons: list[str] = []
        for index in indexes:
            reason = (reason_of or {}).get(index)
            if reason and reason not in reasons:
                reasons.append(reason)
        kind: Kind = "suspicious" if "suspicious" in kinds else "reassuring"
        segments.append(
            Segment(text[start:end], True, "；".join(explanations), kind, tuple(reasons))
        )
        position = end
    if position < len(text):
        segments.append(Segment(text[position:]))
    return segments


# --- reasons --------------------------------------------------------------------------------------


def _plain(signal: Signal, brand: str) -> str:
    if signal.id == "model_phrase":
        return _PLAIN_MODEL_PHRASE.get(signal.category or "scam", _PLAIN_MODEL_PHRASE["scam"])
    template = _PLAIN.get(signal.id)
    if template is None:
        return signal.explanation or ""
    return template.format(brand=brand)


def _snapped(text: str, signal: Signal) -> tuple[int, int] | None:
    """The span a signal's mark covers on the page. A rule's span is drawn around words by the
    person who wrote the pattern; the model's phrases are character n-grams with arbitrary
    edges, so they grow to the whole clause they fall in."""
    if signal.span is None:
        return None
    limit = None if signal.source == "model" else SNAP_LIMIT
    return snap_to_words(text, max(0, signal.span[0]), min(len(text), signal.span[1]), limit)


def _group(text: str, signals: list[Signal], sender_key: str | None) -> list[list[int]]:
    """Indexes of `signals` grouped by the piece of evidence they are about: overlapping marks,
    the same phone number (the sender counts as one), or the same web address."""
    parent = list(range(len(signals)))
    spans = [_snapped(text, signal) for signal in signals]

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        parent[find(a)] = find(b)

    first_by_key: dict[str, int] = {}
    for index, signal in enumerate(signals):
        keys = []
        phone = _phone_key(signal.evidence)
        if signal.span is None and signal.source == "numbers" and sender_key:
            phone = sender_key  # signals about the sender carry no span
        if phone:
            keys.append(f"tel:{phone}")
        elif signal.source == "numbers" or signal.id.startswith("link"):
            link = _link_key(signal.evidence)
            if link:
                keys.append(f"web:{link}")
        for key in keys:
            if key in first_by_key:
                union(index, first_by_key[key])
            else:
                first_by_key[key] = index
        for other in range(index):
            a, b = spans[index], spans[other]
            if a and b and a[0] < b[1] and b[0] < a[1]:
                union(index, other)
    groups: dict[int, list[int]] = {}
    for index in range(len(signals)):
        groups.setdefault(find(index), []).append(index)
    return sorted(groups.values(), key=lambda members: members[0])


def _number_facts(verdict: Verdict) -> dict[str, str]:
    facts: dict[str, str] = {}
    entries: list[tuple[str, str | None, str | None]] = []
    if verdict.sender is not None:
        entries.append((verdict.sender.raw, verdict.sender.location, verdict.sender.carrier))
    entries.extend((n.raw, n.location, n.carrier) for n in verdict.numbers_in_text)
    for raw, location, carrier in entries:
        key = _phone_key(raw)
        described = " ".join(part for part in (location, carrier) if part)
        if key and described:
            facts.setdefault(key, described)
    return facts


def build_reasons(verdict: Verdict, text: str) -> tuple[list[Reason], dict[int, str], list[Signal]]:
    """One reason per piece of evidence, warnings first unless the verdict is reassuring.

    Returns the reasons, a map from the index of each explained signal to its reason's id, and
    the explained signals themselves (the ones marks are drawn from)."""
    explained = [s for s in verdict.signals if s.explanation and s.id != "model"]
    brand = verdict.claimed_brands[0].name if verdict.claimed_brands else "正规平台"
    sender_key = _phone_key(verdict.sender.raw) if verdict.sender else None
    facts = _number_facts(verdict)
    reasons: list[Reason] = []
    reason_of: dict[int, str] = {}
    for members in _group(text, explained, sender_key):
        signals = [explained[i] for i in members]
        lead = max(signals, key=lambda s: (s.category != "legit", s.weight or 0.0))
        kind = _kind(lead)
        plain = _plain(lead, brand)
        more: list[str] = []
        details: list[str] = []
        for signal in signals:
            sentence = _plain(signal, brand)
            if sentence and sentence != plain and sentence not in more and _kind(signal) == kind:
                more.append(sentence)
            if signal.explanation and signal.explanation not in details:
                details.append(signal.explanation)
        phone = next((k for s in signals if (k := _phone_key(s.evidence))), None)
        if phone is None and any(s.span is None and s.source == "numbers" for s in signals):
            phone = sender_key
        link = next((s.evidence for s in signals if s.source == "numbers" and s.span), None)
        spans = [s.span for s in signals if s.span]
        if phone is not None:
            # A number is shown once, as written, however many times the message repeats it.
            evidence = next(
                (s.evidence for s in signals if _phone_key(s.evidence) == phone), lead.evidence
            )
        elif link is not None and _link_key(link):
            evidence = link
        elif spans:
            limit = None if all(s.source == "model" for s in signals) else SNAP_LIMIT
            start, end = snap_to_words(
                text, min(s[0] for s in spans), max(s[1] for s in spans), limit
            )
            evidence = text[max(0, start) : min(len(text), end)].strip()
        else:
            evidence = lead.evidence
        reference = next(
            (
                s.reference
                for s in signals
                if (s.reference or "").startswith(("https://", "http://"))
            ),
            None,
        )
        reason = Reason(
            id=f"why-{len(reasons) + 1}",
            kind=kind,
            plain=plain,
            evidence=evidence or None,
            facts=facts.get(phone) if phone else None,
            more=more,
            details=details if details != [plain] else [],
            reference=reference,
        )
        reasons.append(reason)
        for i in members:
            reason_of[i] = reason.id
    warn_first = verdict.category in {"scam", "abusive"} or verdict.level != "low"
    reasons.sort(key=lambda r: (r.kind == "reassuring") == warn_first)
    return reasons, reason_of, explained


# --- what to do now -------------------------------------------------------------------------------


def _brand_call(brands: list[ClaimedBrand]) -> tuple[ClaimedBrand, str] | None:
    for brand in brands:
        if brand.official_numbers:
            return brand, brand.official_numbers[0]
    return None


def _button(number: str, label: str) -> CallButton:
    return CallButton(number=number, href=tel_href(number), label=label)


def build_action(verdict: Verdict) -> Action:
    """The one thing to do now, with the number to call as a big button."""
    found = _brand_call(verdict.claimed_brands)
    if verdict.category == "abusive":
        also = [_button(PBOC_COMPLAINTS, "人民银行投诉电话")]
        if found:
            brand, number = found
            also.insert(0, _button(number, f"向{brand.name}官方客服投诉"))
        return Action(
            lead="不用害怕：欠钱是民事纠纷，对方无权威胁、骚扰你和家人。保留短信、通话录音和截图。",
            call=_button(NFRA_COMPLAINTS, "投诉暴力催收（金融监管总局）"),
            note=linkify_numbers(f"有人威胁你的人身安全，请马上拨打{POLICE}报警。"),
            also=also,
        )
    if verdict.category == "scam" or verdict.level != "low":
        if found:
            brand, number = found
            call = _button(number, f"打{brand.name}官方电话，问清楚")
            note = "自己拨打官方电话核实。不要打短信里的号码，不要点短信里的链接。"
        else:
            call = _button(ANTI_FRAUD, "打反诈专线问一问")
            note = "96110 是公安的反诈咨询电话。不要打短信里的号码，不要点短信里的链接。"
        return Action(
            lead="不要付钱，不要转账，不要把验证码告诉任何人。",
            call=call,
            note=linkify_numbers(note),
        )
    if verdict.category == "legit":
        app = verdict.claimed_brands[0].app if verdict.claimed_brands else None
        lead = f"只在{app}App里还款，" if app else "只在官方App里还款，"
        call = _button(found[1], f"{found[0].name}官方电话") if found else None
        return Action(lead=lead + "不要转账到个人账户。", call=call)
    return Action(
        lead="没发现催收诈骗的迹象。仍然不要点陌生链接，不要把验证码告诉别人。",
        call=None,
    )


# --- the whole view -------------------------------------------------------------------------------


def _numbers_view(verdict: Verdict) -> list[dict[str, Any]]:
    """The sender and the distinct numbers in the text, with 归属地 and carrier."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    names = {brand.brand: brand.name for brand in verdict.claimed_brands}
    numbers: list[tuple[str, SenderInfo | NumberInText]] = []
    if verdict.sender is not None:
        numbers.append(("发件号码", verdict.sender))
    numbers.extend(("短信里的号码", found) for found in verdict.numbers_in_text)
    for label, number in numbers:
        key = _phone_key(number.raw) or number.raw
        if key in seen:
            continue
        seen.add(key)
        facts = [f for f in (number.location, number.carrier) if f]
        if number.official and number.brand:
            facts.insert(0, f"{names.get(number.brand, '')}官方号码")
        elif not facts and number.type in ("short_code", "official_hotline", "official_sms_port"):
            facts.append("服务短号，没有归属地")
        rows.append({"label": label, "number": number.raw, "facts": facts})
    return rows


def result_view(text: str, verdict: Verdict) -> dict[str, Any]:
    """Everything the result template shows, in the order a person needs it."""
    reasons, reason_of, explained = build_reasons(verdict, text)
    segments = evidence_segments(text, explained, reason_of, snap=True)
    kinds = {segment.kind for segment in segments if segment.marked}
    brands = [
        {
            "name": brand.name,
            "verified": brand.official_verified,
            "numbers": [{"number": n, "href": tel_href(n)} for n in brand.official_numbers],
        }
        for brand in verdict.claimed_brands
    ]
    return {
        "headline": headline(verdict, "zh"),
        "plain_level": _LEVEL_WORDS[(verdict.category, verdict.level)],
        "level": verdict.level,
        "category": verdict.category,
        "risk_percent": round(verdict.risk * 100),
        "action": build_action(verdict),
        "reasons": reasons[:FIRST_REASONS],
        "more_reasons": reasons[FIRST_REASONS:],
        "segments": segments,
        "mark_kinds": kinds,
        "advice": [linkify_numbers(line) for line in verdict.advice],
        "advice_text": verdict.advice,
        "brands": brands,
        "numbers": _numbers_view(verdict),
        "sender": verdict.sender,
        "coverage": verdict.coverage,
    }
