"""Score the shipped verdict on the challenge sets in model/challenge/ (never trained on).

    python -m model.challenge [FILE ...]

Prints, per file, precision / recall / F1 per category and how many scams and genuine messages
reach a medium or high risk. `make eval` runs it after the splits.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from sklearn.metrics import accuracy_score, classification_report, f1_score

from service.engine.pipeline import HIGH_RISK, MEDIUM_RISK, Analyzer
from service.engine.schemas import CATEGORIES, parse_record

CHALLENGE_DIR = Path(__file__).resolve().parent / "challenge"


def score_file(analyzer: Analyzer, path: Path) -> str:
    """The markdown report for one challenge file."""
    gold, predicted, risks = [], [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        record = {key: row[key] for key in ("kind", "sender", "text", "duration_s") if key in row}
        verdict = analyzer.check(parse_record(record))
        gold.append(row["label"])
        predicted.append(verdict.category)
        risks.append(verdict.risk)
    scams = [risk for label, risk in zip(gold, risks, strict=True) if label == "scam"]
    genuine = [r for label, r in zip(gold, risks, strict=True) if label in ("legit", "other")]

    def share(values: list[float], floor: float) -> str:
        return f"{sum(v >= floor for v in values) / len(values):.3f}" if values else "n/a"

    lines = [
        f"### {path.name}: {len(gold)} rows",
        "",
        "```",
        classification_report(
            gold, predicted, labels=list(CATEGORIES), digits=3, zero_division=0
        ).rstrip(),
        "```",
        "",
        "| measure | value |",
        "|---|---|",
        f"| macro F1 | {f1_score(gold, predicted, average='macro', zero_division=0):.3f} |",
        f"| accuracy | {accuracy_score(gold, predicted):.3f} |",
        f"| scam caught at risk >= {MEDIUM_RISK} / {HIGH_RISK} | "
        f"{share(scams, MEDIUM_RISK)} / {share(scams, HIGH_RISK)} |",
        f"| genuine (legit + other) flagged at risk >= {MEDIUM_RISK} / {HIGH_RISK} | "
        f"{share(genuine, MEDIUM_RISK)} / {share(genuine, HIGH_RISK)} |",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.challenge", description=__doc__)
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args(argv)
    files = args.files or sorted(CHALLENGE_DIR.glob("*.jsonl"))
    analyzer = Analyzer.load()
    version = getattr(analyzer.model, "version", None) or "none (rules only)"
    print(f"## Challenge sets (shipped model {version})\n")
    for path in files:
        print(score_file(analyzer, path) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
