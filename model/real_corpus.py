"""The real corpus in model/real/: check it, add a harvested batch to it, count it.

    python -m model.real_corpus check                  # every row valid; exit 1 with the problems
    python -m model.real_corpus add BATCH FILE.jsonl   # validate, dedupe, give ids, write BATCH
    python -m model.real_corpus stats                  # counts by label, kind, source, fraud type

A batch must pass ../shared/tools/heldout_overlap.py before it is added (model/real/README.md).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from model.data import REAL_QUOTED_FILE
from service.engine.known_scripts import canonical
from service.engine.model import canonical_text
from service.engine.normalize import normalize
from service.paths import DATA_DIR, REAL_DIR

LABELS = frozenset({"scam", "abusive", "legit", "other"})
KINDS = frozenset({"sms", "call", "chat", "template", "app_notice", "other"})
SOURCE_KINDS = frozenset(
    {
        "police",
        "gov",
        "news",
        "court",
        "complaint",
        "forum",
        "blog",
        "github_issue",
        "code",
        "other",
    }
)
REQUIRED = ("id", "text", "label", "kind", "source", "publisher")
FIELDS = (
    "id",
    "text",
    "label",
    "kind",
    "sender",
    "source",
    "publisher",
    "date",
    "source_kind",
    "region",
    "fraud_type",
    "note",
)
MAX_ROWS_PER_SOURCE = 20
# Source families left out whole: the held-out messages dunscan is judged on were drawn from them
# (heldout_overlap.py named many of their rows), so their other rows are near-copies of held-out
# templates with other amounts and dates.
EXCLUDED_SOURCES = re.compile(r"AutoAccountingOrg/|Auto-Accounting/|AutoAccounting", re.IGNORECASE)

# The fraud types China's police publish (and the rest of what people paste), in the order a
# free-form tag is matched against them: the first whose words appear in the tag names it.
FRAUD_TYPES: tuple[tuple[str, str], ...] = (
    ("注销校园贷", "校园贷|学生账户|学生账号"),
    ("虚假征信", "征信|注销白条"),
    ("冒充公检法", "公检法|警|檢警|法院|通缉|洗钱|165"),
    ("冒充催收/虚假催收", "催收"),
    ("虚假网络贷款", "贷款|貸款|备用金|预付利息|担保费|好处费|放款"),
    (
        "冒充政府公共服务钓鱼",
        "政府|etc|ETC|医保|社保|12123|营业执照|退税|补贴|车管所|健康码|助学金|交通违法|市场监管|疾控",
    ),
    ("冒充银行钓鱼", "银行|銀行|积分|網銀|网银|信用卡|提额|年费|银联"),
    ("冒充领导熟人", "领导|熟人|老师|班主任|房东"),
    ("冒充亲友", "亲友|子女|好友|猜猜|伤员|借灾"),
    ("冒充电商物流客服", "电商|物流|快递|理赔|订单|訂單|包裹|郵政|退款"),
    ("冒充平台客服", "平台客服|百万保障|会员|客服|直播"),
    ("虚假投资理财", "投资|理财|荐股|股票"),
    ("刷单返利", "刷单|返利"),
    ("网络婚恋交友", "婚恋|征婚|交友|婚介"),
    ("网络游戏虚假交易", "游戏"),
    ("虚假中奖", "中奖|送券"),
    ("虚假募捐", "募捐|赈灾|红十字"),
    ("冒充运营商", "运营商|移动|话费|吸费|回撥|回拨"),
    ("木马链接", "木马"),
    ("色情敲诈", "裸聊|色情|敲诈|恐嚇|恐吓"),
    ("虚假票务", "航班|票务|改签"),
    ("虚假招聘兼职", "招聘|兼职"),
    ("虚假购物服务", "购物"),
    ("网络赌博", "赌博"),
)


def fraud_type_of(tag: str) -> str:
    """A free-form scam tag (real_quoted's `scam_type`, a harvester's `fraud_type`) as one of
    FRAUD_TYPES, or 其他诈骗."""
    tag = tag or ""
    for name, _ in FRAUD_TYPES:  # a tag that already names a type keeps it
        if tag.startswith(name):
            return name
    for name, words in FRAUD_TYPES:
        if re.search(words, tag):
            return name
    return "其他诈骗"


def row_problems(row: dict[str, Any]) -> list[str]:
    problems = [f"missing {name}" for name in REQUIRED if not str(row.get(name) or "").strip()]
    if row.get("label") not in LABELS:
        problems.append(f"label {row.get('label')!r} not in {sorted(LABELS)}")
    if row.get("kind") not in KINDS:
        problems.append(f"kind {row.get('kind')!r} not in {sorted(KINDS)}")
    if row.get("source_kind") and row.get("source_kind") not in SOURCE_KINDS:
        problems.append(f"source_kind {row.get('source_kind')!r} not in {sorted(SOURCE_KINDS)}")
    if EXCLUDED_SOURCES.search(str(row.get("source") or "")):
        problems.append("source family excluded (held-out messages were drawn from it)")
    return problems


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def corpus_rows(real_dir: Path = REAL_DIR) -> list[tuple[Path, dict[str, Any]]]:
    return [(path, row) for path in sorted(real_dir.glob("*.jsonl")) for row in read_rows(path)]


def dedup_key(text: str) -> str:
    return canonical(normalize(text).text)


def check(real_dir: Path = REAL_DIR) -> list[str]:
    """Every problem in the corpus, one line each (empty when it is sound)."""
    problems = []
    ids: Counter[str] = Counter()
    texts: dict[str, str] = {}
    per_source: Counter[str] = Counter()
    for path, row in corpus_rows(real_dir):
        ids[str(row.get("id"))] += 1
        for problem in row_problems(row):
            problems.append(f"{path.name} {row.get('id')}: {problem}")
        key = dedup_key(str(row.get("text") or ""))
        if key in texts:
            problems.append(f"{path.name} {row.get('id')}: same text as {texts[key]}")
        texts.setdefault(key, str(row.get("id")))
        per_source[str(row.get("source"))] += 1
    problems += [f"id {i} used {n} times" for i, n in ids.items() if n > 1]
    problems += [
        f"{n} rows from one source ({source}); at most {MAX_ROWS_PER_SOURCE}"
        for source, n in per_source.items()
        if n > MAX_ROWS_PER_SOURCE
    ]
    return problems


def _drop_reason(
    row: dict[str, Any], key: str, seen: set[str], from_source: int, in_quoted: set[str]
) -> str:
    """Why a harvested row stays out of the corpus ("" if it goes in)."""
    if EXCLUDED_SOURCES.search(str(row.get("source"))) is not None:
        return "excluded source"
    if row_problems(row) or not key:
        return "invalid"
    if key in seen:
        return "already in the corpus"
    if from_source >= MAX_ROWS_PER_SOURCE:
        return f"over {MAX_ROWS_PER_SOURCE} rows from one source"
    if canonical_text(str(row.get("text") or "")) in in_quoted:
        return "already in real_quoted"
    return ""


class Added(NamedTuple):
    kept: int
    why: dict[str, int]  # dropped rows by reason

    @property
    def dropped(self) -> int:
        return sum(self.why.values())


def add(batch: str, harvested: Path, real_dir: Path = REAL_DIR, data_dir: Path = DATA_DIR) -> Added:
    """Write model/real/BATCH.jsonl from a harvested file: valid rows not already in the corpus
    nor in ../shared/data/real_quoted, fields in a fixed order, ids BATCH-0001, ...
    Returns how many rows were kept and dropped, and why each was dropped.

    A row real_quoted already holds adds nothing to training, and in the corpus it would push
    real_quoted's copy out at deduplication: the "real_quoted held out whole" split would shrink.
    """
    seen = {dedup_key(str(row.get("text") or "")) for _, row in corpus_rows(real_dir)}
    quoted = data_dir / REAL_QUOTED_FILE
    # Training deduplicates on the model's canonical text (numbers masked), so that is the key
    # a real_quoted message is matched on: the same notice with another code is the same row.
    in_quoted = (
        {canonical_text(str(row.get("text") or "")) for row in read_rows(quoted)}
        if quoted.is_file()
        else set()
    )
    target = real_dir / f"{batch}.jsonl"
    if target.exists():
        seen -= {dedup_key(str(row.get("text") or "")) for row in read_rows(target)}
    kept: list[dict[str, Any]] = []
    why: Counter[str] = Counter()
    per_source: Counter[str] = Counter()
    for row in read_rows(harvested):
        row = {**row, "id": "pending"}
        key = dedup_key(str(row.get("text") or ""))
        source = str(row.get("source"))
        reason = _drop_reason(row, key, seen, per_source[source], in_quoted)
        if reason:
            why[reason] += 1
            continue
        seen.add(key)
        per_source[source] += 1
        row["id"] = f"{batch}-{len(kept) + 1:04d}"
        kept.append({name: row.get(name, "") or "" for name in FIELDS})
    target.write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in kept), encoding="utf-8"
    )
    return Added(len(kept), dict(why))


def stats(real_dir: Path = REAL_DIR) -> str:
    rows = [row for _, row in corpus_rows(real_dir)]
    lines = [f"{len(rows)} rows, {len({r['source'] for r in rows})} distinct sources"]
    for field in ("label", "kind", "source_kind", "region", "fraud_type"):
        counts = Counter(str(r.get(field) or "-") for r in rows)
        lines.append(f"{field}: " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.real_corpus", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check")
    adding = sub.add_parser("add")
    adding.add_argument("batch")
    adding.add_argument("file", type=Path)
    sub.add_parser("stats")
    args = parser.parse_args(argv)
    if args.command == "check":
        problems = check()
        print("\n".join(problems) or "model/real: every row valid")
        return 1 if problems else 0
    if args.command == "add":
        added = add(args.batch, args.file)
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(added.why.items()))
        print(
            f"model/real/{args.batch}.jsonl: {added.kept} rows kept, {added.dropped} dropped"
            + (f" ({reasons})" if reasons else "")
        )
        return 0
    print(stats())
    return 0


if __name__ == "__main__":
    sys.exit(main())
