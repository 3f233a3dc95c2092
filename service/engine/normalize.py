"""Text normalisation with a map back to the original.

Rules and numbers match on a normalised form of the message, so that obfuscation (spaced-out
characters, full-width digits, emoji, Traditional characters, "V信") does not hide a signal.
Evidence shown to the person must point into the text they actually received, so every
normalised character remembers the original span it came from.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import opencc

# Look-alike letters from other scripts that scammers swap into Latin words and domains.
_HOMOGLYPHS = str.maketrans(
    {
        "а": "a",
        "в": "b",
        "е": "e",
        "к": "k",
        "м": "m",
        "н": "h",
        "о": "o",
        "р": "p",
        "с": "c",
        "т": "t",
        "у": "y",
        "х": "x",
        "і": "i",
        "ј": "j",
        "ѕ": "s",
        "ԁ": "d",
        "ο": "o",
        "α": "a",
        "ν": "v",
        "ρ": "p",
        "τ": "t",
        "ι": "i",
        "κ": "k",
        "ε": "e",
        "υ": "u",
        "χ": "x",
        "β": "b",
        "μ": "u",
        "ω": "w",
    }
)

# Multi-character obfuscations, folded after the per-character steps. Each replacement's span
# covers the whole matched original text.
_FOLDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"(?:[vw]\s*[信❤♥💚]|[薇威徽嶶]\s*[信❤♥]|微\s*[❤♥💚]|wei\s*信|(?<![a-z0-9./_-])(?:weixin|wechat)(?![a-z0-9./_-]))"
        ),
        "微信",
    ),
    (re.compile(r"(?<![a-z0-9./_-])(?:vx|wx|v\.x|w\.x)(?![a-z./_-])"), "微信"),
    (re.compile(r"加\s*[vw](?![a-z])"), "加微信"),
    (re.compile(r"(?:扣扣|叩叩|抠抠|企鹅号|qq号)"), "qq"),
    # Letters standing in for digits inside a number ("138OO138OOO"): only in digit-heavy runs.
    (re.compile(r"(?<![a-z])[\doli]{5,}(?![a-z])"), "digits"),
)
_LETTER_DIGITS = str.maketrans({"o": "0", "l": "1", "i": "1"})

# Separators that obfuscators put between CJK characters ("解*冻*费", "解 冻 费"). Chinese sentence
# punctuation (，。！？；：、) and brackets are kept: they mark clauses and 【signatures】.
_FILLERS = frozenset(" \t\r\n\u3000*·•._~|/\\-+#^`'\"=")


# CJK ideographs (unified, extension A, compatibility, the supplementary planes): the separator-run
# pattern below reads them as a regex class, _is_cjk by comparison (Python's re takes ~7 ms to
# compile each such class, a cost every `dunscan check` paid once more for a one-character test).
_CJK_RANGES = (
    ("\u4e00", "\u9fff"),
    ("\u3400", "\u4dbf"),
    ("\uf900", "\ufaff"),
    ("\U00020000", "\U0002ffff"),
)
_CJK_CLASS = "[" + "".join(f"{low}-{high}" for low, high in _CJK_RANGES) + "]"


def _is_cjk(ch: str) -> bool:
    return any(low <= ch <= high for low, high in _CJK_RANGES)


def _is_junk(ch: str) -> bool:
    """Characters that carry no meaning for matching: format marks, emoji and pictographs."""
    category = unicodedata.category(ch)
    return category in {"Cf", "Cc", "Co", "Cs", "Mn", "Me", "So", "Sk"} and ch not in "\n\t\r"


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


@dataclass(frozen=True, slots=True)
class Normalized:
    """A normalised text and, for each of its characters, the original span it came from."""

    original: str
    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a normalised span [start, end) to the original text."""
        if not self.text or end <= start:
            position = self.starts[start] if start < len(self.starts) else len(self.original)
            return position, position
        return self.starts[start], self.ends[end - 1]

    def evidence(self, start: int, end: int) -> str:
        """The original text behind a normalised span: what the person sees highlighted."""
        original_start, original_end = self.span(start, end)
        return self.original[original_start:original_end]


