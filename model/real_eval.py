"""The headline: dunscan's verdict on REAL messages, with no source on both sides of a split.

    python -m model.real_eval [--candidates char_lr,char_word_lr,char_svm] [--ablation]
                              [--folds 5] [--out model/reports/real.md]
                              [--fold-models DIR] [--dump RUN.jsonl]

Real rows are model/real/*.jsonl (harvested, each with its source) and ../shared/data/real_quoted.
They are grouped by source (rows sharing a page, a repository or a publisher are one group,
`data.source_groups`) and dealt into folds by a hash of the group: every real row is judged by a
model, a known-script index and a calibration that never saw its source. The synthetic corpus and
the public sets are always in training (they are never what is measured here).

What is measured is the full verdict (rules + numbers + known scripts + model), as `dunscan score`
gives it, on the text as a person pastes it (with the sender only where the source shows it):

- scam flagged: category scam, or level high;
- genuine flagged: a legit or other row whose verdict is scam or high;
- abusive recall: category abusive; abusive warned: abusive, scam or high.

Intervals are 95 % Wilson intervals over rows (rows within a group are not independent, so
they are on the narrow side). Also reported: real_quoted held out whole (trained without it and
without any harvested row sharing one of its sources), candidates compared on the same folds,
and an ablation of what each training source adds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import binomtest
from sklearn.metrics import roc_auc_score

from model import data
from model.evaluate import _Replay, is_traditional, table
from model.fit import (
    CANDIDATES,
    FRAGMENT_SHARE,
    PINNED_FLAG,
    REAL_SHARE,
    SEED,
    SHIPPED_CANDIDATE,
    Candidate,
    Dataset,
    build_dataset,
    fit_model,
    load_analyzer,
    pinned_environment,
)
from model.real_corpus import fraud_type_of
from service.engine.pipeline import HIGH_RISK, Analyzer
from service.engine.sentence import encoder_id

log = logging.getLogger("model.real_eval")

REPORT_PATH = Path(__file__).resolve().parent / "reports" / "real.md"
FOLDS = 5
TARGETS = {"scam_flagged": 0.90, "genuine_flagged": 0.03, "abusive_recall": 0.80}
# Training-source ablations: which sources the model (and the known-script index) may learn from.
ABLATIONS = {
    "no real (synthetic corpus + FBS/mudou/UCI ham): before this work": frozenset(
        {data.CORPUS, "mudou", "fbs", data.UCI}
    ),
    "real only": frozenset(data.REAL_SOURCES),
    "real + synthetic corpus": frozenset({*data.REAL_SOURCES, data.CORPUS}),
    "real + FBS/mudou/UCI ham": frozenset({*data.REAL_SOURCES, "mudou", "fbs", data.UCI}),
    "real + corpus + FBS/mudou/UCI ham (shipped sources)": data.ALL_SOURCES,
    "shipped sources + ChineseHarm": frozenset({*data.ALL_SOURCES, data.CHINESEHARM}),
}


@dataclass
class Judged:
    """Out-of-fold verdicts for the real rows of a dataset (aligned with `rows`)."""

    rows: list[int]
    category: list[str]
    level: list[str]
    risk: list[float]
    script_hits: list[bool]
    reasons: list[list[str]]
    # The verdict's coverage note: the text reads as mostly not Chinese.
    foreign: list[bool]
    # Decided by the cascade's n-gram-only first reader alone, the sentence embedding never
    # computed (service/engine/model.py read_many); False for a model without a cascade.
    first_reader: list[bool]


def wilson(successes: int, total: int) -> tuple[float, float] | None:
    if total == 0:
        return None
    interval = binomtest(successes, total).proportion_ci(confidence_level=0.95, method="wilson")
    return float(interval.low), float(interval.high)


def rate(successes: int, total: int) -> dict[str, Any]:
    interval = wilson(successes, total)
    return {
        "k": successes,
        "n": total,
        "rate": round(successes / total, 4) if total else None,
        "ci95": [round(interval[0], 4), round(interval[1], 4)] if interval else None,
    }


def fmt_rate(entry: dict[str, Any]) -> str:
    if not entry or entry["n"] == 0:
        return "–"
    low, high = entry["ci95"]
    return f"{entry['rate']:.1%} ({entry['k']}/{entry['n']}; {low:.0%}–{high:.0%})"


def real_rows(dataset: Dataset) -> list[int]:
    return [i for i, e in enumerate(dataset.examples) if e.source in data.REAL_SOURCES]


# Real everyday SMS (mudou's genuine messages, 2013-15) held out beside the real rows: the real
# corpus is scam-heavy and has few everyday messages, so a model can look good on it while
# flagging a person's ordinary texts. This guard measures that; a second one does for English
# (UCI ham of the training half: the real corpus's English rows are mostly scams).
GUARD_ROWS = 2500
ENGLISH_GUARD_ROWS = 1000


def guard_rows(dataset: Dataset, seed: int = SEED) -> list[int]:
    rng = np.random.default_rng(seed)
    picked: list[int] = []
    for source, group, size in (
        ("mudou", "mudou:ham", GUARD_ROWS),
        (data.UCI, "uci:ham", ENGLISH_GUARD_ROWS),
    ):
        genuine = [
            i for i, e in enumerate(dataset.examples) if e.source == source and e.group == group
        ]
        if genuine:
            picked += rng.choice(genuine, size=min(size, len(genuine)), replace=False).tolist()
    return sorted(picked)


def fold_of_group(group: str, folds: int, seed: int) -> int:
    """The fold a source group is judged in: a hash of the group and the seed, so a group keeps
    its fold when other groups come or go and one stop's figures compare with the last one's
    on the same split of the sources they share (a shuffled split redraws every fold)."""
    digest = hashlib.blake2b(f"{seed}:{group}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % folds


def grouped_folds(dataset: Dataset, folds: int = FOLDS, seed: int = SEED) -> list[list[int]]:
    """Test rows of each fold: real rows dealt out whole by source group (`fold_of_group`), plus
    a share of the guard rows (everyday genuine SMS)."""
    groups = data.source_groups(dataset.examples)
    tests: list[list[int]] = [[] for _ in range(folds)]
    for row in real_rows(dataset):
        tests[fold_of_group(groups[row], folds, seed)].append(row)
    for position, row in enumerate(guard_rows(dataset, seed)):
        tests[position % folds].append(row)
    return tests


# The code whose change changes what a fit makes from the same rows: a fold model kept by
# FoldModels is reused only while these files are as they were.
_ROOT = Path(__file__).resolve().parents[1]
FIT_CODE = tuple(
    _ROOT / name
    for name in (
        "model/fit.py",
        "model/data.py",
        "service/engine/model.py",
        "service/engine/neighbours.py",
        "service/engine/known_scripts.py",
    )
)


class FoldModels:
    """Fold models kept on disk between runs (`--fold-models DIR`).

    Fitting the five grouped folds is most of a run's 40 minutes; the verdict on the held-out
    rows is three. A change that acts after the model has read a message (the pipeline's caps,
    categories and evidence, the advice) is then measured on the same fitted folds in minutes.
    A fold's model is reused only when everything that made it is the same: its training rows
    (labels, sources, the model inputs that rules, numbers and normalisation made of them), the
    candidate, the training weights, the sentence encoder and the fitting code (FIT_CODE);
    otherwise the fold is fitted anew and kept under its own key.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.reused = 0
        self.fitted = 0

    @staticmethod
    def key(
        subset: Dataset,
        candidate: Candidate,
        real_share: float,
        source_power: float | None,
        fragment_share: float,
        rules_version: str,
    ) -> str:
        """What a fit of `subset` depends on, hashed (20 hex digits name the kept file)."""
        digest = hashlib.sha256()
        # The embeddings a fit reads are a function of the texts and the encoder; the rule
        # files give the structured columns, a rule that never fires included.
        setting = (candidate, real_share, source_power, fragment_share, encoder_id(), rules_version)
        digest.update(repr(setting).encode())
        for path in FIT_CODE:
            digest.update(path.read_bytes())
        items = zip(subset.examples, subset.inputs, strict=True)
        for example, item in items:
            digest.update(
                json.dumps(
                    [
                        example.uid,
                        example.label,
                        example.source,
                        item.text,
                        sorted(item.features.items()),
                    ],
                    ensure_ascii=False,
                ).encode()
            )
        for parent, item in zip(subset.fragment_parents, subset.fragment_inputs, strict=True):
            digest.update(json.dumps([parent, item.text], ensure_ascii=False).encode())
        return digest.hexdigest()[:20]

    def model(self, key: str, fit: Callable[[], Any]) -> Any:
        """The model kept under `key`, or `fit()`'s, kept there for the next run."""
        import joblib

        path = self.directory / f"fold-{key}.joblib"
        if path.is_file():
            self.reused += 1
            return joblib.load(path)
        model = fit()
        self.directory.mkdir(parents=True, exist_ok=True)
        staging = path.with_suffix(f".{os.getpid()}.partial")
        joblib.dump(model, staging)
        staging.rename(path)
        self.fitted += 1
        return model


