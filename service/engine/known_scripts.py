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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

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
class Thresholds:
    """When a message counts as a near match (the defaults are what ships; `python -m model.probe
    --known-scripts` measures others)."""

    min_shared: int = MIN_SHARED
    message_share: float = MIN_MESSAGE_SHARE
    script_share: float = MIN_SCRIPT_SHARE


SHIPPED_THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class Script:
    """Where one published scam message was published (its shingles live in the index arrays)."""

    source: str
    publisher: str
    date: str
    fraud_type: str


@dataclass(frozen=True)
class ScriptMatch:
    script: Script
    shared: int
    score: float
    span: tuple[int, int]  # of the shared part, in the normalised text

    @property
    def year(self) -> str:
        return self.script.date[:4] if self.script.date[:4].isdigit() else ""


# The index as the artifact stores it (service/engine/scorer.py): plain arrays, read in
# milliseconds. Stored as JSON lists of strings and turned into a dict of lists at start-up, it
# cost a `dunscan check` ~60 ms.
ARRAY_NAMES = ("grams", "offsets", "index_grams", "index_offsets", "index_scripts")


class KnownScripts:
    """An exact shingle index over published scam scripts (built by model/fit.py).

    grams / offsets: each script's distinctive shingles (sorted), one after the other; script k
    owns grams[offsets[k]:offsets[k + 1]]. index_grams / index_offsets / index_scripts: the same
    shingles inverted: each distinct shingle once, sorted, with the scripts that hold it in
    index_scripts[index_offsets[i]:index_offsets[i + 1]], in script order.
    """

    def __init__(
        self,
        scripts: Sequence[Script],
        arrays: dict[str, np.ndarray],
        thresholds: Thresholds = SHIPPED_THRESHOLDS,
    ) -> None:
        self.scripts = tuple(scripts)
        self.thresholds = thresholds
        self.arrays = {name: arrays[name] for name in ARRAY_NAMES}
        grams, offsets = self.arrays["grams"], self.arrays["offsets"]
        if len(offsets) != len(self.scripts) + 1:
            raise ValueError("known scripts: offsets do not match the scripts")
        self._lengths = np.diff(offsets)
        # How many shingles each script must share to count (more for scripts in Latin letters:
        # most of their shingles are ASCII letters and digits).
        ascii_grams = (_codes(grams) < 128).all(axis=1)
        owner = np.repeat(np.arange(len(self.scripts)), self._lengths)
        latin = np.bincount(owner, weights=ascii_grams, minlength=len(self.scripts)) * 2
        least = thresholds.min_shared
        self._min_shared = np.where(latin > self._lengths, least * LATIN_FACTOR, least)
        self._positions: dict[str, int] | None = None

    def with_thresholds(self, thresholds: Thresholds) -> KnownScripts:
        """The same index, matching by other thresholds (it shares the arrays and the lookup)."""
        other = KnownScripts(self.scripts, self.arrays, thresholds)
        other._positions = self.positions()  # built once, whichever of them matches first
        return other

    @classmethod
    def from_shingles(cls, scripts: Sequence[tuple[Script, Iterable[str]]]) -> KnownScripts:
        """The index of (script, its distinctive shingles) pairs, in that order."""
        per_script = [sorted(grams) for _, grams in scripts]
        lengths = np.array([len(grams) for grams in per_script], dtype=np.int64)
        grams = np.array(
            [gram for grams in per_script for gram in grams], dtype=f"<U{SHINGLE}"
        ).reshape(-1)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        owner = np.repeat(np.arange(len(per_script), dtype=np.int32), lengths)
        order = np.argsort(grams, kind="stable")  # stable: each shingle's scripts in order
        index_grams, first = np.unique(grams[order], return_index=True)
        arrays = {
            "grams": grams,
            "offsets": offsets,
            "index_grams": index_grams,
            "index_offsets": np.append(first, len(grams)).astype(np.int64),
            "index_scripts": owner[order],
        }
        return cls([script for script, _ in scripts], arrays)

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
            script = Script(
                source=str(meta.get("source") or ""),
                publisher=str(meta.get("publisher") or ""),
                date=str(meta.get("date") or ""),
                fraud_type=str(meta.get("fraud_type") or ""),
            )
            scripts.append((script, distinctive))
        scripts.sort(key=lambda pair: (pair[0].source, pair[1]))
        return cls.from_shingles(scripts)

    def __len__(self) -> int:
        return len(self.scripts)

    def shingles_of(self, number: int) -> tuple[str, ...]:
        offsets = self.arrays["offsets"]
        return tuple(self.arrays["grams"][offsets[number] : offsets[number + 1]].tolist())

    def positions(self) -> dict[str, int]:
        """Each distinct shingle -> its place in index_grams, built on first use (~10 ms;
        `Analyzer.warm` builds it before a server forks). Most messages share too few shingles
        with any script: one set intersection in C settles them, where looking each shingle up
        in the arrays cost every message ~0.1 ms of numpy calls."""
        if self._positions is None:
            grams = self.arrays["index_grams"].tolist()
            self._positions = dict(zip(grams, range(len(grams)), strict=True))
        return self._positions

    def match(self, normalized_text: str) -> ScriptMatch | None:
        """The best near match of a message to a published script, or None."""
        message = shingles(normalized_text)
        positions = self.positions()
        grams = positions.keys() & message
        if len(grams) < self.thresholds.min_shared:
            return None
        found = np.fromiter(map(positions.__getitem__, grams), dtype=np.int64, count=len(grams))
        # Every script each shared shingle belongs to, counted in one pass.
        starts = self.arrays["index_offsets"][found]
        lengths = self.arrays["index_offsets"][found + 1] - starts
        within = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        owners = self.arrays["index_scripts"][np.repeat(starts, lengths) + within]
        counts = np.bincount(owners, minlength=len(self.scripts))
        candidates = np.flatnonzero(counts >= self._min_shared)
        shared = counts[candidates]
        # Shares of the whole message (boilerplate included, so a long genuine notice that shares
        # one phrase with a script stays far below) and of the script's distinctive part.
        message_share = shared / len(message)
        script_share = shared / self._lengths[candidates]
        least = self.thresholds
        passes = (message_share >= least.message_share) | (script_share >= least.script_share)
        if not passes.any():
            return None
        candidates, shared = candidates[passes], shared[passes]
        score = np.maximum(message_share, script_share)[passes]
        # The best score, then the most shingles shared, then the first script: never an order
        # that changes with the process's string hash seed (it did once, with a set).
        best = np.lexsort((candidates, -shared, -score))[0]
        number = int(candidates[best])
        return ScriptMatch(
            self.scripts[number],
            int(shared[best]),
            round(float(score[best]), 3),
            _shared_span(normalized_text, set(self.shingles_of(number))),
        )


def _codes(grams: np.ndarray) -> np.ndarray:
    """Each shingle's code points, one row per shingle (absent characters are 0)."""
    return grams.view(np.uint32).reshape(len(grams), SHINGLE)


def _shared_span(normalized_text: str, grams: set[str]) -> tuple[int, int]:
    """From the first to the last character the message shares with the script."""
    positions = list(itertools.compress(itertools.count(), map(str.isalnum, normalized_text)))
    text = "".join(filter(str.isalnum, normalized_text)).lower()
    # Only the first and the last shared shingle matter: look for each from its own end.
    starts = range(len(text) - SHINGLE + 1)
    first = next((i for i in starts if text[i : i + SHINGLE] in grams), None)
    if first is None:
        return 0, len(normalized_text)
    last = next(i for i in reversed(starts) if text[i : i + SHINGLE] in grams)
    return positions[first], positions[last + SHINGLE - 1] + 1
