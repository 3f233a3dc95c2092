"""Which rules can fire on a text, found with plain substring tests before any regex runs.

Almost every rule pattern is made of literal words joined by gaps ("(?:缴纳|交)[^。!?]{0,10}
(?:解冻|激活)"): every match of it contains at least one of a few literal strings (here "缴纳",
"交", or, better, "解冻" or "激活"). `required_literals` reads such a set off the pattern's syntax
tree, the way RE2's FilteredRE2 finds its "atoms"; `LiteralPrefilter` then runs only the rules
one of whose strings occurs in the text, and every rule it could not read, always. The strings
are found in one pass with pyahocorasick's automaton (C).

Why not FilteredRE2 itself (what rules.py used before): its Python binding scans for the atoms
with one RE2::Set built with RE2's default 8 MiB budget, which the ~3,000 CJK atoms of our rules
outgrow, so its DFA cache keeps being rebuilt: ~150 us a message on average, and one message in a
hundred waited 4-17 ms for a rebuild (measured on the bench messages). Substring tests cost a few
microseconds and never rebuild anything.

The reading is conservative: a construct it does not understand, or whose meaning differs
between Python's regex parser (used here to read the syntax) and RE2 (which runs the patterns),
makes the pattern "can match anything", never "cannot match". tests/test_scorer.py holds the
prefiltered hits equal to every rule's full check on the corpus and every rule example.

Reading the ~340 shipped patterns took ~80 ms of every start, so their clauses are stored in
service/data/rule_literals.json (by pattern text, under READER_VERSION); a pattern the file does
not hold is read at load. After editing a rule: `python -m service.engine.rules` rewrites it (a
test fails until the file matches the rules).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ahocorasick

from service.paths import RULE_LITERALS_PATH

try:  # CPython's own regex parser (Python 3.11+); without it every rule simply always runs.
    from re import _constants as _sre  # type: ignore[attr-defined]
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - other interpreters
    _sre = _sre_parse = None

# A clause whose strings are all at least this long is rare enough in text that its length
# matters less than how many strings it holds (`_rank`).
_LONG_STRING = 4
# Clauses kept per pattern (the most selective ones).
_MAX_CLAUSES = 4
# Largest set of strings kept while multiplying out alternatives ("(?:请|需)(?:缴纳|支付)" is 4).
_MAX_STRINGS = 64
# Longest character range or optional repeat expanded into strings.
_MAX_RANGE = 16
_MAX_OPTIONAL_REPEAT = 3
# Syntax that Python's parser reads differently from RE2: "x{,3}" is a repeat for Python and the
# literal text "{,3}" for RE2; "[[:alpha:]]" is a POSIX class for RE2 and a set of characters for
# Python; \Q...\E quoting, \C and the (?U) flag exist in RE2 only. A pattern using any of them is
# treated as able to match anything. A class that merely starts with a colon ("[: ]") reads the
# same in both, so only a whole POSIX name counts.
_DIVERGENT_SYNTAX = re.compile(r"\{,|\\Q|\\C|\(\?U|\[:\^?[a-z]+:\]")
# RE2's Unicode classes (\p{Han}, \PN), which Python's parser refuses, read as \d: a class
# of unknown characters, so what stands around them is still read.
_UNICODE_CLASS = re.compile(r"(?<!\\)((?:\\\\)*)\\[pP](?:\{[^}]*\}|[A-Za-z])")


class _Unreadable(Exception):
    """The pattern uses something the reading does not cover."""


Strings = frozenset[str]


def _usable(strings: Iterable[str] | None) -> Strings | None:
    """A set of strings that tells something: non-empty, and none of them empty."""
    if strings is None:
        return None
    found = frozenset(strings)
    if not found or "" in found:
        return None
    return found


def _rank(strings: Strings) -> tuple[int, int, int]:
    """How well a required set sorts texts out: longer shortest string (up to `_LONG_STRING`:
    one character, "转", is in many texts, four rarely), then fewer strings, then longer."""
    shortest = min(map(len, strings))
    return min(shortest, _LONG_STRING), -len(strings), shortest


def _better(current: Strings | None, candidate: Iterable[str] | None) -> Strings | None:
    """The more selective of two required sets (`_rank`)."""
    candidate = _usable(candidate)
    if candidate is None:
        return current
    if current is None:
        return candidate
    return candidate if _rank(candidate) > _rank(current) else current


def _product(left: Iterable[str], right: Iterable[str]) -> Strings | None:
    strings = frozenset(a + b for a in left for b in right)
    return strings if len(strings) <= _MAX_STRINGS else None


# What a (part of a) pattern needs, as clauses that must all hold, each a set of strings one of
# which must occur: "(?:缴纳|交)[^。!?]{0,10}(?:解冻|激活)" needs {缴纳, 交} and {解冻, 激活}.
Clauses = tuple[Strings, ...]


def _clauses(*groups: Iterable[Strings]) -> Clauses:
    """The usable clauses of `groups`, the most selective first (`_rank`), at most
    `_MAX_CLAUSES` of them (dropping a clause only weakens the test, it never misses)."""
    found = {clause for group in groups for clause in group if _usable(clause) is not None}
    # Ties broken by the strings themselves, not by set order (which follows the process's hash
    # seed): the same pattern always gives the same clauses, so they can be stored
    # (service/data/rule_literals.json).
    ranked = sorted(sorted(found, key=sorted), key=_rank, reverse=True)
    return tuple(ranked[:_MAX_CLAUSES])


def _either(alternatives: Sequence[Clauses]) -> Clauses:
    """The clauses that hold whenever one of the alternatives holds: (A and B) or C is
    (A or C) and (B or C); beyond `_MAX_CLAUSES` combinations, each alternative keeps its best
    clause only."""
    if not alternatives or any(not clauses for clauses in alternatives):
        return ()
    combinations = 1
    for clauses in alternatives:
        combinations *= len(clauses)
    if combinations > _MAX_CLAUSES:
        alternatives = [clauses[:1] for clauses in alternatives]
    combined = [frozenset[str]()]
    for clauses in alternatives:
        combined = [so_far | clause for so_far in combined for clause in clauses]
    return _clauses(combined)


def _sequence(items: Sequence[Any]) -> tuple[Strings | None, Clauses]:
    """(exact, clauses) of a concatenation: `exact` is every string it can match (None when
    unbounded or too many); `clauses` what every match contains."""
    run: Strings = frozenset({""})  # the exact strings of the current run of exact items
    whole_is_exact = True
    found: list[Strings] = []
    for item in items:
        exact, clauses = _node(item)
        if exact is not None:
            product = _product(run, exact)
            if product is not None:
                run = product
                continue
            whole_is_exact = False
            found.append(run)
            run = exact
            continue
        whole_is_exact = False
        found.append(run)
        found.extend(clauses)
        run = frozenset({""})
    found.append(run)
    return (run if whole_is_exact else None), _clauses(found)


def _node(node: tuple[Any, Any]) -> tuple[Strings | None, Clauses]:
    op, value = node
    if op is _sre.LITERAL:
        strings = frozenset({chr(value)})
        return strings, (strings,)
    if op is _sre.IN:
        chars: set[str] = set()
        for item_op, item in value:
            if item_op is _sre.LITERAL:
                chars.add(chr(item))
            elif item_op is _sre.RANGE and item[1] - item[0] < _MAX_RANGE:
                chars.update(chr(point) for point in range(item[0], item[1] + 1))
            else:  # a negated class, \d, \s, a wide range: too many characters
                return None, ()
        return frozenset(chars), _clauses([frozenset(chars)])
    if op in (_sre.ANY, _sre.NOT_LITERAL):
        return None, ()
    if op is _sre.AT:  # ^, $, \A ...: match the empty string
        return frozenset({""}), ()
    if op is _sre.SUBPATTERN:
        _group, add_flags, _del_flags, pattern = value
        if add_flags & _sre.SRE_FLAG_IGNORECASE:
            raise _Unreadable("case-insensitive group")
        return _sequence(pattern)
    if op is _sre.BRANCH:
        branches = [_sequence(branch) for branch in value[1]]
        exact = None
        if all(e is not None for e, _ in branches):
            union = frozenset().union(*(e for e, _ in branches if e is not None))
            exact = union if len(union) <= _MAX_STRINGS else None
        alternatives = [
            _clauses([branch_exact]) if _usable(branch_exact) else branch_clauses
            for branch_exact, branch_clauses in branches
        ]
        return exact, _either(alternatives)
    if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", None)):
        low, high, pattern = value
        exact, clauses = _sequence(pattern)
        repeated = None
        if exact is not None and high - low <= _MAX_OPTIONAL_REPEAT and high <= _MAX_STRINGS:
            power: Strings | None = frozenset({""})
            for _ in range(low):
                power = _product(power, exact) if power is not None else None
            options = set(power) if power is not None else None
            for _ in range(high - low):
                if power is None or options is None:
                    break
                power = _product(power, exact)
                options = options | power if power is not None else None
            if options is not None and len(options) <= _MAX_STRINGS:
                repeated = frozenset(options)
        if low == 0:
            return repeated, ()
        return repeated, (_clauses([exact]) if _usable(exact) else clauses)
    raise _Unreadable(f"construct {op}")


def required_literals(pattern: str) -> Clauses | None:
    """Clauses that every match of the RE2 `pattern` satisfies (each a set of strings one of
    which occurs in the match), or None when none were found: the pattern then runs on every
    text."""
    if _sre_parse is None or _DIVERGENT_SYNTAX.search(pattern):
        return None
    try:
        parsed = _sre_parse.parse(_UNICODE_CLASS.sub(r"\1\\d", pattern))
    except Exception:  # RE2-only syntax such as \x{...}: Python's parser refuses it
        return None
    if parsed.state.flags & _sre.SRE_FLAG_IGNORECASE:
        return None
    try:
        _exact, clauses = _sequence(list(parsed))
    except (_Unreadable, RecursionError):
        return None
    return clauses or None


# The stored clauses (service/data/rule_literals.json) hold for this reading only: a change to
# how `required_literals` reads a pattern changes this number, and the old file is then ignored.
READER_VERSION = 2
Stored = Mapping[str, Clauses | None]


def literals_text(patterns: Iterable[str]) -> str:
    """The text of service/data/rule_literals.json for these patterns: each pattern's clauses (a
    list of sorted lists of strings, or null for "runs on every text") under the reader's
    version, one pattern a line so that a changed rule shows as a changed line in a diff."""
    lines = []
    for pattern in sorted(set(patterns)):
        clauses = required_literals(pattern)
        stored = None if clauses is None else [sorted(c) for c in clauses]
        lines.append(
            f"  {json.dumps(pattern, ensure_ascii=False)}: {json.dumps(stored, ensure_ascii=False)}"
        )
    return f'{{"reader": {READER_VERSION}, "patterns": {{\n' + ",\n".join(lines) + "\n}}\n"


def stored_literals(path: Path = RULE_LITERALS_PATH) -> dict[str, Clauses | None]:
    """The clauses read off the shipped rules' patterns ahead of time, by pattern text; empty when
    the file is missing, unreadable or from another reader version (every pattern is then read
    at load, as a pattern the file does not hold always is)."""
    try:
        content = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(content, dict) or content.get("reader") != READER_VERSION:
        return {}
    return {
        pattern: None if clauses is None else tuple(frozenset(c) for c in clauses)
        for pattern, clauses in content.get("patterns", {}).items()
    }


class LiteralPrefilter:
    """The rules (by index) one of whose patterns has all its clauses present in a text; a rule
    with a pattern that could not be read, always.

    A clause's strings are the automaton's keys, whole: each clause gets one bit; the keys
    found in the text (one Aho-Corasick pass over it) light the bits of the clauses they
    satisfy; a pattern passes when all its bits are lit. Only patterns whose first (most
    selective) clause was hit are looked at, so the work follows what the text holds rather
    than the number of rules.
    """

    def __init__(self, rules: Sequence[Sequence[str]], stored: Stored | None = None) -> None:
        """`stored`: clauses already read off some patterns (`stored_literals`); reading the
        shipped rules' ~340 patterns is most of what loading the rules costs (~80 ms)."""
        stored = stored or {}
        always: list[int] = []
        masks: dict[str, int] = {}  # key -> bits of the clauses it satisfies
        clause_bits: dict[frozenset[str], int] = {}
        # key -> (rule, bits of all the pattern's clauses) of the patterns whose first clause
        # the key satisfies
        by_key: dict[str, list[tuple[int, int]]] = {}
        for index, patterns in enumerate(rules):
            needs = [
                stored[pattern] if pattern in stored else required_literals(pattern)
                for pattern in patterns
            ]
            if not needs or any(clauses is None for clauses in needs):
                always.append(index)
                continue
            for clauses in needs:
                bits = 0
                for clause in clauses or ():
                    keys = frozenset(clause)
                    if keys not in clause_bits:
                        clause_bits[keys] = 1 << len(clause_bits)
                        for key in keys:
                            masks[key] = masks.get(key, 0) | clause_bits[keys]
                    bits |= clause_bits[keys]
                for key in set((clauses or ((),))[0]):
                    by_key.setdefault(key, []).append((index, bits))
        self.always = frozenset(always)
        # Every key found in one pass in C (Aho-Corasick), each with its clause bits and the
        # patterns it opens. Keys are whole strings: cut to their first three characters (as
        # when a set of a text's short pieces was built in Python), "her boss" was "her", found
        # in most English texts, and the prefilter let through 2.4 times as many rules.
        # The automaton stores each key's number (a C int, no Python object); the key's clause
        # bits and the patterns it opens sit in two lists, the equal ones shared: as one tuple
        # of Python objects per key they took 2.5 MB of every worker for ~8,000 keys.
        self._automaton: Any = None
        self._masks: list[int] = []
        self._opens: list[tuple[tuple[int, int], ...]] = []
        if masks:
            shared: dict[Any, Any] = {}
            self._automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
            for number, (key, mask) in enumerate(masks.items()):
                self._automaton.add_word(key, number)
                self._masks.append(shared.setdefault(mask, mask))
                opens = tuple(
                    shared.setdefault(entry, (entry[0], shared.setdefault(entry[1], entry[1])))
                    for entry in by_key.get(key, ())
                )
                self._opens.append(shared.setdefault(opens, opens))
            self._automaton.make_automaton()

    def candidates(self, text: str) -> list[int]:
        """Indices of the rules that can fire on `text`, ascending."""
        if self._automaton is None:
            return sorted(self.always)
        lit = 0
        found_keys: set[int] = set()
        masks = self._masks
        for _end, number in self._automaton.iter(text):
            if number not in found_keys:
                found_keys.add(number)
                lit |= masks[number]
        found = set(self.always)
        opens = self._opens
        for number in found_keys:
            for index, bits in opens[number]:
                if lit & bits == bits:
                    found.add(index)
        return sorted(found)
