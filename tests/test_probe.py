"""model/probe.py: the cheap model-only probes rank variants on the same grouped folds as
real_eval, scoring each held-out real row once, from models that never saw its source."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import sparse

from model import data, fit, probe
from model.fit import Dataset
from model.real_eval import grouped_folds
from service.engine.known_scripts import SHIPPED_THRESHOLDS
from service.engine.pipeline import Analyzer


def test_every_held_out_row_is_scored_once_by_a_model_that_never_saw_its_source(
    quoted_dataset: Dataset, rules_only_analyzer: Analyzer, monkeypatch: pytest.MonkeyPatch
) -> None:
    folds = grouped_folds(quoted_dataset)
    groups = data.source_groups(quoted_dataset.examples)
    trained_on: list[set[str]] = []
    original = probe.fold_matrices

    def recording(dataset, rule_ids, train, test):  # type: ignore[no-untyped-def]
        trained_on.append({groups[i] for i in train})
        assert not trained_on[-1] & {groups[i] for i in test}
        return original(dataset, rule_ids, train, test)

    monkeypatch.setattr(probe, "fold_matrices", recording)
    rule_ids = [f"rule:{rule.id}" for rule in rules_only_analyzer.ruleset.rules]
    rows, scores = probe.out_of_fold(
        quoted_dataset, rule_ids, folds, {"plain": probe.scam_scorer(4.0)}, lambda e: True
    )
    assert rows == sorted(i for fold in folds for i in fold)
    assert len(trained_on) == len(folds)
    labels = quoted_dataset.labels[rows]
    line = probe.scam_line("plain", labels, scores["plain"])
    auc = float(line.split("|")[2])
    # Trained on a few hundred rows of other publishers, it still ranks scams above genuine rows.
    assert auc > 0.75, line


def test_fragment_variants_learn_from_the_training_rows_sentences_only(
    quoted_dataset: Dataset, rules_only_analyzer: Analyzer
) -> None:
    inputs, parents = fit.fragments_of(rules_only_analyzer, quoted_dataset.examples)
    dataset = dataclasses.replace(quoted_dataset, fragment_inputs=inputs, fragment_parents=parents)
    folds = grouped_folds(dataset)
    seen: list[int] = []

    def counting(train, labels, weights, test):  # type: ignore[no-untyped-def]
        seen.append(train.shape[0])
        return probe.scam_scorer(4.0)(train, labels, weights, test)

    rule_ids = [f"rule:{rule.id}" for rule in rules_only_analyzer.ruleset.rules]
    rows, scores = probe.out_of_fold(
        dataset,
        rule_ids,
        folds,
        {"plain": probe.scam_scorer(4.0), "fragments": counting},
        lambda e: True,
        {"fragments": 0.5},
    )
    # Each fold's model saw its training rows and the fragments of those rows, no other.
    for fold, trained in zip(folds, seen, strict=True):
        held = set(fold)
        own = sum(1 for parent in parents if parent not in held)
        assert trained == len(dataset.examples) - len(held) + own
    assert own > 0
    assert not np.allclose(scores["plain"], scores["fragments"])
    auc = float(probe.scam_line("f", dataset.labels[rows], scores["fragments"]).split("|")[2])
    assert auc > 0.75


def test_dense_columns_reach_each_fold_aligned_with_their_rows(
    quoted_dataset: Dataset, rules_only_analyzer: Analyzer
) -> None:
    # A column that is the label itself: read by the right rows, it ranks every scam first; a
    # block misaligned with the training or held-out rows would not.
    label_column = (quoted_dataset.labels == "scam").astype(float)[:, None] * 10.0
    widths: list[tuple[int, int]] = []

    def recording(train, labels, weights, test):  # type: ignore[no-untyped-def]
        widths.append((train.shape[1], test.shape[1]))
        return probe.scam_scorer(4.0)(train, labels, weights, test)

    folds = grouped_folds(quoted_dataset)
    rule_ids = [f"rule:{rule.id}" for rule in rules_only_analyzer.ruleset.rules]
    rows, scores = probe.out_of_fold(
        quoted_dataset,
        rule_ids,
        folds,
        {"plain": recording, "told": probe.scam_scorer(4.0)},
        lambda e: True,
        dense={"told": label_column},
    )
    assert all(train == test for train, test in widths)
    labels = quoted_dataset.labels[rows]
    told = float(probe.scam_line("t", labels, scores["told"]).split("|")[2])
    plain = float(probe.scam_line("p", labels, scores["plain"]).split("|")[2])
    assert told > 0.99 > plain


def test_nb_ratios_favour_what_the_positive_rows_hold() -> None:
    matrix = sparse.csr_matrix(np.array([[1, 0, 1], [1, 0, 0], [0, 1, 1], [0, 1, 0]], float))
    positive = np.array([True, True, False, False])
    ratios = probe.nb_ratios(matrix, positive, np.ones(4)).diagonal()
    assert ratios[0] > 0 > ratios[1]
    assert ratios[2] == pytest.approx(0.0)


def test_abusive_line_reads_recall_where_few_scams_pass_the_cut() -> None:
    labels = np.array(["abusive"] * 4 + ["scam"] * 100)
    scores = np.concatenate([[5.0, 4.0, 0.5, -1.0], np.linspace(-3.0, 1.0, 100)])
    cells = probe.abusive_line("m", labels, scores).split("|")
    # 2 % of the scams (the two highest, ~0.96 and 1.0) may pass: of the abusive, 5.0 and 4.0 do.
    assert cells[3].strip().split(" / ")[0] == "50.0%"


def test_script_matches_come_from_other_folds_and_looser_thresholds_only_add(
    quoted_dataset: Dataset,
) -> None:
    # Ten long scams published again by another page: a script reused across sources.
    scams = [
        i
        for i, e in enumerate(quoted_dataset.examples)
        if e.label == "scam" and len(quoted_dataset.norm_texts[i]) > 40
    ][:10]
    copies = [
        dataclasses.replace(
            quoted_dataset.examples[i],
            uid=f"copy-{k}",
            meta={"source": f"https://copy.example/{k}", "publisher": f"copy {k}", "date": "2025"},
        )
        for k, i in enumerate(scams)
    ]
    dataset = Dataset(
        [*quoted_dataset.examples, *copies],
        [*quoted_dataset.inputs, *(quoted_dataset.inputs[i] for i in scams)],
        quoted_dataset.stats,
        [*quoted_dataset.norm_texts, *(quoted_dataset.norm_texts[i] for i in scams)],
    )
    folds = grouped_folds(dataset)
    fold_of = {i: number for number, fold in enumerate(folds) for i in fold}
    original_of = {len(quoted_dataset.examples) + k: i for k, i in enumerate(scams)}
    apart = {copy for copy, original in original_of.items() if fold_of[copy] != fold_of[original]}
    assert apart  # hashed folds put most copies away from their original

    matched = probe.script_matches(dataset, folds)
    shipped, *looser = probe.SCRIPT_THRESHOLDS
    assert shipped == SHIPPED_THRESHOLDS
    # Every copy in another fold than its original matches it, and so does the original.
    assert apart <= set(matched[shipped])
    assert {original_of[copy] for copy in apart} <= set(matched[shipped])
    for each in looser:
        assert set(matched[shipped]) <= set(matched[each])
    labels = {dataset.examples[i].label for rows in matched.values() for i in rows}
    assert labels == {"scam"}
    lines = probe.script_lines(dataset, matched, {f"copy-{k}": True for k in range(10)})
    assert len(lines) == 2 + len(probe.SCRIPT_THRESHOLDS)