def judge(
    dataset: Dataset,
    analyzer: Analyzer,
    train: Sequence[int],
    test: Sequence[int],
    candidate: Candidate,
    real_share: float = REAL_SHARE,
    source_power: float | None = None,
    fragment_share: float = FRAGMENT_SHARE,
    fold_models: FoldModels | None = None,
) -> Judged:
    """Fit on `train` (or reuse the fit `fold_models` kept of the same rows), then give the
    full verdict on every `test` row."""
    subset = dataset.subset(train)

    def fitted() -> Any:
        model, _ = fit_model(
            subset,
            [r.id for r in analyzer.ruleset.rules],
            analyzer.ruleset.rules,
            candidate=candidate,
            real_share=real_share,
            source_power=source_power,
            fragment_share=fragment_share,
        )
        return model

    if fold_models is None:
        model = fitted()
    else:
        key = FoldModels.key(
            subset, candidate, real_share, source_power, fragment_share, analyzer.ruleset.version
        )
        model = fold_models.model(key, fitted)
    records = [dataset.examples[i].record for i in test]
    cache = {id(r): analyzer.analyze(r) for r in records}
    replay = _Replay(analyzer, model, cache)
    verdicts = [replay.check(r) for r in records]
    readings = model.read_many([cache[id(r)] for r in records])
    return Judged(
        rows=list(test),
        category=[v.category for v in verdicts],
        level=[v.level for v in verdicts],
        risk=[v.risk for v in verdicts],
        script_hits=[any(s.id == "known_script" for s in v.signals) for v in verdicts],
        reasons=[[s.id for s in v.signals if s.id != "model"] for v in verdicts],
        foreign=[v.coverage is not None for v in verdicts],
        first_reader=[reading.fast for reading in readings],
    )


