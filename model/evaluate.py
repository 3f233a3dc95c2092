"""`make eval`: measure rules-only, model-only and the final verdict on splits that test
generalisation, not memory; print markdown tables and write them to model/reports/eval.md.

    python -m model.evaluate [--quick]

Splits (every one deduplicated first; no choice is tuned on a test split: the regularisation is
picked by CV inside each split's training rows):
- random: stratified 80/20 over all rows.
- fbs_out:<category>: one FBS fraud category never seen in training, tested against held-out
  genuine and other messages.
- corpus_batches: the project corpus's newest batch held out (written after the others).
- no_corpus: trained on public data only, tested on the whole project corpus.

False-positive target (stated, SpamAssassin-style): at most 1 % of genuine notices may reach a
high risk (>= 0.7) and at most 5 % a medium one (>= 0.3).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import opencc
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score
from sklearn.model_selection import train_test_split

from model import data
from model.fit import SEED, Dataset, build_dataset, fit_model, learned_weights, load_analyzer
from service.engine.analysis import Analysis
from service.engine.artifact import ModelError, load_model
from service.engine.pipeline import HIGH_RISK, MEDIUM_RISK, Analyzer, rule_prior_probabilities
from service.engine.schemas import CATEGORIES
from service.paths import MODEL_PATH

log = logging.getLogger("model.evaluate")

REPORT_PATH = Path(__file__).resolve().parent / "reports" / "eval.md"
FPR_TARGETS = (0.01, 0.05)
SHORT_TEXT = 40  # canonical characters
SYSTEMS = ("rules", "model", "final")
_T2S = opencc.OpenCC("t2s")


@dataclass(frozen=True)
class Split:
    name: str
    description: str
    train: list[int]
    test: list[int]


def _strata(dataset: Dataset) -> list[str]:
    return [f"{e.source}|{e.label}" for e in dataset.examples]


def random_split(dataset: Dataset, seed: int = SEED) -> Split:
    index = np.arange(len(dataset.examples))
    train, test = train_test_split(
        index, test_size=0.2, random_state=seed, stratify=_strata(dataset)
    )
    return Split(
        "random", "stratified 80/20 over all deduplicated rows", sorted(train), sorted(test)
    )


def fbs_out_splits(dataset: Dataset, seed: int = SEED) -> list[Split]:
    """Each FBS fraud category unseen in training; negatives come from the random test part."""
    base = random_split(dataset, seed)
    test_negatives = [i for i in base.test if dataset.examples[i].label != "scam"]
    splits = []
    for category in sorted({e.group for e in dataset.examples if e.group.startswith("FR:")}):
        held = [i for i, e in enumerate(dataset.examples) if e.group == category]
        excluded = set(held) | set(test_negatives)
        train = [i for i in range(len(dataset.examples)) if i not in excluded]
        splits.append(
            Split(
                f"fbs_out:{category}",
                f"FBS {category} never seen in training; + held-out non-scam rows",
                train,
                sorted(held + test_negatives),
            )
        )
    return splits


HELD_OUT_BATCHES = 2  # the newest writing batches of the corpus (b7 dialect..., b8 real senders)


def corpus_batch_split(dataset: Dataset) -> Split | None:
    """Hold out the newest writing batches ("b<N>"; call records stay in training)."""
    batches = sorted(
        {e.group for e in dataset.examples if e.source == data.CORPUS and e.group[1:].isdigit()},
        key=lambda b: int(b[1:]),
    )
    if len(batches) <= HELD_OUT_BATCHES:
        return None
    held = set(batches[-HELD_OUT_BATCHES:])
    test = [
        i for i, e in enumerate(dataset.examples) if e.source == data.CORPUS and e.group in held
    ]
    test_set = set(test)
    train = [i for i in range(len(dataset.examples)) if i not in test_set]
    return Split(
        "corpus_batches",
        f"project corpus batches {', '.join(sorted(held))} (newest writing styles) held out from "
        "the model. The rules were revised after these batches were read (misses and false "
        "alarms found while writing them), so rules-only and final figures here are optimistic; "
        "model-only figures are clean",
        train,
        test,
    )


def no_corpus_split(dataset: Dataset) -> Split | None:
    test = [i for i, e in enumerate(dataset.examples) if e.source == data.CORPUS]
    if not test:
        return None
    train = [i for i, e in enumerate(dataset.examples) if e.source != data.CORPUS]
    return Split(
        "no_corpus", "trained on public data only; tested on the whole corpus", train, test
    )


def card_splits(dataset: Dataset) -> list[Split]:
    """The splits `make train` measures for the model card (the rest run in `make eval`)."""
    return [s for s in (random_split(dataset), corpus_batch_split(dataset)) if s is not None]


def all_splits(dataset: Dataset) -> list[Split]:
    splits = [random_split(dataset), *fbs_out_splits(dataset)]
    splits += [s for s in (corpus_batch_split(dataset), no_corpus_split(dataset)) if s]
    return splits


class _Replay(Analyzer):
    """An Analyzer that reuses analyses computed once, so verdicts cost only the model call."""

    def __init__(self, base: Analyzer, model: Any, cache: dict[int, Analysis]) -> None:
        super().__init__(base.directory, base.ruleset, model)
        self._cache = cache

    def analyze(self, record: Any) -> Analysis:
        cached = self._cache.get(id(record))
        return cached if cached is not None else super().analyze(record)


def served_probabilities(model: Any, analyses: Sequence[Analysis]) -> np.ndarray:
    """The model's probabilities as a server reads them (through the cascade, where the model
    has one), one row per analysis in CATEGORIES order."""
    readings = model.predict_many(analyses)
    return np.array([[reading[c] for c in CATEGORIES] for reading in readings])


@dataclass
class SplitResult:
    split: Split
    examples: list[data.Example]
    proba: dict[str, np.ndarray]  # system -> n x 4 (rules prior, model); final is risk only
    category: dict[str, list[str]]
    risk: dict[str, np.ndarray]
    fit_info: dict[str, Any] = field(default_factory=dict)

    @property
    def labels(self) -> np.ndarray:
        return np.array([e.label for e in self.examples])

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "split": self.split.name,
            "description": self.split.description,
            "n_train": len(self.split.train),
            "n_test": len(self.examples),
            "test_labels": _counts(self.labels),
            "C": self.fit_info.get("C"),
            "structured_scale": self.fit_info.get("structured_scale"),
        }
        for system in SYSTEMS:
            out[system] = system_metrics(
                self.labels, self.category[system], self.risk[system], self.proba.get(system)
            )
        out["slices"] = slice_metrics(self)
        out["reliability"] = {
            system: reliability(self.labels == "scam", self.risk[system]) for system in SYSTEMS
        }
        return out


def _counts(values: Sequence[str] | np.ndarray) -> dict[str, int]:
    unique, counts = np.unique(np.asarray(values), return_counts=True)
    return {str(u): int(c) for u, c in zip(unique, counts, strict=True)}


def run_split(split: Split, dataset: Dataset, analyzer: Analyzer) -> SplitResult:
    """Fit on the split's training rows, then judge its test rows with three systems."""
    train = dataset.subset(split.train)
    test = dataset.subset(split.test)
    model, info = fit_model(train, [r.id for r in analyzer.ruleset.rules], analyzer.ruleset.rules)
    records = [e.record for e in test.examples]
    cache = {id(e.record): analyzer.analyze(e.record) for e in test.examples}
    rules_only = _Replay(analyzer, None, cache)
    final = _Replay(analyzer, model, cache)
    rules_verdicts = [rules_only.check(r) for r in records]
    final_verdicts = [final.check(r) for r in records]
    rules_proba = np.array(
        [
            [rule_prior_probabilities(a.signals, a.finance_related)[c] for c in CATEGORIES]
            for a in (cache[id(r)] for r in records)
        ]
    )
    # Model-only judged on what it sees in production: the full features of each analysis (the
    # training rows of FBS had some hidden, see model/fit.py), read as served (the cascade).
    model_proba = served_probabilities(model, [cache[id(r)] for r in records])
    return SplitResult(
        split=split,
        examples=test.examples,
        proba={"rules": rules_proba, "model": model_proba},
        category={
            "rules": [v.category for v in rules_verdicts],
            "model": [CATEGORIES[i] for i in model_proba.argmax(axis=1)],
            "final": [v.category for v in final_verdicts],
        },
        risk={
            "rules": np.array([v.risk for v in rules_verdicts]),
            "model": model_proba[:, CATEGORIES.index("scam")],
            "final": np.array([v.risk for v in final_verdicts]),
        },
        fit_info=info,
    )


