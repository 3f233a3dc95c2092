"""The literal prefilter (service/engine/prefilter.py): a rule it leaves out must not match."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import re2

from model import data
from service.engine.normalize import normalize
from service.engine.pipeline import Analyzer
from service.engine.prefilter import LiteralPrefilter, required_literals, stored_literals
from service.paths import RULE_LITERALS_PATH

# (RE2 pattern, a text it matches): syntax where a careless reading would leave the rule out.
MATCHING = [
    # A POSIX class: Python's parser would read "[[:digit:]]" as a set of characters and "]".
    (r"[[:digit:]]元", "付5元"),
    (r"[[:^alpha:]]元", "付5元"),
    # "{,3}" is a repeat for Python and literal text for RE2.
    (r"转{,3}账", "转{,3}账"),
    (r"(?i)verify", "please VERIFY now"),
    (r"ab(?i:cd)", "abCD"),
    (r"\p{Han}[^a-z\p{Han}]{0,2}(?:cnm|sb)", "你 sb"),
    (r"\pN{2}元", "55元"),
    (r"(?:^|[,。])垃圾(?:$|[,。])", "垃圾"),
    (r"转入?账", "转账"),
    (r"(?:请|需)(?:缴纳|支付)[^。!?]{0,10}(?:解冻|激活)费", "请支付一笔激活费"),
    (r"\x{4e2d}国", "中国"),
    (r"a|b?", "zzz"),  # can match the empty string: every text
    (r"[a-c]{2}x", "bcx"),
    (r"(?:验证码){1,2}", "验证码"),
]


@pytest.mark.parametrize(("pattern", "text"), MATCHING)
def test_a_rule_whose_pattern_matches_is_a_candidate(pattern: str, text: str) -> None:
    assert re2.search(pattern, text) is not None  # the case itself is right
    assert LiteralPrefilter([[pattern]]).candidates(text) == [0]


def test_readings_of_plain_patterns() -> None:
    # Every word of a sequence is needed; the most selective clauses are kept.
    clauses = required_literals(r"(?:缴纳|交)[^。!?]{0,10}(?:解冻|激活)")
    assert clauses is not None
    assert set(clauses) == {frozenset({"缴纳", "交"}), frozenset({"解冻", "激活"})}
    # Alternatives multiply out while the set stays small.
    assert required_literals(r"(?:请|需)(?:缴纳|支付)") == (
        frozenset({"请缴纳", "请支付", "需缴纳", "需支付"}),
    )
    # A class that starts with a colon is no POSIX class: its words are still read.
    clauses = required_literals(r"(?:微信|qq)[: ]{0,2}[a-z0-9]")
    assert clauses is not None
    assert all(word.startswith(("微信", "qq")) for clause in clauses for word in clause)
    # Syntax read differently by Python and RE2, or case-insensitive: run on every text.
    for pattern in (r"x[[:alpha:]]", r"a{,3}", r"(?i)abc", r"ab(?i:c)", r"\Qa.b\E"):
        assert required_literals(pattern) is None, pattern


def test_a_text_without_the_words_skips_the_rule() -> None:
    prefilter = LiteralPrefilter([[r"解冻(?:费|金)"], [r"(?:缴纳|交)[^。!?]{0,10}保证金"]])
    assert prefilter.candidates("您的账户已恢复正常") == []
    # Both words of the second rule are needed.
    assert prefilter.candidates("请缴纳解冻费") == [0]
    assert prefilter.candidates("保证按时到账") == []
    assert prefilter.candidates("先交500元保证金再解冻金") == [0, 1]


def test_every_rule_that_matches_a_corpus_text_or_example_is_a_candidate() -> None:
    """The shipped rules on every rule example and a tenth of the corpus and real texts: a
    pattern that matches (RE2, the whole alternation) always has its rule among the candidates.
    (test_scorer holds the rules' hits with and without the prefilter equal on every text.)"""
    ruleset = Analyzer.load(use_model=False).ruleset
    compiled = ruleset._compiled
    texts = [e.record.text for e in data.load_corpus() + data.load_real() if e.record.text][::10]
    for rule in ruleset.rules:
        texts.extend(rule.must_match)
        texts.extend(rule.must_not_match)
    skipped = 0
    for text in texts:
        norm = normalize(text).text
        candidates = {item.rule.id for item in ruleset.candidates(norm)}
        for item in compiled:
            if item.pattern.search(norm) is not None:
                assert item.rule.id in candidates, (item.rule.id, text)
            elif item.rule.id not in candidates:
                skipped += 1
    # The prefilter does its job: most (rule, text) pairs that cannot match are never run.
    assert skipped > 0.8 * len(texts) * len(compiled)


# --- the clauses read ahead of time (service/data/rule_literals.json) -----------------------------


def test_the_shipped_file_holds_every_rule_pattern_as_the_reader_reads_it() -> None:
    """Loading uses the stored clauses instead of reading each pattern again: they must be exactly
    what the reader gives today, for every shipped pattern (after a rule change or a change to the
    reader: `python -m service.engine.rules` rewrites the file)."""
    stored = stored_literals()
    patterns = {p for rule in Analyzer.load(use_model=False).ruleset.rules for p in rule.patterns}
    missing = sorted(patterns - stored.keys())
    assert not missing, f"not in {RULE_LITERALS_PATH.name}: {missing[:3]}"
    stale = [p for p in sorted(patterns) if stored[p] != required_literals(p)]
    assert not stale, f"stale in {RULE_LITERALS_PATH.name}: {stale[:3]}"


def test_the_reading_does_not_depend_on_the_hash_seed() -> None:
    """Ties between equally selective clauses are broken by their strings, not by set order, so
    the file written under one hash seed is the file another process reads."""
    script = (
        "import json; from service.engine.prefilter import literals_text; "
        "print(literals_text(json.loads(input())))"
    )
    patterns = sorted(stored_literals())
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            input=json.dumps(patterns),
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1


@pytest.mark.parametrize(
    "content", [b"{not json", b'{"reader": 0, "patterns": {"x": null}}', b"[1, 2]"]
)
def test_a_broken_or_foreign_file_is_ignored(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "rule_literals.json"
    path.write_bytes(content)
    assert stored_literals(path) == {}
    assert stored_literals(tmp_path / "missing.json") == {}


def test_stored_clauses_are_used_and_a_pattern_without_them_is_read() -> None:
    patterns = [[r"解冻(?:费|金)"], [r"(?:缴纳|交)[^。!?]{0,10}保证金"]]
    # Stored as "runs on every text": the first rule becomes a candidate everywhere.
    prefilter = LiteralPrefilter(patterns, {patterns[0][0]: None})
    assert prefilter.candidates("您的账户已恢复正常") == [0]
    assert prefilter.candidates("请缴纳保证金") == [0, 1]
