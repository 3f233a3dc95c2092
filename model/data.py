"""Training data: every source read from DUNSCAN_DATA_DIR / model/corpus, brought to one form.

Sources and how their labels map to our four categories (see MODEL_CARD.md, "Data"):

- fbs_sms (real fake-base-station spam, 2017-18): FR:* -> scam; AD:*, IL:*, Other -> other.
  The text is word-segmented and anonymised with placeholders (DIGIT, URL, CELLPHONE, ...). We undo
  the segmentation and replace each placeholder by a surrogate raw value of the same kind ("URL" ->
  a link, "CELLPHONE" -> a mobile number), so that FBS then goes through exactly the normalise +
  mask path that raw SMS and live traffic go through. NAME and PLACE are dropped: our raw texts keep
  names as ordinary characters, which carry no category.
- mudou_sms (real SMS, 2013-15): label 0 (genuine) -> `legit` when the pipeline finds it
  finance-related (a brand, a notice signal, or a money/loan word: `Analysis.finance_related`, the
  same test the verdict uses to keep `legit` for finance notices), otherwise `other`; these are
  the hard negatives a scam detector must not flag. Label 1 (mostly ads, promotions) -> other.
  `load_mudou` marks genuine rows GENUINE; model/train.py resolves them after the analysis.
- uci_sms_spam (English): not used for training. It has no fraud or collection content and no
  Chinese; its Latin n-grams would only add noise. It is read for a sanity report in `make eval`.
- model/corpus/*.jsonl (written by the project): the only source of collection scams and abusive
  collection, with senders and call records. Labels used as they are.

Deduplication runs on the canonical (normalised + masked) text before any split.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from service.model import canonical_text
from service.paths import CORPUS_DIR, DATA_DIR
from service.schemas import CallRecord, SmsRecord, parse_record

FBS_FILE = Path("fbs_sms") / "fbs_sms.tsv"
MUDOU_FILES = (
    Path("mudou_sms") / "mudou_spam.train.tsv",
    Path("mudou_sms") / "mudou_spam.test.tsv",
)
UCI_FILE = Path("uci_sms_spam") / "SMSSpamCollection.tsv"

# Surrogates: a raw value of the same kind, which mask_text turns into the same token it would
# produce for a real message.
_FBS_SURROGATES = {
    "CELLPHONE": " 13800138000 ",
    "PHONE": " 010-88886666 ",
    "HOTLINE": " 95123 ",  # a short code on no official list
    "WECHAT": " 微信 wxid8888 ",
    "QQ": " qq 12345678 ",
    "URL": " http://x.cn ",
    "DIGIT": " 8 ",
    "BANK": "银行",
    "NAME": "",
    "PLACE": "",
}
_PLACEHOLDER = re.compile("|".join(sorted(_FBS_SURROGATES, key=len, reverse=True)))
# A whitespace-separated FBS token that holds a placeholder, possibly glued to anonymisation
# remnants ("URLdfge", "QQyneWECHAT", "jlnPHONE"): the remnants are dropped.
_GLUED = re.compile(r"\S*(?:" + _PLACEHOLDER.pattern + r")\S*")

# Provisional label of a genuine mudou message, resolved to legit/other by resolve_genuine().
GENUINE = "genuine"

# Corpus rows are the project's own; weight and split logic refer to this source name.
CORPUS = "corpus"


@dataclass(frozen=True)
class Example:
    """One labelled record from any source, with its canonical text."""

    uid: str
    source: str  # fbs | mudou | uci | corpus
    group: str  # FBS category, mudou file, corpus batch
    label: str
    record: SmsRecord | CallRecord
    canonical: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def dedup_key(self) -> str:
        if self.canonical:
            return self.canonical
        # A call record without text: its number and duration are its content.
        record = self.record
        return f"call|{record.sender}|{getattr(record, 'duration_s', None)}|{self.uid}"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fbs_to_raw(segmented: str) -> str:
    """Undo FBS word segmentation and anonymisation into a raw-looking message."""

    def expand(match: re.Match[str]) -> str:
        return "".join(_FBS_SURROGATES[p] for p in _PLACEHOLDER.findall(match.group(0)))

    text = _GLUED.sub(expand, segmented)
    # Segmentation spaces between CJK characters are removed by normalize(); Latin words keep
    # theirs, as they would in a raw SMS.
    return text


def _example(
    uid: str, source: str, group: str, label: str, record: dict[str, Any], meta: dict[str, Any]
) -> Example:
    parsed = parse_record(record)
    return Example(uid, source, group, label, parsed, canonical_text(parsed.text or ""), meta)


def load_fbs(data_dir: Path) -> list[Example]:
    examples = []
    lines = (data_dir / FBS_FILE).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines[1:], start=2):
        category, group, text = line.split("\t", 2)
        label = "scam" if group == "FR" else "other"
        raw = fbs_to_raw(text)
        if raw.strip():
            examples.append(
                _example(f"fbs:{number}", "fbs", category, label, {"text": raw}, {"origin": text})
            )
    return examples


def resolve_genuine(example: Example, finance_related: bool) -> Example:
    """A genuine message is a `legit` notice when finance-related, else `other`."""
    if example.label != GENUINE:
        return example
    return replace(example, label="legit" if finance_related else "other")


def load_mudou(data_dir: Path) -> list[Example]:
    examples = []
    for relative in MUDOU_FILES:
        part = relative.name.split(".")[1]  # train | test
        lines = (data_dir / relative).read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            fields = line.split("\t")
            if len(fields) < 2 or not fields[1].strip() or fields[0] not in {"0", "1"}:
                continue
            text = fields[1]
            label = "other" if fields[0] == "1" else GENUINE
            examples.append(
                _example(
                    f"mudou:{part}:{number}",
                    "mudou",
                    f"mudou:{'spam' if fields[0] == '1' else 'ham'}",
                    label,
                    {"text": text},
                    {"part": part},
                )
            )
    return examples


def load_uci(data_dir: Path) -> list[Example]:
    """English SMS; used only for a sanity report (ham -> other, spam -> other or scam?)."""
    examples = []
    lines = (data_dir / UCI_FILE).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        label, _, text = line.partition("\t")
        if text.strip():
            examples.append(
                _example(f"uci:{number}", "uci", f"uci:{label}", "other", {"text": text}, {})
            )
    return examples


def corpus_files(corpus_dir: Path = CORPUS_DIR) -> list[Path]:
    return sorted(corpus_dir.glob("*.jsonl"))


_RECORD_FIELDS = ("kind", "sender", "text", "duration_s", "direction", "received_at")


def load_corpus(corpus_dir: Path = CORPUS_DIR) -> list[Example]:
    examples = []
    for path in corpus_files(corpus_dir):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            record = {key: row[key] for key in _RECORD_FIELDS if row.get(key) is not None}
            record["id"] = str(row.get("id") or f"{path.stem}:{number}")
            meta = {
                key: row.get(key) for key in ("brand", "scenario", "variant", "batch", "provenance")
            }
            examples.append(
                _example(
                    f"corpus:{record['id']}",
                    CORPUS,
                    str(row.get("batch") or "unbatched"),
                    str(row["label"]),
                    record,
                    meta,
                )
            )
    return examples


_PRIORITY = {CORPUS: 0, "mudou": 1, "fbs": 2, "uci": 3}


def deduplicate(examples: Iterable[Example]) -> tuple[list[Example], dict[str, int]]:
    """One example per canonical text. Public texts with conflicting labels are dropped; the
    project's corpus wins a conflict with a public source. Returns (kept, counts)."""
    by_key: dict[str, list[Example]] = defaultdict(list)
    order: list[str] = []
    for example in examples:
        if example.dedup_key not in by_key:
            order.append(example.dedup_key)
        by_key[example.dedup_key].append(example)
    kept: list[Example] = []
    stats: Counter[str] = Counter()
    for key in order:
        group = sorted(by_key[key], key=lambda e: _PRIORITY.get(e.source, 9))
        best = group[0]
        labels = {e.label for e in group if e.source == best.source}
        stats["duplicates"] += len(group) - 1
        if len(labels) > 1:
            stats["conflicts_dropped"] += 1
            continue
        if any(e.label != best.label for e in group[1:]):
            stats["cross_source_conflicts"] += 1
        kept.append(best)
    stats["kept"] = len(kept)
    return kept, dict(stats)


def source_files(data_dir: Path = DATA_DIR, corpus_dir: Path = CORPUS_DIR) -> dict[str, str]:
    """sha256 of every file training reads, by path relative to its root."""
    hashes = {}
    for relative in (FBS_FILE, *MUDOU_FILES):
        hashes[f"data/{relative.as_posix()}"] = sha256_bytes((data_dir / relative).read_bytes())
    for path in corpus_files(corpus_dir):
        hashes[f"corpus/{path.name}"] = sha256_bytes(path.read_bytes())
    return hashes


def corpus_hash(corpus_dir: Path = CORPUS_DIR) -> str:
    """One hash over all corpus files (name + content), order-independent of the filesystem."""
    digest = hashlib.sha256()
    for path in corpus_files(corpus_dir):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def load_training_examples(
    data_dir: Path = DATA_DIR, corpus_dir: Path = CORPUS_DIR
) -> tuple[list[Example], dict[str, int]]:
    """All training sources, deduplicated (before any split)."""
    examples = load_corpus(corpus_dir) + load_mudou(data_dir) + load_fbs(data_dir)
    return deduplicate(examples)