def _apply_fold(
    chars: list[str], starts: list[int], ends: list[int], pattern: re.Pattern[str], repl: str
) -> tuple[list[str], list[int], list[int]]:
    text = "".join(chars)
    if not pattern.search(text):
        return chars, starts, ends
    out_chars: list[str] = []
    out_starts: list[int] = []
    out_ends: list[int] = []
    position = 0
    for match in pattern.finditer(text):
        begin, finish = match.span()
        out_chars.extend(chars[position:begin])
        out_starts.extend(starts[position:begin])
        out_ends.extend(ends[position:begin])
        if repl == "digits":
            token = text[begin:finish]
            if sum(ch.isdigit() for ch in token) >= 3:
                token = token.translate(_LETTER_DIGITS)
            out_chars.extend(token)
            out_starts.extend(starts[begin:finish])
            out_ends.extend(ends[begin:finish])
        elif finish > begin:
            out_chars.extend(repl)
            out_starts.extend([starts[begin]] * len(repl))
            out_ends.extend([ends[finish - 1]] * len(repl))
        position = finish
    out_chars.extend(chars[position:])
    out_starts.extend(starts[position:])
    out_ends.extend(ends[position:])
    return out_chars, out_starts, out_ends


# Taiwanese forms that OpenCC's t2s keeps as they are: 妳 (the feminine "you") is 你 in
# Simplified text, and without this every "你" pattern missed Taiwanese threats ("要妳死").
_TW_VARIANTS = str.maketrans({"妳": "你"})


def _to_simplified(chars: list[str]) -> list[str]:
    converter = _t2s()
    converted = converter.convert("".join(chars)).translate(_TW_VARIANTS)
    if len(converted) == len(chars):
        return list(converted)
    # Phrase conversion changed the length (rare); convert character by character instead so the
    # offset map stays exact.
    result = []
    for ch in chars:
        single = converter.convert(ch).translate(_TW_VARIANTS)
        result.append(single if len(single) == 1 else ch)
    return result


class _CharTable(dict):
    """A `str.translate` table filled on first sight of a character: translating a whole text
    is then one C call, and the Unicode work runs once per character per process."""

    def __init__(self, compute: Callable[[str], str | None]) -> None:
        super().__init__()
        self.compute = compute

    def __missing__(self, code: int) -> str | None:
        value = self.compute(chr(code))
        if len(self) < _CACHE_LIMIT:  # bounded whatever the input
            self[code] = value
        return value


_CACHE_LIMIT = 1 << 16


def _fold_char(ch: str) -> str:
    folded = unicodedata.normalize("NFKC", ch).lower().translate(_HOMOGLYPHS)
    return "".join(" " if c in "\n\t\r\u3000" else c for c in folded)


# Original character -> its folded form (NFKC, lower case, homoglyphs, whitespace as a space).
_FOLD = _CharTable(_fold_char)
# Folded character -> itself, or None (deleted) when it is junk.
_KEEP = _CharTable(lambda ch: None if _is_junk(ch) else ch)
_FILLER_SPACES = frozenset(ch for ch in _FILLERS if ch.isspace())
_F = "[" + re.escape("".join(sorted(_FILLERS))) + "]"
_S = "[" + re.escape("".join(sorted(_FILLER_SPACES))) + "]"
# The separator runs that change the text, found in C: most runs in a long English text (a
# lone space between words, "e.g.") change nothing, and testing each in Python was most of
# this step's time. A run changes the text when it stands between two CJK characters, or holds
# whitespace and is not a lone " " inside the text (_drop_filler_runs decides what it becomes).
_FILLER_RUN = re.compile(
    f"(?<={_CJK_CLASS}){_F}+(?={_CJK_CLASS})"  # between CJK characters
    f"|(?<!{_F})(?={_F}{{2}}){_F}*?{_S}{_F}*(?!{_F})"  # two or more, whitespace among them
    f"|(?<!{_F})(?! ){_S}(?!{_F})"  # one whitespace character other than " "
    f"|\\A (?!{_F})|(?<!{_F}) \\Z"  # a lone space that opens or ends the text
)