# ---------------------------------------------------------------------------------------------
# Metrics


def recall_at_fpr(scam_scores: np.ndarray, genuine_scores: np.ndarray, fpr: float) -> float | None:
    """Scam recall when the threshold lets at most `fpr` of genuine notices through as scam."""
    if len(scam_scores) == 0 or len(genuine_scores) < 1 / fpr:
        return None
    allowed = int(np.floor(fpr * len(genuine_scores)))
    ordered = np.sort(genuine_scores)[::-1]
    threshold = ordered[allowed] if allowed < len(ordered) else -np.inf
    return float(np.mean(scam_scores > threshold))


def system_metrics(
    labels: np.ndarray, predicted: Sequence[str], risk: np.ndarray, proba: np.ndarray | None
) -> dict[str, Any]:
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, list(predicted), labels=list(CATEGORIES), zero_division=0
    )
    per_category = {
        c: {
            "precision": round(float(p), 3),
            "recall": round(float(r), 3),
            "f1": round(float(f), 3),
            "support": int(s),
        }
        for c, p, r, f, s in zip(CATEGORIES, precision, recall, f1, support, strict=True)
    }
    present = [c for c in CATEGORIES if per_category[c]["support"]]
    is_scam = labels == "scam"
    genuine = labels == "legit"
    out: dict[str, Any] = {
        "per_category": per_category,
        "macro_f1": round(float(np.mean([per_category[c]["f1"] for c in present])), 3)
        if present
        else None,
        "accuracy": round(float(np.mean(np.asarray(predicted) == labels)), 3),
        "scam_auc": round(float(roc_auc_score(is_scam, risk)), 4)
        if 0 < is_scam.sum() < len(labels)
        else None,
        "scam_brier": round(float(np.mean((risk - is_scam) ** 2)), 4),
        "genuine_flagged": {
            f"risk>={t}": round(float(np.mean(risk[genuine] >= t)), 4) if genuine.any() else None
            for t in (MEDIUM_RISK, 0.5, HIGH_RISK)
        },
        "scam_recall_at": {
            f"risk>={t}": round(float(np.mean(risk[is_scam] >= t)), 4) if is_scam.any() else None
            for t in (MEDIUM_RISK, 0.5, HIGH_RISK)
        },
    }
    for target in FPR_TARGETS:
        value = recall_at_fpr(risk[is_scam], risk[genuine], target)
        out[f"scam_recall_at_{round(target * 100)}pct_fpr"] = (
            round(value, 4) if value is not None else None
        )
    if proba is not None:
        onehot = np.array([[label == c for c in CATEGORIES] for label in labels], dtype=float)
        out["brier_multiclass"] = round(float(np.mean(np.sum((proba - onehot) ** 2, axis=1))), 4)
    return out


