"""Known scam scripts: a near match to a published real scam names its source; genuine notices
that share a brand's boilerplate never match."""

from __future__ import annotations

import opencc
import pytest

from model import data
from service.engine.known_scripts import (
    LATIN_FACTOR,
    MIN_MESSAGE_SHARE,
    MIN_SCRIPT_SHARE,
    MIN_SHARED,
    SHIPPED_THRESHOLDS,
    KnownScripts,
    Script,
    Thresholds,
    shingles,
)
from service.engine.normalize import normalize
from service.engine.pipeline import Analyzer
from service.engine.schemas import parse_record


@pytest.fixture(scope="module")
def real_rows() -> list[data.Example]:
    examples, _ = data.deduplicate(data.load_real() + data.load_real_quoted())
    return examples


@pytest.fixture(scope="module")
def index(real_rows: list[data.Example]) -> KnownScripts:
    """Scripts from every real scam row; boilerplate from the public genuine SMS (mudou) only, so
    the real genuine rows below are messages the index never saw."""
    scams = [(normalize(e.record.text).text, e.meta) for e in real_rows if e.label == "scam"]
    genuine = [
        normalize(e.record.text).text
        for e in data.load_mudou(data.DATA_DIR)
        if e.label == data.GENUINE
    ]
    return KnownScripts.build(scams, genuine)


def _long_scams(real_rows: list[data.Example]) -> list[data.Example]:
    return [
        e
        for e in real_rows
        if e.label == "scam" and len(shingles(normalize(e.record.text).text)) >= 20
    ]


def test_a_published_script_matches_reworded_punctuation_and_traditional(
    index: KnownScripts, real_rows: list[data.Example]
) -> None:
    to_traditional = opencc.OpenCC("s2t")
    scams = _long_scams(real_rows)
    assert len(scams) > 100
    for example in scams[:40]:
        text = example.record.text
        variant = to_traditional.convert(text).replace("，", " ").replace("。", "!!")
        found = index.match(normalize(variant).text)
        assert found is not None, text
        assert found.score >= 0.5
        assert found.script.source  # every script says where it was published


def test_a_quoted_script_inside_a_longer_message_still_matches(
    index: KnownScripts, real_rows: list[data.Example]
) -> None:
    script = _long_scams(real_rows)[0].record.text
    found = index.match(normalize("朋友转给我这条短信，问是不是真的：" + script).text)
    assert found is not None


def test_no_real_genuine_message_matches_a_scam_script(
    index: KnownScripts, real_rows: list[data.Example]
) -> None:
    genuine = [e for e in real_rows if e.label in {"legit", "other"}]
    assert len(genuine) > 150
    matched = [e.record.text for e in genuine if index.match(normalize(e.record.text).text)]
    assert matched == []


def test_short_or_unrelated_text_never_matches(index: KnownScripts) -> None:
    for text in ("您好", "明天下午三点开会，记得带电脑", "【中国移动】您的话费余额为23.50元"):
        assert index.match(normalize(text).text) is None


def test_the_shipped_model_names_where_a_script_was_published(
    analyzer: Analyzer, real_rows: list[data.Example]
) -> None:
    scripts = analyzer.model.scripts
    assert scripts is not None and len(scripts) > 300
    example = next(
        e for e in _long_scams(real_rows) if str(e.meta.get("source", "")).startswith("http")
    )
    verdict = analyzer.check(parse_record({"text": example.record.text}))
    signal = next(s for s in verdict.signals if s.id == "known_script")
    assert signal.source == "script" and signal.category == "scam"
    assert signal.reference and signal.reference.startswith("http")
    assert "诈骗话术高度相似" in (signal.explanation or "")
    start, end = signal.span
    assert example.record.text[start:end] == signal.evidence
    assert verdict.category == "scam"


def test_of_two_scripts_that_match_equally_the_same_one_is_named_in_every_process() -> None:
    """Two published scripts a message matches equally well: which one the verdict names must
    not depend on the process's string hash seed (it did: the first one met in a set)."""
    import subprocess
    import sys

    program = (
        "from service.engine.known_scripts import KnownScripts, Script, shingles\n"
        "first, second = '甲乙丙丁戊己庚辛壬癸子丑', '寅卯辰巳午未申酉戌亥天地'\n"
        "scripts = [(Script(name, name, '2024', 'x'), shingles(text))\n"
        "           for name, text in (('a', first), ('b', second))]\n"
        "found = KnownScripts.from_shingles(scripts).match(first + second)\n"
        "print(found.script.source, found.score)\n"
    )
    named = {
        subprocess.run(
            [sys.executable, "-c", program],
            env={"PYTHONHASHSEED": str(seed), "PATH": ""},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in range(12)
    }
    assert named == {"a 1.0\n"}


def _reference_match(
    scripts: list[tuple[str, set[str], bool]], text: str
) -> tuple[str, int, float] | None:
    """The index's rule written plainly: each script's shared shingles counted one by one.
    scripts: (source, its shingles, whether most of them are Latin letters and digits)."""
    message = shingles(text)
    best = None
    for source, grams, latin in scripts:
        shared = len(message & grams)
        if shared < MIN_SHARED * (LATIN_FACTOR if latin else 1) or not message:
            continue
        message_share, script_share = shared / len(message), shared / len(grams)
        if message_share < MIN_MESSAGE_SHARE and script_share < MIN_SCRIPT_SHARE:
            continue
        score = max(message_share, script_share)
        if best is None or (score, shared) > (best[2], best[1]):
            best = (source, shared, score)
    return None if best is None else (best[0], best[1], round(best[2], 3))


def test_the_array_index_finds_what_counting_each_script_finds(
    index: KnownScripts, real_rows: list[data.Example]
) -> None:
    scripts = []
    for number, script in enumerate(index.scripts):
        grams = set(index.shingles_of(number))
        latin = sum(gram.isascii() for gram in grams) * 2 > len(grams)
        scripts.append((script.source, grams, latin))
    texts = [normalize(e.record.text).text for e in real_rows[::20]]
    assert len(texts) > 300
    found = 0
    for text in texts:
        match = index.match(text)
        got = None if match is None else (match.script.source, match.shared, match.score)
        assert got == _reference_match(scripts, text), text
        found += match is not None
    assert found > 20  # scams among them match their own scripts


def test_other_thresholds_match_by_their_own_rule_and_leave_the_index_alone() -> None:
    """`with_thresholds` (model.probe --known-scripts) changes only when a match counts."""
    script_text = "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉戌亥"
    scripts = [(Script("page", "publisher", "2024", "x"), shingles(script_text))]
    index = KnownScripts.from_shingles(scripts)
    # Ten shared shingles, a third of the message and of the script's 21: below both shipped shares.
    message = script_text[:13] + "天地玄黄宇宙洪荒日月盈昃辰宿列张寒来暑往秋收冬藏"
    assert index.match(message) is None
    looser = index.with_thresholds(Thresholds(min_shared=8, message_share=0.25, script_share=0.7))
    found = looser.match(message)
    assert found is not None and found.shared == 10 and found.script.source == "page"
    assert index.thresholds == SHIPPED_THRESHOLDS and index.match(message) is None
    stricter = index.with_thresholds(
        Thresholds(min_shared=11, message_share=0.25, script_share=0.7)
    )
    assert stricter.match(message) is None
