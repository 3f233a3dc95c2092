"""Known scam scripts: a near match to a real, published scam message, named with its source.

Scam scripts are reused at scale: the same lines reach thousands of phones and are quoted again in
police warnings and news. Like an anti-virus naming the signature it matched, dunscan keeps every
real scam row of its training data (model/real/, each with its source) as a set of 4-character
shingles of its normalised text, and says which published script a message nearly repeats.

Exact shingle overlap rather than MinHash: the index holds a few thousand scripts, so an inverted
index answers exactly in well under a millisecond, and an exact score is easier to explain.

Brand boilerplate ("【支付宝】尊敬的用户", "如非本人操作") appears in genuine notices too: every
shingle seen in a genuine training message is removed from the scripts when the index is built,
so only what is particular to the scam can match.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SHINGLE = 4
# A match needs this many shared distinctive shingles (about a dozen characters in a row)...
MIN_SHARED = 8
# ...covering this share of the message's distinctive shingles (the message is mostly the script)
# or of the script's (the message quotes the whole script and adds to it).
MIN_MESSAGE_SHARE = 0.5
MIN_SCRIPT_SHARE = 0.7
# Eight shingles are a clause of Chinese but two English words ("please reference"): a word is
# about five letters in English and one or two characters in Chinese. A script written in Latin
# letters must share this many times as much, or a genuine voicemail that says "please reference
# case number" would match the scam that says it too.
LATIN_FACTOR = 3


def canonical(text: str) -> str:
    """Letters and digits only, lower case: punctuation and spacing do not change a script."""
    return "".join(filter(str.isalnum, text.lower()))


def shingles(normalized_text: str) -> frozenset[str]:
    text = canonical(normalized_text)
    if len(text) < SHINGLE:
        return frozenset()
    return frozenset([text[i : i + SHINGLE] for i in range(len(text) - SHINGLE + 1)])


@dataclass(frozen=True)
class Script:
    """One published scam message: where it was published and its distinctive shingles."""

    source: str
    publisher: str
    date: str
    fraud_type: str
    shingles: tuple[str, ...]  # sorted: the artifact pickles the same bytes on every run


@dataclass(frozen=True)
class ScriptMatch:
    script: Script
    shared: int
    score: float
    span: tuple[int, int]  # of the shared part, in the normalised text

    @property
    def year(self) -> str:
        return self.script.date[:4] if self.script.date[:4].isdigit() else ""


class KnownScripts:
    """An exact shingle index over published scam scripts (built by model/fit.py)."""

    def __init__(self, scripts: Sequence[Script]) -> None:
        self.scripts = tuple(scripts)
        self._index: dict[str, list[int]] | None = None
        # How many shingles each script must share to count (more for scripts in Latin letters).
        self._min_shared = tuple(
            MIN_SHARED * LATIN_FACTOR if _latin(script) else MIN_SHARED for script in self.scripts
        )

    @classmethod
    def build(
        cls,
        scams: Iterable[tuple[str, dict[str, str]]],
        genuine_texts: Iterable[str],
    ) -> KnownScripts:
        """scams: (normalised text, {source, publisher, date, fraud_type}); genuine_texts:
        normalised genuine messages whose shingles are boilerplate, never evidence."""
        boilerplate: set[str] = set()
        for text in genuine_texts:
            boilerplate.update(shingles(text))
        scripts = []
        seen: set[tuple[str, ...]] = set()
        for text, meta in scams:
            distinctive = tuple(sorted(shingles(text) - boilerplate))
            if len(distinctive) < MIN_SHARED or distinctive in seen:
                continue
            seen.add(distinctive)
            scripts.append(
                Script(
                    source=str(meta.get("source") or ""),
                    publisher=str(meta.get("publisher") or ""),
                    date=str(meta.get("date") or ""),
                    fraud_type=str(meta.get("fraud_type") or ""),
                    shingles=distinctive,
                )
            )
        scripts.sort(key=lambda s: (s.source, s.shingles))
        return cls(scripts)

    def __len__(self) -> int:
        return len(self.scripts)

    def __getstate__(self) -> dict[str, object]:
        return {"scripts": self.scripts}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(state["scripts"])  # type: ignore[misc, arg-type]

    def _inverted(self) -> dict[str, list[int]]:
        if self._index is None:
            index: dict[str, list[int]] = {}
            for number, script in enumerate(self.scripts):
                for gram in script.shingles:
                    index.setdefault(gram, []).append(number)
            self._index = index
        return self._index

    def match(self, normalized_text: str) -> ScriptMatch | None:
        """The best near match of a message to a published script, or None."""
        index = self._inverted()
        message = shingles(normalized_text)
        grams = index.keys() & message  # a set intersection in C, not a test per shingle
        if len(grams) < MIN_SHARED:
            return None
        # One count over every script each shared shingle belongs to (one C pass, not one
        # update per shingle).
        counts = Counter(itertools.chain.from_iterable(map(index.__getitem__, grams)))
        best: ScriptMatch | None = None
        # In script order: of scripts that tie, the first wins (the order of a set of strings
        # changes with each process's hash seed, and with it, before, the script named).
        for number, shared in sorted(counts.items()):
            if shared < self._min_shared[number]:
                continue
            script = self.scripts[number]
            # Shares of the whole message (boilerplate included, so a long genuine notice that
            # shares one phrase with a script stays far below) and of the script's distinctive part.
            message_share = shared / len(message)
            script_share = shared / len(script.shingles)
            score = max(message_share, script_share)
            passes = message_share >= MIN_MESSAGE_SHARE or script_share >= MIN_SCRIPT_SHARE
            if passes and (best is None or (score, shared) > (best.score, best.shared)):
                best = ScriptMatch(script, shared, round(score, 3), (0, 0))
        if best is None:
            return None
        return ScriptMatch(
            best.script, best.shared, best.score, _shared_span(normalized_text, best.script)
        )


def _latin(script: Script) -> bool:
    """Most of the script's distinctive shingles are ASCII letters and digits."""
    ascii_grams = sum(gram.isascii() for gram in script.shingles)
    return ascii_grams * 2 > len(script.shingles)


def _shared_span(normalized_text: str, script: Script) -> tuple[int, int]:
    """From the first to the last character the message shares with the script."""
    positions = list(itertools.compress(itertools.count(), map(str.isalnum, normalized_text)))
    text = "".join(filter(str.isalnum, normalized_text)).lower()
    grams = set(script.shingles)
    # Only the first and the last shared shingle matter: look for each from its own end.
    starts = range(len(text) - SHINGLE + 1)
    first = next((i for i in starts if text[i : i + SHINGLE] in grams), None)
    if first is None:
        return 0, len(normalized_text)
    last = next(i for i in reversed(starts) if text[i : i + SHINGLE] in grams)
    return positions[first], positions[last + SHINGLE - 1] + 1
