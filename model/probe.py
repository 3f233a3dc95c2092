"""Model-only probes: learner variants ranked cheaply on the grouped real folds.

    python -m model.probe [--c 4 16] [--nb] [--fragments 0.5 1] [--sentence-embedding 0.5]
                          [--abusive-vs-scam]

`python -m model.real_eval` measures the full verdict (rules, numbers, known scripts, model,
calibration) and takes ~25 minutes a run. A probe fits only the linear model, one per grouped
fold (the same hash folds and source groups as real_eval), on the shipped candidate's features
and sample weights, and scores the held-out real rows: a few minutes a variant. It ranks ideas
before a full run; only the full verdict decides what ships (model/HISTORY.md keeps both).

- scam against the rest (default): P(scam) of a binary logistic regression; prints the AUC of
  scams against genuine rows and the scams caught at the cuts that flag 3 / 5 / 10 % of them.
  `--nb` adds the variant with each feature scaled by its naive-Bayes log-count ratio (NBSVM);
  `--fragments SHARE ...` variants that also learn from the training rows' sentence fragments
  (fit.FRAGMENT_SHARE; the plain variant learns from whole rows only);
  `--sentence-embedding SCALE ...` variants that also read the multilingual sentence embedding
  of each row's text as pasted (Google's USE multilingual v3, as build_dataset adds it), scaled,
  beside the shipped features: a meaning-level signal that char n-grams lack (a paraphrase shares
  few n-grams).
- `--abusive-vs-scam`: on the real scam and abusive rows only, the multinomial model's
  log(p_abusive / p_scam) against a binary model fitted on scam and abusive rows alone; prints
  the AUC and the abusive rows found when 2 / 4 / 6 % of scams may be read as abusive.
- `--known-scripts`: each fold's script index built as training builds it (fit.known_scripts on
  the other folds' rows), held-out real rows matched at the shipped thresholds and looser ones;
  with `--flags DUMP` (a `real_eval --dump` file) it says which matched scams the verdict
  already flags, i.e. what a threshold would add.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from model import data
from model.fit import (
    CANDIDATES,
    REAL_SHARE,
    SHIPPED_CANDIDATE,
    Dataset,
    build_dataset,
    fragment_weights,
    known_scripts,
    load_analyzer,
    sample_weights,
    structured_feature_names,
)
from model.real_eval import flagged, grouped_folds, read_dump, tradeoff
from service.engine.known_scripts import SHIPPED_THRESHOLDS, Thresholds
from service.engine.model import ModelInput, structured_matrix

log = logging.getLogger("model.probe")

ABUSIVE_SCAM_RATES = (0.02, 0.04, 0.06)
# The shipped known-script thresholds, then looser ones (shingles, message and script shares).
SCRIPT_THRESHOLDS = (
    SHIPPED_THRESHOLDS,
    Thresholds(8, 0.4, 0.6),
    Thresholds(6, 0.4, 0.6),
    Thresholds(5, 0.35, 0.5),
)
MAX_ITER = 3000

# (training matrix, its labels, its weights, held-out matrix) -> a score per held-out row.
Scorer = Callable[[Any, np.ndarray, np.ndarray, Any], np.ndarray]


def fold_features(
    dataset: Dataset, rule_ids: Sequence[str], train: Sequence[int]
) -> Callable[[Sequence[ModelInput]], Any]:
    """The shipped features as fitted on the training rows: the candidate's TF-IDF fitted on
    their texts beside one column per rule and number fact (as fit_model builds them, before
    calibration); returns what turns model inputs into that matrix."""
    vectorizer = CANDIDATES[SHIPPED_CANDIDATE].vectorizer()
    vectorizer.fit([dataset.inputs[i].text for i in train])
    names = structured_feature_names([dataset.inputs[i] for i in train], rule_ids)
    columns = {name: k for k, name in enumerate(names)}

    def matrix(inputs: Sequence[ModelInput]) -> Any:
        texts = vectorizer.transform([item.text for item in inputs])
        return sparse.hstack([texts, structured_matrix(inputs, columns)], format="csr")

    return matrix


def fold_matrices(
    dataset: Dataset, rule_ids: Sequence[str], train: Sequence[int], test: Sequence[int]
) -> tuple[Any, Any, Callable[[Sequence[ModelInput]], Any]]:
    """The shipped features of the training and held-out rows (`fold_features`), and the
    transform itself for any other inputs of the fold (its training rows' fragments)."""
    matrix = fold_features(dataset, rule_ids, train)
    return (
        matrix([dataset.inputs[i] for i in train]),
        matrix([dataset.inputs[i] for i in test]),
        matrix,
    )


def nb_ratios(matrix: Any, positive: np.ndarray, weights: np.ndarray, alpha: float = 1.0) -> Any:
    """Each feature's log-count ratio between the positive rows and the rest (Wang & Manning's
    NBSVM, on binarised weighted counts), as a diagonal matrix to scale the features by."""
    present = matrix.copy()
    present.data = (present.data > 0).astype(np.float64)
    weighted = sparse.diags(weights) @ present
    p = alpha + np.asarray(weighted[positive].sum(axis=0)).ravel()
    q = alpha + np.asarray(weighted[~positive].sum(axis=0)).ravel()
    return sparse.diags(np.log((p / p.sum()) / (q / q.sum())))


def scam_scorer(c: float, nb: bool = False) -> Scorer:
    def score(train: Any, labels: np.ndarray, weights: np.ndarray, test: Any) -> np.ndarray:
        scam = labels == "scam"
        if nb:
            scale = nb_ratios(train, scam, weights)
            train, test = train @ scale, test @ scale
        model = LogisticRegression(C=c, max_iter=MAX_ITER).fit(train, scam, sample_weight=weights)
        return model.predict_proba(test)[:, list(model.classes_).index(True)]

    return score


def multinomial_abusive_scorer(c: float) -> Scorer:
    def score(train: Any, labels: np.ndarray, weights: np.ndarray, test: Any) -> np.ndarray:
        model = LogisticRegression(C=c, max_iter=MAX_ITER).fit(train, labels, sample_weight=weights)
        classes = list(model.classes_)
        log_p = model.predict_log_proba(test)
        return log_p[:, classes.index("abusive")] - log_p[:, classes.index("scam")]

    return score


def binary_abusive_scorer(c: float) -> Scorer:
    def score(train: Any, labels: np.ndarray, weights: np.ndarray, test: Any) -> np.ndarray:
        harm = np.isin(labels, ["scam", "abusive"])
        model = LogisticRegression(C=c, max_iter=MAX_ITER, class_weight="balanced")
        model.fit(train[harm], labels[harm] == "abusive", sample_weight=weights[harm])
        return model.decision_function(test)

    return score


def out_of_fold(
    dataset: Dataset,
    rule_ids: Sequence[str],
    folds: Sequence[Sequence[int]],
    scorers: dict[str, Scorer],
    keep: Callable[[data.Example], bool],
    fragment_shares: dict[str, float] | None = None,
    dense: dict[str, np.ndarray] | None = None,
) -> tuple[list[int], dict[str, np.ndarray]]:
    """Every scorer's score of each held-out real row that `keep` accepts, trained on the other
    folds' rows (every source, the shipped weights); one feature build per fold for all.
    `fragment_shares`: scorers that also learn from the sentence fragments of the training rows,
    at this share of each row's weight (as fit_model's fragment_share). `dense`: scorers that
    also read these columns, one row per dataset row (already scaled), beside the features."""
    shares = fragment_shares or {}
    blocks = dense or {}
    labels = dataset.labels
    scores: dict[str, dict[int, float]] = {name: {} for name in scorers}
    for number, test in enumerate(folds, start=1):
        held = set(test)
        train = [i for i in range(len(dataset.examples)) if i not in held]
        judged = [
            i
            for i in test
            if dataset.examples[i].source in data.REAL_SOURCES and keep(dataset.examples[i])
        ]
        started = time.perf_counter()
        train_matrix, test_matrix, transform = fold_matrices(dataset, rule_ids, train, judged)
        weights = sample_weights([dataset.examples[i] for i in train], REAL_SHARE)
        with_fragments = None
        if any(shares.values()):
            own = dataset.subset(train)
            parents = np.asarray(own.fragment_parents, dtype=np.intp)
            with_fragments = (
                sparse.vstack([train_matrix, transform(own.fragment_inputs)], format="csr"),
                np.concatenate([labels[train], labels[train][parents]]),
                parents,
            )
        for name, scorer in scorers.items():
            share = shares.get(name, 0.0)
            if share and with_fragments is not None:
                matrix, fold_labels, parents = with_fragments
                extra = fragment_weights(weights, parents, share)
                fold_weights = np.concatenate([weights, extra])
                values = scorer(matrix, fold_labels, fold_weights, test_matrix)
            elif name in blocks:
                block = blocks[name]
                values = scorer(
                    sparse.hstack([train_matrix, block[train]], format="csr"),
                    labels[train],
                    weights,
                    sparse.hstack([test_matrix, block[judged]], format="csr"),
                )
            else:
                values = scorer(train_matrix, labels[train], weights, test_matrix)
            scores[name].update(zip(judged, values.tolist(), strict=True))
        log.info("fold %d/%d (%.0f s)", number, len(folds), time.perf_counter() - started)
    rows = sorted(next(iter(scores.values())))
    return rows, {name: np.array([by_row[i] for i in rows]) for name, by_row in scores.items()}


def scam_line(name: str, labels: np.ndarray, score: np.ndarray) -> str:
    genuine = np.isin(labels, ["legit", "other"])
    result = tradeoff(score[labels == "scam"], score[genuine])
    cuts = " / ".join(f"{p['scam_flagged']['rate']:.1%}" for p in result["points"])
    return f"| {name} | {result['auc']:.4f} | {cuts} |"


def abusive_line(name: str, labels: np.ndarray, score: np.ndarray) -> str:
    abusive = labels == "abusive"
    auc = roc_auc_score(abusive, score)
    scams = np.sort(score[~abusive])
    found = []
    for share in ABUSIVE_SCAM_RATES:
        # The lowest cut that reads at most `share` of the scams as abusive (scores above it).
        cut = scams[max(0, len(scams) - 1 - int(np.floor(len(scams) * share)))]
        found.append(f"{(score[abusive] > cut).mean():.1%}")
    return f"| {name} | {auc:.4f} | {' / '.join(found)} |"


def script_matches(
    dataset: Dataset,
    folds: Sequence[Sequence[int]],
    thresholds: Sequence[Thresholds] = SCRIPT_THRESHOLDS,
) -> dict[Thresholds, list[int]]:
    """The held-out real rows each set of thresholds matches to a script of the other folds."""
    matched: dict[Thresholds, list[int]] = {each: [] for each in thresholds}
    for number, test in enumerate(folds, start=1):
        held = set(test)
        train = [i for i in range(len(dataset.examples)) if i not in held]
        index = known_scripts(dataset.subset(train))
        for each in thresholds:
            variant = index.with_thresholds(each)
            matched[each] += [
                i
                for i in test
                if dataset.examples[i].source in data.REAL_SOURCES
                and variant.match(dataset.norm_texts[i]) is not None
            ]
        log.info("fold %d/%d: %d scripts", number, len(folds), len(index))
    return matched


def script_lines(
    dataset: Dataset, matched: dict[Thresholds, list[int]], flags: dict[str, bool] | None
) -> list[str]:
    lines = [
        "| shared shingles / message share / script share | scams matched | of them not flagged "
        "by the verdict | abusive matched | genuine matched |",
        "|---|---|---|---|---|",
    ]
    for each, rows in matched.items():
        labels = Counter(dataset.examples[i].label for i in rows)
        unflagged = "–"
        if flags is not None:
            scams = [dataset.examples[i].uid for i in rows if dataset.examples[i].label == "scam"]
            unflagged = str(sum(1 for uid in scams if not flags.get(uid, False)))
        lines.append(
            f"| {each.min_shared} / {each.message_share:g} / {each.script_share:g} | "
            f"{labels['scam']} | {unflagged} | {labels['abusive']} | "
            f"{labels['legit'] + labels['other']} |"
        )
    return lines


def read_flags(path: Path) -> dict[str, bool]:
    """uid -> whether the verdict in a `real_eval --dump` file flags it (scam or high)."""
    return {uid: flagged(row["category"], row["level"]) for uid, row in read_dump(path).items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.probe", description=__doc__)
    parser.add_argument("--c", type=float, nargs="+", default=[4.0, 16.0], help="inverse L2")
    parser.add_argument("--nb", action="store_true", help="also the NB-scaled variant")
    parser.add_argument(
        "--fragments",
        type=float,
        nargs="+",
        metavar="SHARE",
        help="also variants that learn from the training rows' sentence fragments at these "
        "shares of each row's weight (fit.FRAGMENT_SHARE)",
    )
    parser.add_argument(
        "--sentence-embedding",
        type=float,
        nargs="+",
        metavar="SCALE",
        help="also variants that read each row's sentence embedding (the shipped model's) "
        "scaled by SCALE beside the shipped features",
    )
    parser.add_argument("--abusive-vs-scam", action="store_true")
    parser.add_argument("--known-scripts", action="store_true")
    parser.add_argument("--flags", type=Path, help="a real_eval --dump file (--known-scripts)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    analyzer = load_analyzer()
    dataset = build_dataset(analyzer, fragments=bool(args.fragments))
    # Named as fit_model names them, so every rule has its column whether or not it fired.
    rule_ids = [f"rule:{rule.id}" for rule in analyzer.ruleset.rules]
    folds = grouped_folds(dataset)
    if args.known_scripts:
        flags = read_flags(args.flags) if args.flags else None
        print(f"known scripts on {len(folds)} grouped folds (each fold's index from the others)\n")
        print("\n".join(script_lines(dataset, script_matches(dataset, folds), flags)))
        return 0
    if args.abusive_vs_scam:
        scorers: dict[str, Scorer] = {}
        for c in args.c:
            multinomial = multinomial_abusive_scorer(c)
            scorers[f"multinomial, log(p_abusive / p_scam), C={c:g}"] = multinomial
            scorers[f"binary abusive vs scam (balanced), C={c:g}"] = binary_abusive_scorer(c)
        rows, scores = out_of_fold(
            dataset, rule_ids, folds, scorers, lambda e: e.label in {"scam", "abusive"}
        )
        header = "| model | AUC | abusive found at 2 / 4 / 6 % of scams read as abusive |"
        line = abusive_line
    else:
        scorers = {}
        fragment_shares: dict[str, float] = {}
        dense: dict[str, np.ndarray] = {}
        # The text as pasted, not the model's masked text: numbers, links and names are part of
        # what a sentence means (embedding the masked text gained less: AUC 0.9486 against 0.9523
        # at scale 0.5, model/HISTORY.md stop 47).
        embedded = (
            np.array([item.embedding for item in dataset.inputs])
            if args.sentence_embedding
            else None
        )
        for c in args.c:
            scorers[f"scam vs rest, C={c:g}"] = scam_scorer(c)
            if args.nb:
                scorers[f"scam vs rest, NB-scaled, C={c:g}"] = scam_scorer(c, nb=True)
            for share in args.fragments or ():
                name = f"scam vs rest, sentence fragments at {share:g}, C={c:g}"
                scorers[name] = scam_scorer(c)
                fragment_shares[name] = share
            for scale in args.sentence_embedding or ():
                name = f"scam vs rest, sentence embedding at {scale:g}, C={c:g}"
                scorers[name] = scam_scorer(c)
                dense[name] = scale * embedded
        rows, scores = out_of_fold(
            dataset, rule_ids, folds, scorers, lambda e: True, fragment_shares, dense
        )
        header = "| model | AUC | scams caught at 3 / 5 / 10 % of genuine rows flagged |"
        line = scam_line
    labels = dataset.labels[rows]
    print(f"{len(rows)} held-out real rows, {len(folds)} grouped folds (model only)\n")
    print(header)
    print("|---|---|---|")
    for name, score in scores.items():
        print(line(name, labels, score))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