def merge(parts: Sequence[Judged]) -> Judged:
    return Judged(
        *(
            [value for part in parts for value in getattr(part, name.name)]
            for name in fields(Judged)
        )
    )


def take(judged: Judged, positions: Sequence[int]) -> Judged:
    """The verdicts at these positions, every field alike."""
    return Judged(*([getattr(judged, f.name)[n] for n in positions] for f in fields(Judged)))


def cross_validate(
    dataset: Dataset,
    analyzer: Analyzer,
    folds: list[list[int]],
    candidate: Candidate,
    sources: frozenset[str] = data.ALL_SOURCES,
    real_share: float = REAL_SHARE,
    train_without: frozenset[str] = frozenset(),
    source_power: float | None = None,
    fragment_share: float = FRAGMENT_SHARE,
    fold_models: FoldModels | None = None,
) -> Judged:
    """Out-of-fold verdicts for every real row; training rows limited to `sources` and never
    from the real batches in `train_without` (those are still judged where they are held out)."""
    parts = []
    for number, test in enumerate(folds, start=1):
        held = set(test)
        train = [
            i
            for i, e in enumerate(dataset.examples)
            if i not in held and e.source in sources and batch_of(e) not in train_without
        ]
        started = time.perf_counter()
        parts.append(
            judge(
                dataset,
                analyzer,
                train,
                test,
                candidate,
                real_share,
                source_power,
                fragment_share,
                fold_models,
            )
        )
        log.info(
            "%s fold %d/%d: train %d, test %d (%.0f s)",
            candidate.name,
            number,
            len(folds),
            len(train),
            len(test),
            time.perf_counter() - started,
        )
    return merge(parts)


def batch_of(example: data.Example) -> str:
    """The model/real batch a real row came from ("real:zh38-0001" -> "zh38"), else ""."""
    if example.source != data.REAL:
        return ""
    return example.uid.split(":", 1)[1].rsplit("-", 1)[0]


def flagged(category: str, level: str) -> bool:
    return category == "scam" or level == "high"


# Shares of genuine rows flagged at which the trade-off table reads the scam recall.
TRADEOFF_GENUINE_RATES = (0.03, 0.05, 0.10)


def tradeoff(scam_risk: Sequence[float], genuine_risk: Sequence[float]) -> dict[str, Any]:
    """How well the risk separates scams from genuine rows, whatever the operating point.

    `auc`: the chance a scam row outranks a genuine one (ties count half). For each rate r in
    TRADEOFF_GENUINE_RATES: the lowest risk cut that flags at most r of the genuine rows, and the
    share of scams at or above it. The verdict's own cut (category and level) is one point on
    this curve; these say whether any other cut of the same risk would meet the targets.
    """
    scams, genuine = np.asarray(scam_risk, float), np.asarray(genuine_risk, float)
    if not len(scams) or not len(genuine):
        return {}
    auc = roc_auc_score(
        np.r_[np.ones(len(scams)), np.zeros(len(genuine))], np.concatenate([scams, genuine])
    )
    cuts = np.unique(np.concatenate([scams, genuine]))
    # Share of genuine rows at or above each cut, from one sort instead of a pass per cut.
    genuine_share = 1.0 - np.searchsorted(np.sort(genuine), cuts, side="left") / len(genuine)
    points = []
    for target in TRADEOFF_GENUINE_RATES:
        allowed = cuts[genuine_share <= target]
        cut = float(allowed.min()) if len(allowed) else float("inf")
        points.append(
            {
                "genuine_rate": target,
                "risk_cut": round(cut, 4),
                "genuine_flagged": rate(int((genuine >= cut).sum()), len(genuine)),
                "scam_flagged": rate(int((scams >= cut).sum()), len(scams)),
            }
        )
    return {"auc": round(float(auc), 4), "points": points}


