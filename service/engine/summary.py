"""A short, human-readable summary of a verdict: what a phone shows in a dialog or notification."""

from __future__ import annotations

import re

from service.engine.schemas import Lang, Signal, Verdict

_CATEGORY = {
    "zh": {
        "scam": "疑似诈骗",
        "abusive": "违规催收",
        "legit": "正常提醒",
        "other": "未见催收诈骗特征",
    },
    "en": {
        "scam": "likely a scam",
        "abusive": "abusive collection",
        "legit": "looks genuine",
        "other": "no sign of a collection scam",
    },
}
# A genuine reading at medium or high risk (words of a notice, a number that is not right): the
# headline says both, as the page does, instead of "medium risk · genuine".
_CAUTION = {"zh": "，但要留意", "en": ", but be careful"}
_LEVEL = {
    "zh": {"high": "高风险", "medium": "中风险", "low": "低风险"},
    "en": {"high": "HIGH RISK", "medium": "MEDIUM RISK", "low": "LOW RISK"},
}
MAX_REASONS = 3


def headline(verdict: Verdict, lang: Lang = "zh") -> str:
    """One line: level, category and risk, e.g. "【高风险·疑似诈骗】风险 97%"."""
    # A calibrated probability is never certainty: show ">99%" rather than "100%".
    percent = f"{round(verdict.risk * 100)}%" if verdict.risk <= 0.99 else ">99%"
    level = _LEVEL[lang][verdict.level]
    category = _CATEGORY[lang][verdict.category]
    if verdict.category in {"legit", "other"} and verdict.level != "low":
        category += _CAUTION[lang]
    if lang == "en":
        return f"[{level}: {category}] risk {percent}"
    return f"【{level}·{category}】风险 {percent}"


def _same_evidence(signal: Signal, shown: list[Signal]) -> bool:
    """True when `signal` is about a number, link or phrase a shown line already names: a dialog
    has room for three lines, and one number repeated in the text is one piece of evidence."""
    digits = re.sub(r"\D", "", signal.evidence or "")
    for other in shown:
        if signal.span and other.span:
            if signal.span[0] < other.span[1] and other.span[0] < signal.span[1]:
                return True
        if len(digits) >= 5 and digits[-11:] == re.sub(r"\D", "", other.evidence or "")[-11:]:
            return True
        if signal.source == other.source == "numbers" and signal.id == other.id:
            return True  # the same finding about a second copy of a link or number
    return False


def reasons(verdict: Verdict, lang: Lang = "zh", limit: int = MAX_REASONS) -> list[str]:
    """The strongest evidence as short lines, one per piece of evidence: what was found and why
    it matters."""
    lines = []
    shown: list[Signal] = []
    for signal in verdict.signals:
        explanation = signal.explanation_en if lang == "en" else signal.explanation
        if signal.id == "model" or not explanation or _same_evidence(signal, shown):
            continue
        shown.append(signal)
        evidence = f"“{signal.evidence}”：" if signal.evidence else ""
        lines.append(f"{evidence}{explanation}")
        if len(lines) >= limit:
            break
    return lines


MAX_NUMBER_LINES = 3


def number_lines(verdict: Verdict, lang: Lang = "zh") -> list[str]:
    """What a Chinese phone shows under a number (归属地, carrier) for the sender and the numbers
    in the text, e.g. "发件号码 171 2345 6789：虚拟运营商（中国联通网络）"; numbers with no known
    facts (short codes, 106 ports) are left out."""
    entries: list[tuple[str, str, str | None, str | None]] = []
    if verdict.sender is not None:
        label = "Sender" if lang == "en" else "发件号码"
        sender = verdict.sender
        entries.append((label, sender.raw, sender.location, sender.carrier))
    seen = {verdict.sender.normalized} if verdict.sender is not None else set()
    for found in verdict.numbers_in_text:
        if found.normalized in seen:
            continue
        seen.add(found.normalized)
        entries.append(
            ("Number" if lang == "en" else "短信里的号码", found.raw, found.location, found.carrier)
        )
    lines = []
    for label, raw, location, carrier in entries:
        facts = [fact for fact in (location, carrier) if fact]
        if facts:
            lines.append(f"{label} {raw}{': ' if lang == 'en' else '：'}{' '.join(facts)}")
    return lines[:MAX_NUMBER_LINES]


def summarize(verdict: Verdict, lang: Lang = "zh") -> str:
    """Headline, number facts, up to three reasons, the brand's official contact and the advice."""
    lines = [headline(verdict, lang)]
    lines.extend(number_lines(verdict, lang))
    found = reasons(verdict, lang)
    if found:
        lines.append("Why:" if lang == "en" else "依据：")
        lines.extend(f"- {line}" for line in found)
    if verdict.advice:
        lines.append("What to do:" if lang == "en" else "建议：")
        lines.extend(f"{index}. {line}" for index, line in enumerate(verdict.advice, start=1))
    if verdict.coverage:
        lines.append(verdict.coverage)
    return "\n".join(lines)