def _drop_filler_runs(
    text: str, chars: list[str], starts: list[int], ends: list[int]
) -> tuple[list[str], list[int], list[int]]:
    """Remove separators between CJK characters and collapse other whitespace to one space,
    run by run: the text between two runs of separators is copied whole. `_FILLER_RUN` finds
    only the runs that change something; the test below keeps this step correct on its own."""
    out_chars: list[str] = []
    out_starts: list[int] = []
    out_ends: list[int] = []
    position = 0
    for run in _FILLER_RUN.finditer(text):
        begin, finish = run.span()
        piece = run.group()
        # Runs are maximal, so the characters either side are never separators themselves.
        previous = chars[begin - 1] if begin else ""
        following = chars[finish] if finish < len(chars) else ""
        between_cjk = bool(previous and following and _is_cjk(previous) and _is_cjk(following))
        if not between_cjk and (
            _FILLER_SPACES.isdisjoint(piece) or (piece == " " and previous and following)
        ):
            # The run changes nothing ("e.g.", "a-b", a lone space between words): it stays in
            # the stretch copied whole, one test per space instead of three list copies.
            continue
        out_chars.extend(chars[position:begin])
        out_starts.extend(starts[position:begin])
        out_ends.extend(ends[position:begin])
        position = finish
        if between_cjk:
            continue  # obfuscation between Chinese characters: drop it
        if piece.isspace():
            if out_chars and following:
                out_chars.append(" ")
                out_starts.append(starts[begin])
                out_ends.append(ends[finish - 1])
            continue
        for offset in range(begin, finish):
            if not chars[offset].isspace():
                out_chars.append(chars[offset])
                out_starts.append(starts[offset])
                out_ends.append(ends[offset])
    out_chars.extend(chars[position:])
    out_starts.extend(starts[position:])
    out_ends.extend(ends[position:])
    return out_chars, out_starts, out_ends


def normalize(text: str) -> Normalized:
    """Normalise a message for matching, keeping a map to the original offsets.

    Each step (fold characters, Traditional -> Simplified, multi-character folds, drop junk,
    drop fillers) works on the whole text in C where it can and rebuilds the offset lists only
    when it changes something (tests/test_normalize.py holds this to the step-by-step
    reference on the corpus, the rule examples and generated obfuscations).
    """
    folded_text = text.translate(_FOLD)
    if len(folded_text) == len(text):  # every character folded to exactly one
        chars = list(folded_text)
        starts = list(range(len(text)))
        ends = list(range(1, len(text) + 1))
    else:
        chars, starts, ends = [], [], []
        for index, original_char in enumerate(text):
            for ch in original_char.translate(_FOLD):
                chars.append(ch)
                starts.append(index)
                ends.append(index + 1)

    chars = _to_simplified(chars)
    current = "".join(chars)
    for pattern, repl in _FOLDS:
        if pattern.search(current) is None:
            continue
        chars, starts, ends = _apply_fold(chars, starts, ends, pattern, repl)
        current = "".join(chars)

    if len(current.translate(_KEEP)) != len(current):
        kept = [i for i, ch in enumerate(chars) if _KEEP[ord(ch)] is not None]
        chars = [chars[i] for i in kept]
        starts = [starts[i] for i in kept]
        ends = [ends[i] for i in kept]
        current = "".join(chars)

    if not _FILLERS.isdisjoint(current):
        chars, starts, ends = _drop_filler_runs(current, chars, starts, ends)
        current = "".join(chars)
    if current.endswith(" "):
        stripped = len(current.rstrip(" "))
        del chars[stripped:], starts[stripped:], ends[stripped:]
        current = current[:stripped]
    return Normalized(text, current, tuple(starts), tuple(ends))
