"""The corpus row contract: allowed values and one loader shared by the tools and the tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CORPUS_DIR = Path(__file__).resolve().parent

LABELS: tuple[str, ...] = ("scam", "abusive", "legit", "other")
KINDS: tuple[str, ...] = ("sms", "call")
VARIANTS: tuple[str, ...] = ("plain", "obfuscated", "traditional", "short")
DIRECTIONS: tuple[str, ...] = ("incoming", "outgoing", "missed")

# Brand ids shared with rules/numbers and the tests (team brief).
LENDER_BRANDS: tuple[str, ...] = (
    "alipay",
    "jd",
    "fenqile",
    "webank",
    "huanbei",
    "duxiaoman",
    "zhaolian",
    "meituan",
    "douyin",
    "qubei",
    "wechatpay",
    "qifu",
    "mashang",
    "pingan",
)
BANK_BRANDS: tuple[str, ...] = (
    "icbc",
    "ccb",
    "abc",
    "boc",
    "bocom",
    "cmb",
    "citic",
    "ceb",
    "hxb",
    "cmbc",
    "pab",
    "cgb",
    "cib",
    "spdb",
    "psbc",
)
PUBLIC_BRANDS: tuple[str, ...] = (
    "antifraud_96110",
    "miit_12381",
    "report_12321",
    "nfra_12378",
    "pboc_12363",
    "police_110",
    "samr_12315",
)
BRAND_IDS: frozenset[str] = frozenset(LENDER_BRANDS + BANK_BRANDS + PUBLIC_BRANDS)

# A text of up to this many characters is written as a fragment and tagged variant "short".
SHORT_MAX_CHARS = 30


def corpus_files(corpus_dir: Path = CORPUS_DIR) -> list[Path]:
    return sorted(corpus_dir.glob("*.jsonl"))


def iter_rows(corpus_dir: Path = CORPUS_DIR) -> Iterator[tuple[Path, int, dict[str, Any]]]:
    """Yield (file, line number, row) for every non-empty line of every corpus file."""
    for path in corpus_files(corpus_dir):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                yield path, number, json.loads(line)


def load_rows(corpus_dir: Path = CORPUS_DIR) -> list[dict[str, Any]]:
    return [row for _, _, row in iter_rows(corpus_dir)]


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """One JSON object per line, UTF-8 kept readable, keys in a fixed order for clean diffs."""
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


SMS_TEXT_CHARS = (10, 300)
_REQUIRED = ("id", "kind", "sender", "label", "brand", "scenario", "variant", "batch", "provenance")


def row_problems(row: dict[str, Any]) -> list[str]:
    """Everything wrong with one corpus row, as short messages; an empty list means valid."""
    problems = [f"missing field {name!r}" for name in _REQUIRED if name not in row]
    if problems:
        return problems
    if not isinstance(row["id"], str) or not row["id"].startswith("dc-"):
        problems.append("id must be a string starting with 'dc-'")
    if row["label"] not in LABELS:
        problems.append(f"label {row['label']!r} not in {LABELS}")
    if row["variant"] not in VARIANTS:
        problems.append(f"variant {row['variant']!r} not in {VARIANTS}")
    if row["brand"] is not None and row["brand"] not in BRAND_IDS:
        problems.append(f"unknown brand {row['brand']!r}")
    if not isinstance(row["scenario"], str) or not row["scenario"].replace("_", "").isalnum():
        problems.append("scenario must be a snake_case tag")
    if not row["batch"] or not isinstance(row["batch"], str):
        problems.append("batch must be a non-empty string")
    if not isinstance(row["provenance"], str) or "dunscan project" not in row["provenance"]:
        problems.append("provenance must say the row was written by the dunscan project")
    if row["sender"] is not None and (not isinstance(row["sender"], str) or not row["sender"]):
        problems.append("sender must be a non-empty string or null")
    if row["kind"] == "sms":
        text = row.get("text")
        low, high = SMS_TEXT_CHARS
        if not isinstance(text, str) or not low <= len(text.strip()) <= high:
            problems.append(f"sms text must be a string of {low}-{high} characters")
    elif row["kind"] == "call":
        if not row["sender"]:
            problems.append("a call needs a sender")
        if "text" in row:
            problems.append("a call row carries no text")
        duration = row.get("duration_s")
        if not isinstance(duration, int) or isinstance(duration, bool) or duration < 0:
            problems.append("duration_s must be a non-negative integer")
        if row.get("direction") not in DIRECTIONS:
            problems.append(f"direction must be one of {DIRECTIONS}")
    else:
        problems.append(f"kind {row['kind']!r} not in {KINDS}")
    return problems