def summarize(dataset: Dataset, judged: Judged) -> dict[str, Any]:
    """Per label, per category, per fraud type and per slice, with Wilson intervals."""
    guard: dict[str, list[bool]] = {"mudou": [], data.UCI: []}
    guard_first_reader: list[bool] = []
    for i, c, lv, first in zip(
        judged.rows, judged.category, judged.level, judged.first_reader, strict=True
    ):
        source = dataset.examples[i].source
        if source in guard:
            guard[source].append(flagged(c, lv))
            guard_first_reader.append(first)
    keep = [n for n, i in enumerate(judged.rows) if dataset.examples[i].source in data.REAL_SOURCES]
    judged = take(judged, keep)
    examples = [dataset.examples[i] for i in judged.rows]
    labels = [e.label for e in examples]
    is_flagged = [flagged(c, lv) for c, lv in zip(judged.category, judged.level, strict=True)]
    out: dict[str, Any] = {"n": len(examples), "labels": dict(Counter(labels))}

    def share(mask: Sequence[bool], hit: Sequence[bool]) -> dict[str, Any]:
        return rate(sum(h for m, h in zip(mask, hit, strict=True) if m), sum(mask))

    is_scam = [label == "scam" for label in labels]
    is_abusive = [label == "abusive" for label in labels]
    genuine = [label in {"legit", "other"} for label in labels]
    out["scam_flagged"] = share(is_scam, is_flagged)
    out["genuine_flagged"] = share(genuine, is_flagged)
    out["legit_flagged"] = share([label == "legit" for label in labels], is_flagged)
    out["other_flagged"] = share([label == "other" for label in labels], is_flagged)
    out["abusive_recall"] = share(is_abusive, [c == "abusive" for c in judged.category])
    out["abusive_warned"] = share(
        is_abusive,
        [
            c in {"abusive", "scam"} or lv == "high"
            for c, lv in zip(judged.category, judged.level, strict=True)
        ],
    )
    out["scam_high"] = share(is_scam, [lv == "high" for lv in judged.level])
    out["tradeoff"] = tradeoff(
        [r for r, m in zip(judged.risk, is_scam, strict=True) if m],
        [r for r, m in zip(judged.risk, genuine, strict=True) if m],
    )
    out["everyday_flagged"] = rate(sum(guard["mudou"]), len(guard["mudou"]))
    out["english_everyday_flagged"] = rate(sum(guard[data.UCI]), len(guard[data.UCI]))
    # What the cascade saves on rows its models never saw (speed; the verdicts above are the
    # cascade's).
    out["first_reader"] = {
        "real": rate(sum(judged.first_reader), len(judged.first_reader)),
        "scam": share(is_scam, judged.first_reader),
        "genuine": share(genuine, judged.first_reader),
        "abusive": share(is_abusive, judged.first_reader),
        "guard": rate(sum(guard_first_reader), len(guard_first_reader)),
    }
    out["known_script_hits"] = {
        "scam": sum(h for h, s in zip(judged.script_hits, is_scam, strict=True) if s),
        "genuine": sum(h for h, g in zip(judged.script_hits, genuine, strict=True) if g),
    }
    per_category = {}
    for category in ("scam", "abusive", "legit", "other"):
        predicted = [c == category for c in judged.category]
        truth = [label == category for label in labels]
        tp = sum(p and t for p, t in zip(predicted, truth, strict=True))
        precision = rate(tp, sum(predicted))
        recall = rate(tp, sum(truth))
        p, r = precision["rate"] or 0.0, recall["rate"] or 0.0
        per_category[category] = {
            "precision": precision,
            "recall": recall,
            "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
        }
    out["per_category"] = per_category
    present = [c for c in per_category if per_category[c]["recall"]["n"]]
    out["macro_f1"] = round(float(np.mean([per_category[c]["f1"] for c in present])), 4)
    by_type: dict[str, list[int]] = defaultdict(list)
    for index, example in enumerate(examples):
        if example.label == "scam":
            by_type[fraud_type_of(data.fraud_tag(example))].append(index)
    out["scam_by_type"] = {
        tag: rate(sum(is_flagged[i] for i in members), len(members))
        for tag, members in sorted(by_type.items(), key=lambda kv: -len(kv[1]))
    }
    slices: dict[str, list[int]] = defaultdict(list)
    for index, example in enumerate(examples):
        slices[f"source:{example.source}"].append(index)
        slices[f"kind:{example.meta.get('kind') or 'sms'}"].append(index)
        if is_traditional(example):
            slices["Traditional characters"].append(index)
        # As the verdict reads it: text that is mostly not Chinese gets the coverage note.
        foreign = judged.foreign[index]
        slices["language: mostly not Chinese" if foreign else "language: Chinese"].append(index)
    out["slices"] = {}
    for name, members in sorted(slices.items()):
        entry = {"n": len(members)}
        scam_members = [i for i in members if is_scam[i]]
        genuine_members = [i for i in members if genuine[i]]
        entry["scam_flagged"] = rate(sum(is_flagged[i] for i in scam_members), len(scam_members))
        entry["genuine_flagged"] = rate(
            sum(is_flagged[i] for i in genuine_members), len(genuine_members)
        )
        out["slices"][name] = entry
    return out


