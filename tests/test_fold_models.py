"""model/real_eval.py FoldModels: a grouped run's fitted folds are reused only while what made
them is the same, so a verdict-level change is measured on the very models a full run fits."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from model.fit import CANDIDATES, Dataset
from model.real_eval import FoldModels, judge
from service.engine.pipeline import Analyzer


def _halves(dataset: Dataset) -> tuple[list[int], list[int]]:
    rows = list(range(len(dataset.examples)))
    return rows[::2], rows[1::2]


def test_a_kept_fold_gives_the_verdicts_its_fit_gave(
    quoted_dataset: Dataset, rules_only_analyzer: Analyzer, tmp_path: Path
) -> None:
    train, test = _halves(quoted_dataset)
    candidate = CANDIDATES["char_lr"]
    first = FoldModels(tmp_path)
    fitted = judge(quoted_dataset, rules_only_analyzer, train, test, candidate, fold_models=first)
    assert (first.fitted, first.reused) == (1, 0)
    assert len(list(tmp_path.glob("fold-*.joblib"))) == 1

    again = FoldModels(tmp_path)
    reused = judge(quoted_dataset, rules_only_analyzer, train, test, candidate, fold_models=again)
    assert (again.fitted, again.reused) == (0, 1)
    assert reused == fitted
    # The kept model is the model a run without the cache fits: same verdicts, same risks.
    assert judge(quoted_dataset, rules_only_analyzer, train, test, candidate) == fitted


def test_other_rows_labels_candidate_weights_or_rules_fit_anew(quoted_dataset: Dataset) -> None:
    train, _ = _halves(quoted_dataset)
    candidate = CANDIDATES["char_lr"]
    subset = quoted_dataset.subset(train)
    key = FoldModels.key(subset, candidate, 0.5, None, 0.0, "rules-1")
    assert FoldModels.key(subset, candidate, 0.5, None, 0.0, "rules-1") == key

    relabelled = list(subset.examples)
    relabelled[0] = dataclasses.replace(
        relabelled[0], label="other" if relabelled[0].label == "scam" else "scam"
    )
    changed = dataclasses.replace(subset, examples=relabelled)
    assert FoldModels.key(changed, candidate, 0.5, None, 0.0, "rules-1") != key
    assert (
        FoldModels.key(quoted_dataset.subset(train[1:]), candidate, 0.5, None, 0.0, "rules-1")
        != key
    )
    assert FoldModels.key(subset, CANDIDATES["char_word_lr"], 0.5, None, 0.0, "rules-1") != key
    assert FoldModels.key(subset, candidate, 0.6, None, 0.0, "rules-1") != key
    assert FoldModels.key(subset, candidate, 0.5, None, 0.0, "rules-2") != key