def reliability(truth: np.ndarray, risk: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Mean predicted scam risk vs observed scam share, per risk bin."""
    rows = []
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(risk, edges[1:-1]), 0, bins - 1)
    for b in range(bins):
        mask = which == b
        if mask.any():
            rows.append(
                {
                    "bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}",
                    "n": int(mask.sum()),
                    "mean_risk": round(float(risk[mask].mean()), 3),
                    "scam_share": round(float(truth[mask].mean()), 3),
                }
            )
    return rows


def is_traditional(example: data.Example) -> bool:
    if example.meta.get("variant") == "traditional":
        return True
    text = example.record.text or ""
    return bool(text) and _T2S.convert(text) != text


def slices(example: data.Example) -> list[str]:
    """The slices one example belongs to."""
    names = []
    if example.record.kind == "call" and not (example.record.text or "").strip():
        names.append("call, no text")
    elif len(example.canonical) <= SHORT_TEXT:
        names.append(f"short text (<= {SHORT_TEXT} chars)")
    if is_traditional(example):
        names.append("Traditional characters")
    if example.meta.get("variant") == "obfuscated":
        names.append("obfuscated")
    if example.meta.get("brand"):
        names.append(f"brand:{example.meta['brand']}")
    names.append(f"source:{example.source}")
    return names


def slice_metrics(result: SplitResult) -> dict[str, dict[str, Any]]:
    members: dict[str, list[int]] = {}
    for index, example in enumerate(result.examples):
        for name in slices(example):
            members.setdefault(name, []).append(index)
    labels = result.labels
    out = {}
    for name in sorted(members):
        rows = np.array(members[name])
        entry: dict[str, Any] = {"n": len(rows), "labels": _counts(labels[rows])}
        for system in SYSTEMS:
            predicted = np.asarray(result.category[system])[rows]
            entry[f"{system}_accuracy"] = round(float(np.mean(predicted == labels[rows])), 3)
        scam_rows = rows[labels[rows] == "scam"]
        if len(scam_rows):
            entry["final_scam_recall"] = round(
                float(np.mean(np.asarray(result.category["final"])[scam_rows] == "scam")), 3
            )
        out[name] = entry
    return out


def rule_hit_table(
    dataset: Dataset,
    select: Callable[[data.Example], str | None],
    weights: dict[str, Any],
    handset: set[str],
    rules: Sequence[Any],
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """SpamAssassin-style: share of scam / genuine / other rows each rule fires on, and S/O."""
    groups: dict[str, list[int]] = {"scam": [], "genuine": [], "other": []}
    for index, example in enumerate(dataset.examples):
        group = select(example)
        if group in groups:
            groups[group].append(index)
    sizes = {g: len(v) for g, v in groups.items()}
    rows = []
    for rule in rules:
        name = f"rule:{rule.id}"
        share = {}
        for group, members in groups.items():
            hits = sum(1 for i in members if name in dataset.inputs[i].features)
            share[group] = hits / len(members) if members else 0.0
        denominator = share["scam"] + share["genuine"]
        learned = weights.get(name, {})
        rows.append(
            {
                "rule": rule.id,
                "category": rule.category,
                "yaml_weight": rule.weight,
                "scam%": round(100 * share["scam"], 2),
                "genuine%": round(100 * share["genuine"], 2),
                "other%": round(100 * share["other"], 2),
                "S/O": round(share["scam"] / denominator, 3) if denominator else None,
                "learned": learned.get(rule.category),
                "weight_source": "hand-set (thin data)" if rule.id in handset else "learned",
            }
        )
    return rows, sizes


def corpus_group(example: data.Example) -> str | None:
    if example.source != data.CORPUS:
        return None
    return {"scam": "scam", "legit": "genuine"}.get(example.label, "other")


def public_group(example: data.Example) -> str | None:
    """FBS fraud vs mudou genuine (label 0) messages; the rest of the public data is `other`."""
    if example.source == "fbs":
        return "scam" if example.label == "scam" else "other"
    if example.source == "mudou":
        return "genuine" if example.group == "mudou:ham" else "other"
    return None


# ---------------------------------------------------------------------------------------------
# Markdown


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def split_markdown(summary: dict[str, Any]) -> str:
    parts = [
        f"### Split `{summary['split']}`",
        f"{summary['description']}. Train {summary['n_train']} rows, test {summary['n_test']} "
        f"({', '.join(f'{k} {v}' for k, v in summary['test_labels'].items())}); "
        f"C = {summary['C']}, structured scale {summary.get('structured_scale')}.",
        "",
    ]
    rows = []
    for category in CATEGORIES:
        row: list[Any] = [category]
        for system in SYSTEMS:
            m = summary[system]["per_category"][category]
            row += [m["precision"], m["recall"], m["f1"]]
        row.append(summary["model"]["per_category"][category]["support"])
        rows.append(row)
    headers = ["category"] + [f"{s} {m}" for s in SYSTEMS for m in ("P", "R", "F1")] + ["n"]
    parts.append(table(headers, rows))
    parts.append("")
    score_rows = []
    for key, label in (
        ("macro_f1", "macro F1"),
        ("accuracy", "accuracy"),
        ("scam_auc", "scam ROC-AUC"),
        ("scam_recall_at_1pct_fpr", "scam recall @ 1 % genuine flagged"),
        ("scam_recall_at_5pct_fpr", "scam recall @ 5 % genuine flagged"),
        ("scam_brier", "Brier (scam vs rest)"),
        ("brier_multiclass", "Brier (4 classes)"),
    ):
        score_rows.append([label] + [summary[s].get(key) for s in SYSTEMS])
    for threshold in (f"risk>={MEDIUM_RISK}", f"risk>={HIGH_RISK}"):
        score_rows.append(
            [f"genuine flagged at {threshold}"]
            + [summary[s]["genuine_flagged"][threshold] for s in SYSTEMS]
        )
        score_rows.append(
            [f"scam caught at {threshold}"]
            + [summary[s]["scam_recall_at"][threshold] for s in SYSTEMS]
        )
    parts.append(table(["measure", *SYSTEMS], score_rows))
    parts.append("")
    slice_rows = [
        [
            name,
            s["n"],
            s["rules_accuracy"],
            s["model_accuracy"],
            s["final_accuracy"],
            s.get("final_scam_recall"),
        ]
        for name, s in summary["slices"].items()
    ]
    parts.append(
        table(
            ["slice", "n", "rules acc", "model acc", "final acc", "final scam recall"], slice_rows
        )
    )
    parts.append("")
    parts.append("Reliability of the final scam risk:")
    parts.append("")
    parts.append(
        table(
            ["risk bin", "n", "mean risk", "observed scam share"],
            [
                [r["bin"], r["n"], r["mean_risk"], r["scam_share"]]
                for r in summary["reliability"]["final"]
            ],
        )
    )
    return "\n".join(parts)


def rule_table_markdown(title: str, rows: list[dict[str, Any]], sizes: dict[str, int]) -> str:
    header = (
        f"#### {title}\n\nRows: scam {sizes['scam']}, genuine {sizes['genuine']}, other "
        f"{sizes['other']}. S/O = scam% / (scam% + genuine%). `learned` = coefficient of the "
        "rule's feature toward its own category in the shipped model.\n"
    )
    keys = [
        "rule",
        "category",
        "scam%",
        "genuine%",
        "other%",
        "S/O",
        "yaml_weight",
        "learned",
        "weight_source",
    ]
    return header + "\n" + table(keys, [[row[k] for k in keys] for row in rows])


def main(argv: Sequence[str] | None = None) -> int:

    parser = argparse.ArgumentParser(prog="python -m model.evaluate", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="random split only")
    parser.add_argument("--out", type=Path, default=REPORT_PATH)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    analyzer = load_analyzer()
    dataset = build_dataset(analyzer)
    splits = [random_split(dataset)] if args.quick else all_splits(dataset)
    sections = [
        "# dunscan model evaluation",
        "",
        "Generated by `make eval` (`python -m model.evaluate`). Systems: **rules** = rule and "
        "number signals with hand-set weights (the pipeline without a model); **model** = the "
        "text model's own argmax; **final** = the full verdict (model + fail-closed rules).",
        "",
        f"False-positive target: at most 1 % of genuine notices at risk >= {HIGH_RISK} (high), at "
        f"most 5 % at risk >= {MEDIUM_RISK} (medium).",
        "",
        f"Data after dedup: {len(dataset.examples)} rows {dataset.stats}; labels "
        f"{_counts(dataset.labels)}.",
        "",
    ]
    summaries = []
    for split in splits:
        log.info("split %s: train %d, test %d", split.name, len(split.train), len(split.test))
        summary = run_split(split, dataset, analyzer).summary()
        summaries.append(summary)
        sections += [split_markdown(summary), ""]
    sections.append(overview_markdown(summaries))
    sections.append("")

    try:
        shipped = load_model(MODEL_PATH)
    except ModelError as error:
        sections.append(f"Shipped model not loadable ({error}); rule weights not shown.")
        shipped = None
    if shipped is not None:
        weights = learned_weights(shipped)
        handset = {n.removeprefix("rule:") for n in shipped.handset}
        sections += [f"## Per-rule hits (shipped model {shipped.version})", ""]
        for title, select in (
            ("Project corpus", corpus_group),
            ("Public data: FBS fraud vs mudou genuine", public_group),
        ):
            rows, sizes = rule_hit_table(dataset, select, weights, handset, analyzer.ruleset.rules)
            sections += [rule_table_markdown(title, rows, sizes), ""]
        sections += [number_weights_markdown(weights), ""]
        sections += [uci_markdown(shipped, analyzer), ""]
    report = "\n".join(sections)
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report + "\n", encoding="utf-8")
    return 0


def overview_markdown(summaries: list[dict[str, Any]]) -> str:
    rows = []
    for s in summaries:
        for system in SYSTEMS:
            m = s[system]
            rows.append(
                [
                    s["split"],
                    system,
                    m["macro_f1"],
                    m["per_category"]["scam"]["f1"],
                    m["scam_auc"],
                    m["scam_recall_at_1pct_fpr"],
                    m["scam_recall_at_5pct_fpr"],
                    m["scam_brier"],
                ]
            )
    return "## Overview\n\n" + table(
        [
            "split",
            "system",
            "macro F1",
            "scam F1",
            "scam AUC",
            "recall@1%FPR",
            "recall@5%FPR",
            "Brier (scam)",
        ],
        rows,
    )


def number_weights_markdown(weights: dict[str, dict[str, float]]) -> str:
    rows = [
        [name, *(values.get(c) for c in CATEGORIES)]
        for name, values in weights.items()
        if not name.startswith("rule:")
    ]
    return "## Learned weights of number and record features (per category)\n\n" + table(
        ["feature", *CATEGORIES], rows
    )


def uci_markdown(model: Any, analyzer: Analyzer) -> str:
    """What the shipped model makes of the English UCI SMS it never trained on: the report half
    (data.uci_half), ham and spam."""
    try:
        examples = data.load_uci(data.DATA_DIR, "report")
    except OSError as error:
        return f"## UCI SMS (English)\n\nnot available ({error})"
    groups = np.array([e.group for e in examples])
    proba = served_probabilities(model, [analyzer.analyze(e.record) for e in examples])
    rows = []
    for group in sorted(set(groups.tolist())):
        matrix = proba[groups == group]
        shares = np.bincount(matrix.argmax(axis=1), minlength=len(CATEGORIES)) / len(matrix)
        rows.append([group, len(matrix), *(round(float(x), 3) for x in shares)])
    return (
        "## UCI SMS Spam (English): the half not trained on\n\nShare of messages the model "
        "puts in each category. The model trains on the ham of the other half (everyday English "
        "SMS -> other); the spam (premium-rate prizes mixed with plain ads) is never trained on."
        "\n\n" + table(["group", "n", *CATEGORIES], rows)
    )


if __name__ == "__main__":
    sys.exit(main())