def real_quoted_split(
    dataset: Dataset, sources: frozenset[str] = data.ALL_SOURCES
) -> tuple[list[int], list[int]]:
    """real_quoted held out whole; harvested rows sharing any of its sources leave training, and
    so do rows from outside `sources` (the ablation loads ChineseHarm, the shipped model not)."""
    groups = data.source_groups(dataset.examples)
    test = [i for i, e in enumerate(dataset.examples) if e.source == data.REAL_QUOTED]
    held_groups = {groups[i] for i in test}
    train = [
        i
        for i, e in enumerate(dataset.examples)
        if e.source != data.REAL_QUOTED
        and e.source in sources
        and not (groups[i] and groups[i] in held_groups)
    ]
    return train, test


def scam_auc(summary: dict[str, Any]) -> float | str:
    """The summary's scam-vs-genuine AUC, or "–" where a split has no scam or genuine rows."""
    return summary["tradeoff"]["auc"] if summary.get("tradeoff") else "–"


def headline_entry(summary: dict[str, Any]) -> dict[str, Any]:
    """The few figures the model card shows, as printable strings."""
    return {
        "n": summary["n"],
        "scam_flagged": fmt_rate(summary["scam_flagged"]),
        "genuine_flagged": fmt_rate(summary["genuine_flagged"]),
        "abusive_recall": fmt_rate(summary["abusive_recall"]),
        "macro_f1": summary["macro_f1"],
        "everyday_flagged": fmt_rate(summary["everyday_flagged"]),
        "english_everyday_flagged": fmt_rate(summary["english_everyday_flagged"]),
        "scam_auc": scam_auc(summary),
    }


def headline_rows(summaries: dict[str, dict[str, Any]]) -> list[list[Any]]:
    return [
        [
            name,
            s["n"],
            fmt_rate(s["scam_flagged"]),
            fmt_rate(s["genuine_flagged"]),
            fmt_rate(s["abusive_recall"]),
            fmt_rate(s["abusive_warned"]),
            s["macro_f1"],
            fmt_rate(s["everyday_flagged"]),
            fmt_rate(s["english_everyday_flagged"]),
            f"{scam_auc(s):.3f}" if s.get("tradeoff") else "–",
        ]
        for name, s in summaries.items()
    ]


HEADLINE_HEADERS = [
    "system / split",
    "real rows",
    "scam flagged (95% CI)",
    "genuine flagged",
    "abusive recall",
    "abusive warned",
    "macro F1",
    "everyday SMS flagged",
    "English everyday flagged",
    "scam vs genuine AUC",
]


def cv_label(candidate: str, folds: int) -> str:
    return f"{candidate}: grouped {folds}-fold CV"


def spread_line(summaries: dict[str, dict[str, Any]]) -> str:
    """Mean and range of each headline rate over the runs."""
    parts = []
    for key, title in (
        ("scam_flagged", "scam flagged"),
        ("genuine_flagged", "genuine flagged"),
        ("abusive_recall", "abusive recall"),
        ("everyday_flagged", "everyday flagged"),
    ):
        values = [100 * s[key]["rate"] for s in summaries.values() if s[key]["rate"] is not None]
        if values:
            parts.append(
                f"{title} {np.mean(values):.1f} % (range {min(values):.1f}–{max(values):.1f})"
            )
    return "Mean over the assignments: " + "; ".join(parts) + "."


def tradeoff_lines(entry: dict[str, Any]) -> list[str]:
    if not entry:
        return []
    rows = [
        [
            f"{p['genuine_rate']:.0%}",
            p["risk_cut"],
            fmt_rate(p["genuine_flagged"]),
            fmt_rate(p["scam_flagged"]),
        ]
        for p in entry["points"]
    ]
    return [
        f"Trade-off of the same verdicts' risk, scam against genuine rows: area under the curve "
        f"{entry['auc']:.3f}. Scams the risk alone would flag at a cut that flags at most a given "
        "share of genuine rows:",
        "",
        table(["genuine rows allowed", "risk cut", "genuine flagged", "scam flagged"], rows),
        "",
    ]


