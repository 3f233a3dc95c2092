"""Counts of the corpus per label, kind, variant, batch, brand and scenario, as Markdown tables.

Run `python -m model.corpus.stats`; the README's counts section is this command's output.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from model.corpus.rows import BANK_BRANDS, LABELS, LENDER_BRANDS, PUBLIC_BRANDS, load_rows


def _table(title: str, rows: list[dict[str, Any]], key: str, order: Iterable[str] = ()) -> str:
    counts: dict[str, Counter[str]] = {}
    for row in rows:
        value = str(row.get(key) or "(none)")
        counts.setdefault(value, Counter())[row["label"]] += 1
    keys = [k for k in order if k in counts] + sorted(k for k in counts if k not in set(order))
    lines = [
        f"### {title}",
        "",
        f"| {key} | " + " | ".join(LABELS) + " | total |",
        "|---|" + "---:|" * (len(LABELS) + 1),
    ]
    for value in keys:
        cells = [str(counts[value][label]) for label in LABELS]
        lines.append(f"| {value} | " + " | ".join(cells) + f" | {sum(counts[value].values())} |")
    totals = Counter(row["label"] for row in rows)
    lines.append(
        "| **all** | " + " | ".join(str(totals[label]) for label in LABELS) + f" | {len(rows)} |"
    )
    return "\n".join(lines)


def report(rows: list[dict[str, Any]]) -> str:
    sms_lengths = sorted(len(row["text"]) for row in rows if row["kind"] == "sms")
    median = sms_lengths[len(sms_lengths) // 2] if sms_lengths else 0
    parts = [
        f"{len(rows)} rows; SMS text length {sms_lengths[0]}-{sms_lengths[-1]} characters "
        f"(median {median})."
        if sms_lengths
        else f"{len(rows)} rows.",
        _table("Per kind", rows, "kind", ("sms", "call")),
        _table("Per variant", rows, "variant", ("plain", "short", "obfuscated", "traditional")),
        _table("Per batch", rows, "batch"),
        _table("Per brand", rows, "brand", LENDER_BRANDS + BANK_BRANDS + PUBLIC_BRANDS),
        _table("Per scenario", rows, "scenario"),
    ]
    return "\n\n".join(parts) + "\n"


def main() -> None:
    print(report(load_rows()), end="")


if __name__ == "__main__":
    main()