def detail_markdown(title: str, summary: dict[str, Any]) -> str:
    lines = [f"### {title}", ""]
    lines.append(
        table(
            ["category", "precision (95% CI)", "recall (95% CI)", "F1"],
            [
                [c, fmt_rate(v["precision"]), fmt_rate(v["recall"]), v["f1"]]
                for c, v in summary["per_category"].items()
            ],
        )
    )
    lines += [
        "",
        f"Scam verdicts at high risk (>= {HIGH_RISK}): {fmt_rate(summary['scam_high'])}. "
        f"Known-script matches: {summary['known_script_hits']['scam']} scam rows, "
        f"{summary['known_script_hits']['genuine']} genuine rows.",
        "",
        # The targets' "genuine notices" are `legit` rows; `other` also holds chat, ads, codes and
        # police warnings that quote scam scripts, so each is shown beside the two together.
        "Genuine rows flagged, by label: notices about the person's own loan, card or account "
        f"(`legit`) {fmt_rate(summary['legit_flagged'])}; everything else genuine (`other`: "
        f"codes, parcels, ads, chat, anti-fraud warnings) {fmt_rate(summary['other_flagged'])}.",
        "",
        *tradeoff_lines(summary.get("tradeoff") or {}),
        *first_reader_lines(summary.get("first_reader") or {}),
        "Scam flagged, by fraud type:",
        "",
        table(
            ["fraud type", "flagged (95% CI)"],
            [[t, fmt_rate(v)] for t, v in summary["scam_by_type"].items()],
        ),
        "",
        "By slice:",
        "",
        table(
            ["slice", "rows", "scam flagged", "genuine flagged"],
            [
                [name, v["n"], fmt_rate(v["scam_flagged"]), fmt_rate(v["genuine_flagged"])]
                for name, v in summary["slices"].items()
            ],
        ),
        "",
    ]
    return "\n".join(lines)


def corpus_counts(dataset: Dataset) -> str:
    """Counts of the real rows by label, source kind, fraud type and origin."""
    examples = [dataset.examples[i] for i in real_rows(dataset)]
    groups = data.source_groups(dataset.examples)
    real_groups = {groups[i] for i in real_rows(dataset)}
    keys = {k for e in examples for k in data.source_keys(e) if not k.startswith("publisher:")}
    by = {
        "label": Counter(e.label for e in examples),
        "origin": Counter(e.source for e in examples),
        "source kind": Counter(str(e.meta.get("source_kind") or "(real_quoted)") for e in examples),
        "message kind": Counter(str(e.meta.get("kind") or "sms") for e in examples),
    }
    traditional = sum(is_traditional(e) for e in examples)
    lines = [
        f"{len(examples)} real rows after deduplication, from {len(keys)} distinct pages or "
        f"repositories in {len(real_groups)} source groups; {traditional} "
        f"({traditional / max(1, len(examples)):.0%}) in Traditional characters.",
        "",
    ]
    for name, counts in by.items():
        lines.append(f"- by {name}: " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))
    types = Counter(fraud_type_of(data.fraud_tag(e)) for e in examples if e.label == "scam")
    lines.append(
        "- scam rows by fraud type: " + ", ".join(f"{k} {v}" for k, v in types.most_common())
    )
    return "\n".join(lines)


def first_reader_lines(entry: dict[str, Any]) -> list[str]:
    """How many rows the cascade's first reader decided alone (nothing without a cascade)."""
    if not entry or not entry["real"]["k"]:
        return []
    guard = f"; everyday guard rows {fmt_rate(entry['guard'])}" if entry["guard"]["n"] else ""
    return [
        "Decided by the cascade's n-gram-only first reader alone, the sentence embedding never "
        f"computed: {fmt_rate(entry['real'])} of the real rows (scam {fmt_rate(entry['scam'])}, "
        f"genuine {fmt_rate(entry['genuine'])}, abusive {fmt_rate(entry['abusive'])}){guard}.",
        "",
    ]


def dump(dataset: Dataset, judged: Judged, path: Path) -> None:
    """Every real row's out-of-fold verdict, for reading the misses (contains message texts:
    keep it out of the repository)."""
    with path.open("w", encoding="utf-8") as handle:
        for n, index in enumerate(judged.rows):
            example = dataset.examples[index]
            row = {
                "uid": example.uid,
                "label": example.label,
                "category": judged.category[n],
                "level": judged.level[n],
                "risk": judged.risk[n],
                "reasons": judged.reasons[n],
                "first_reader": judged.first_reader[n],
                "fraud_type": data.fraud_tag(example),
                "text": example.record.text,
            }
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_dump(path: Path) -> dict[str, dict[str, Any]]:
    """A `--dump` file's verdicts by uid."""
    return {row["uid"]: row for row in map(json.loads, path.read_text("utf-8").splitlines())}


def _flagged_of(rows: Sequence[dict[str, Any]]) -> str:
    """'k / n': how many dumped verdicts flag (scam or high)."""
    return f"{sum(flagged(r['category'], r['level']) for r in rows)} / {len(rows)}"


def compare_dumps(paths: Sequence[Path]) -> str:
    """Runs' `--dump` files judged on the rows they all hold (a batch's own rows left out), one
    line each: what a change did to the verdict on the same rows, folds and labels. Guard rows are
    the everyday SMS and English ones."""
    runs = [read_dump(path) for path in paths]
    shared = sorted(set.intersection(*(set(run) for run in runs)))
    lines = [
        f"{len(shared)} rows in all {len(runs)} dumps",
        "",
        "| dump | scams flagged | genuine flagged | guard flagged | abusive as abusive | AUC "
        "| scams at 3 / 5 / 10 % of genuine |",
        "|---|---|---|---|---|---|---|",
    ]
    for path, run in zip(paths, runs, strict=True):
        rows = [run[uid] for uid in shared]
        real = [r for r in rows if r["uid"].split(":", 1)[0] in data.REAL_SOURCES]
        scams = [r for r in real if r["label"] == "scam"]
        genuine = [r for r in real if r["label"] in ("legit", "other")]
        abusive = [r for r in real if r["label"] == "abusive"]
        guard = [r for r in rows if r["uid"].split(":", 1)[0] not in data.REAL_SOURCES]
        curve = tradeoff([r["risk"] for r in scams], [r["risk"] for r in genuine])
        cuts = " / ".join(f"{p['scam_flagged']['rate']:.1%}" for p in curve.get("points", []))
        lines.append(
            f"| {path} | {_flagged_of(scams)} | {_flagged_of(genuine)} | {_flagged_of(guard)} | "
            f"{sum(r['category'] == 'abusive' for r in abusive)} / {len(abusive)} | "
            f"{curve.get('auc', float('nan')):.4f} | {cuts} |"
        )
    return "\n".join(lines)


def write_report(
    dataset: Dataset,
    headline: dict[str, dict[str, Any]],
    details: list[str],
    out: Path,
    ablation: dict[str, dict[str, Any]] | None = None,
    repeats: dict[str, dict[str, Any]] | None = None,
    results: dict[str, Any] | None = None,
    repeated: str = SHIPPED_CANDIDATE,
) -> None:
    """Write the report (`out`, Markdown, and its JSON twin) and print it. `make train` calls
    this with its own grouped run, so the report and the model card come from one computation."""
    ablation = ablation or {}
    repeats = repeats or {}
    results = dict(results or {})
    results["headline"] = headline
    results["ablation"] = ablation
    results["repeats"] = {name: headline_entry(s) for name, s in repeats.items()}
    sections = [
        "# dunscan on real messages",
        "",
        "_Generated by `python -m model.real_eval` (`make eval`) or, for the shipped candidate "
        "alone, by `make train`; do not edit by hand._",
        "",
        "Every row below is a real message quoted verbatim in a public page or public code "
        "(model/real/, ../shared/data/real_quoted). Rows are grouped by source (page, "
        "repository, publisher) and no group is on both sides of a split. The full verdict is "
        "measured (rules, numbers, known scripts, model). Targets: scam flagged >= 90 %, "
        "genuine flagged <= 3 %, abusive recall >= 80 %. `everyday SMS flagged` is a guard: "
        f"{GUARD_ROWS} real everyday genuine SMS from the public mudou set, held out in the same "
        "folds, flagged as scam or high; `English everyday flagged` is the same for "
        f"{ENGLISH_GUARD_ROWS} everyday English SMS (UCI ham, training half).",
        "",
        "## Corpus",
        "",
        corpus_counts(dataset),
        "",
        "## Headline",
        "",
        table(HEADLINE_HEADERS, headline_rows(headline)),
        "",
    ]
    if ablation:
        sections += [
            "## Ablation: what each training source adds",
            "",
            f"Candidate {SHIPPED_CANDIDATE} with C fixed at its grid's first value, same folds; "
            "the test rows are always the held-out real rows.",
            "",
            table(HEADLINE_HEADERS, headline_rows(ablation)),
            "",
        ]
    if repeats:
        sections += [
            f"## Fold noise: {repeated} on {len(repeats)} fold assignments",
            "",
            "The same rows and model, split into groups by different seeds: how far the headline "
            "moves when only the fold assignment changes.",
            "",
            table(HEADLINE_HEADERS, headline_rows(repeats)),
            "",
            spread_line(repeats),
            "",
        ]
    sections += ["## Details", "", *details]
    report = "\n".join(sections)
    print(report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report + "\n", encoding="utf-8")
    out.with_suffix(".json").write_text(
        json.dumps(results, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.real_eval", description=__doc__)
    parser.add_argument(
        "--candidates",
        default=SHIPPED_CANDIDATE,
        help="comma-separated candidates to cross-validate ('' for none, e.g. with --ablation)",
    )
    parser.add_argument("--ablation", action="store_true")
    parser.add_argument("--folds", type=int, default=FOLDS)
    parser.add_argument(
        "--real-share", type=float, default=REAL_SHARE, help="training weight of the real rows"
    )
    parser.add_argument(
        "--real-source-power",
        type=float,
        default=None,
        help="a real row of a source with n rows weighs n ** -power (default: the shipped "
        "REAL_SOURCE_POWER)",
    )
    parser.add_argument(
        "--fragment-share",
        type=float,
        default=FRAGMENT_SHARE,
        help="training weight of a real row's sentence fragments, as a share of the row's "
        "(0: no fragments)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="also cross-validate the first candidate on N-1 other fold assignments and report "
        "the spread (how much of a difference is fold noise)",
    )
    parser.add_argument(
        "--train-without",
        default="",
        help="comma-separated model/real batches left out of every training fold (still "
        "judged): what a batch does to the verdict on the other rows",
    )
    parser.add_argument("--out", type=Path, default=REPORT_PATH)
    parser.add_argument(
        "--dump", type=Path, help="write every real row's out-of-fold verdict here (JSONL)"
    )
    parser.add_argument(
        "--fold-models",
        type=Path,
        metavar="DIR",
        help="keep each fold's fitted model in DIR and reuse it while its training rows, "
        "candidate and fitting code are the same: a change to what happens after the model "
        "reads (the verdict, the neighbours' use) is measured in minutes",
    )
    parser.add_argument(
        "--compare",
        type=Path,
        nargs="+",
        metavar="DUMP",
        help="only compare earlier runs' --dump files on the rows they share, then exit",
    )
    args = parser.parse_args(argv)
    if args.compare:
        print(compare_dumps(args.compare))
        return 0
    if os.environ.get(PINNED_FLAG) != "1":
        # The same pinned numerics as `make train`, so this report and the model card agree.
        arguments = sys.argv[1:] if argv is None else list(argv)
        command = [sys.executable, "-m", "model.real_eval", *arguments]
        os.execve(sys.executable, command, pinned_environment())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    names = [n.strip() for n in args.candidates.split(",") if n.strip()]
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        print(f"unknown candidate(s) {', '.join(unknown)}; known: {', '.join(CANDIDATES)}")
        return 2

    analyzer = load_analyzer()
    sources = data.ALL_SOURCES | ({data.CHINESEHARM} if args.ablation else set())
    dataset = build_dataset(analyzer, sources=frozenset(sources), fragments=args.fragment_share > 0)
    folds = grouped_folds(dataset, args.folds)
    shipped = CANDIDATES[SHIPPED_CANDIDATE]
    fold_models = FoldModels(args.fold_models) if args.fold_models else None
    results: dict[str, Any] = {"folds": args.folds}

    headline: dict[str, dict[str, Any]] = {}
    details: list[str] = []
    for name in names:
        judged = cross_validate(
            dataset,
            analyzer,
            folds,
            CANDIDATES[name],
            real_share=args.real_share,
            train_without=frozenset(b for b in args.train_without.split(",") if b),
            source_power=args.real_source_power,
            fragment_share=args.fragment_share,
            fold_models=fold_models,
        )
        summary = summarize(dataset, judged)
        if args.dump and name == names[0]:
            dump(dataset, judged, args.dump)
        label = cv_label(name, args.folds)
        headline[label] = summary
        details.append(detail_markdown(label, summary))

    repeats: dict[str, dict[str, Any]] = {}
    if args.repeats > 1 and names:
        # The first candidate's run above is the assignment of seed SEED.
        repeats[f"seed {SEED}"] = headline[cv_label(names[0], args.folds)]
        for seed in range(SEED + 1, SEED + args.repeats):
            judged = cross_validate(
                dataset,
                analyzer,
                grouped_folds(dataset, args.folds, seed),
                CANDIDATES[names[0]],
                real_share=args.real_share,
                source_power=args.real_source_power,
                fragment_share=args.fragment_share,
            )
            repeats[f"seed {seed}"] = summarize(dataset, judged)

    train, test = real_quoted_split(dataset)
    whole = summarize(
        dataset,
        judge(
            dataset,
            analyzer,
            train,
            test,
            shipped,
            args.real_share,
            args.real_source_power,
            args.fragment_share,
            fold_models,
        ),
    )
    headline[f"{SHIPPED_CANDIDATE}: real_quoted held out whole"] = whole
    if fold_models is not None:
        log.info("fold models: %d reused, %d fitted", fold_models.reused, fold_models.fitted)
    details.append(detail_markdown("real_quoted held out whole", whole))

    ablation: dict[str, dict[str, Any]] = {}
    if args.ablation:
        # One C (the first of the shipped grid) instead of a search: halves the cost of each run.
        fixed = replace(shipped, c_grid=shipped.c_grid[:1])
        for title, allowed in ABLATIONS.items():
            judged = cross_validate(dataset, analyzer, folds, fixed, allowed)
            ablation[title] = summarize(dataset, judged)

    write_report(
        dataset,
        headline,
        details,
        args.out,
        ablation,
        repeats,
        results,
        repeated=names[0] if names else SHIPPED_CANDIDATE,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
