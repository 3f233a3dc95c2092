"""Training data: every source read from DUNSCAN_DATA_DIR / model/corpus, brought to one form.

Sources and how their labels map to our four categories (see MODEL_CARD.md, "Data"):

- fbs_sms (real fake-base-station spam, 2017-18): FR:*, IL:Gambling, IL:Escort_service -> scam;
  other AD:*, IL:*, Other -> other.
  The text is word-segmented and anonymised with placeholders (DIGIT, URL, CELLPHONE, ...). We undo
  the segmentation and replace each placeholder by a surrogate raw value of the same kind ("URL" ->
  a link, "CELLPHONE" -> a mobile number), so that FBS then goes through exactly the normalise +
  mask path that raw SMS and live traffic go through. NAME and PLACE are dropped: our raw texts keep
  names as ordinary characters, which carry no category.
- mudou_sms (real SMS, 2013-15): label 0 (genuine) -> `legit` when the pipeline finds it
  finance-related (a brand, a notice signal, or a money/loan word: `Analysis.finance_related`, the
  same test the verdict uses to keep `legit` for finance notices), otherwise `other`; these are
  the hard negatives a scam detector must not flag. Label 1 (mostly ads, promotions) -> other.
  `load_mudou` marks genuine rows GENUINE; model/fit.py resolves them after the analysis.
- uci_sms_spam (English, 2000s-2011): the genuine (ham) messages of one half (`uci_half`, by a
  hash of the text) -> other, the everyday English a person also pastes: the real corpus now holds
  hundreds of English scams and few everyday English texts, so without them any English text read
  as a scam (the shipped model put 76 % of this ham in `scam`). The other half and the spam
  (premium-rate prizes mixed with plain ads, no per-row label) are only reported (`make eval`).
- model/corpus/*.jsonl (written by the project): synthetic collection scams, abusive collection,
  senders and call records. Labels used as they are. A regression set, never the headline.
- model/real/*.jsonl (harvested by the project, see model/real/README.md) and
  real_quoted (../shared/data/real_quoted): real messages quoted verbatim in public pages and code,
  each with its source. `ham` (real_quoted's everyday genuine messages) -> other. These are what
  the headline figures are measured on, grouped by source (`source_groups`).

Deduplication runs on the canonical (normalised + masked) text before any split.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from service.engine.model import canonical_text
from service.engine.schemas import CallRecord, SmsRecord, parse_record
from service.paths import CORPUS_DIR, DATA_DIR, REAL_DIR

FBS_FILE = Path("fbs_sms") / "fbs_sms.tsv"
# FBS files gambling sites and escort offers under "illegal" (IL), not fraud; the police count
# both among fraud types (网络赌博, and escort offers that take a deposit and never show), and the
# real corpus labels them `scam` (model/real/LABELING.md), so they train as scams too.
FBS_SCAM_CATEGORIES = frozenset({"IL:Gambling", "IL:Escort_service"})
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
UCI = "uci"
# Real messages: the project's own harvest (model/real/) and the shared real_quoted set.
REAL = "real"
REAL_QUOTED = "real_quoted"
REAL_SOURCES = frozenset({REAL, REAL_QUOTED})
REAL_QUOTED_FILE = Path("real_quoted") / "real_quoted.jsonl"
_REAL_LABELS = {
    "scam": "scam",
    "abusive": "abusive",
    "legit": "legit",
    "other": "other",
    "ham": "other",
}


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
        label = "scam" if group == "FR" or category in FBS_SCAM_CATEGORIES else "other"
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


def uci_half(text: str) -> str:
    """`train` or `report`: a stable split of the UCI messages by their text (duplicates fall on
    the same side), so the report half is never trained on."""
    digest = hashlib.sha256(text.strip().encode("utf-8")).digest()
    return "train" if digest[0] % 2 == 0 else "report"


def load_uci(data_dir: Path, half: str | None = None) -> list[Example]:
    """English SMS, every row `other` (groups uci:ham, uci:spam); `half` keeps one uci_half."""
    examples = []
    lines = (data_dir / UCI_FILE).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        label, _, text = line.partition("\t")
        if text.strip() and (half is None or uci_half(text) == half):
            examples.append(
                _example(f"uci:{number}", UCI, f"uci:{label}", "other", {"text": text}, {})
            )
    return examples


def load_uci_training(data_dir: Path) -> list[Example]:
    """The genuine English SMS the model trains on: the ham of the `train` half."""
    return [e for e in load_uci(data_dir, "train") if e.group == "uci:ham"]


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


def real_files(real_dir: Path = REAL_DIR) -> list[Path]:
    return sorted(real_dir.glob("*.jsonl"))


# What a phone shows as the sender: a number or short code, or an alphanumeric sender id
# ("HDFCBK", "NDB ALERT"). Harvesters also described who spoke ("京东客服 (agent)", an e-mail
# address, "fake 售后客服 (QQ)"); as a sender that would teach the model a field no person ever
# types, so it stays in the row for readers only.
_SHOWN_SENDER = re.compile(r"\+?[0-9][0-9 ()\-]{1,24}|[A-Za-z0-9][A-Za-z0-9 \-]{1,10}")


def _real_examples(rows: Iterable[tuple[str, dict[str, Any]]], source: str) -> list[Example]:
    examples = []
    for uid, row in rows:
        label = _REAL_LABELS.get(str(row.get("label")))
        text = str(row.get("text") or "")
        if label is None or not text.strip():
            continue
        record: dict[str, Any] = {"text": text, "id": uid}
        sender = str(row.get("sender") or "").strip()
        if _SHOWN_SENDER.fullmatch(sender):
            record["sender"] = sender
        meta = {
            key: row.get(key)
            for key in (
                "id",
                "kind",
                "source",
                "publisher",
                "date",
                "fraud_type",
                "scam_type",
                "source_kind",
                "region",
                "note",
            )
        }
        examples.append(_example(f"{source}:{uid}", source, source, label, record, meta))
    return examples


def _id_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(id, row) for each row of a JSONL file; a row without an id is named by file and line."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            row = json.loads(line)
            rows.append((str(row.get("id") or f"{path.stem}:{number}"), row))
    return rows


def load_real(real_dir: Path = REAL_DIR) -> list[Example]:
    """The project's harvested real messages (model/real/*.jsonl), each row with its source."""
    return _real_examples([r for path in real_files(real_dir) for r in _id_rows(path)], REAL)


def load_real_quoted(data_dir: Path = DATA_DIR) -> list[Example]:
    """../shared/data/real_quoted: 413 real messages with sources (read in place, never copied)."""
    path = data_dir / REAL_QUOTED_FILE
    return _real_examples(_id_rows(path), REAL_QUOTED) if path.is_file() else []


def fraud_tag(example: Example) -> str:
    """The free-form scam tag a real row carries (`fraud_type`, or real_quoted's `scam_type`)."""
    return str(example.meta.get("fraud_type") or example.meta.get("scam_type") or "")


CHINESEHARM = "chineseharm"
# ChineseHarm-Bench (CC BY-NC 4.0): real moderated posts. Fraud posts are scams a person may paste;
# abuse and flaming are insults (what abusive collection sounds like, without the debt); ads and
# non-violating posts are other. Read in place; see ../shared/data/chineseharm_bench/SOURCE.md.
CHINESEHARM_FILES = {
    "欺诈.json": "scam",
    "谩骂引战.json": "abusive",
    "黑产广告.json": "other",
    "不违规.json": "other",
}


def load_chineseharm(data_dir: Path = DATA_DIR) -> list[Example]:
    folder = data_dir / "chineseharm_bench"
    examples = []
    for name, label in CHINESEHARM_FILES.items():
        path = folder / name
        if not path.is_file():
            continue
        for number, row in enumerate(json.loads(path.read_text(encoding="utf-8")), start=1):
            text = str(row.get("文本") or "")
            if text.strip():
                examples.append(
                    _example(
                        f"{CHINESEHARM}:{path.stem}:{number}",
                        CHINESEHARM,
                        f"{CHINESEHARM}:{path.stem}",
                        label,
                        {"text": text},
                        {},
                    )
                )
    return examples


_CODE_SOURCE = re.compile(r"^(?P<repo>[\w.-]+/[\w.-]+)@")
# An issue, pull request or file page on GitHub belongs to its repository.
_GITHUB_PAGE = re.compile(r"^https?://github\.com/(?P<repo>[\w.-]+/[\w.-]+)")


# Publishers that name no one: harvesters wrote these when the code index hid a file's repository
# ("GitHub developer (repo not exposed)", "GitHub issue spam"). As keys they tied some 1,500 rows
# of unrelated files and repositories into groups of 1,033 and 463 rows, so the fold that drew
# the larger held a seventh of the real rows at once.
_NAMES_NO_ONE = re.compile(
    r"^(?:unknown|unnamed|未知|网友)\b|^(?:unknown|未知|网友)$"
    r"|^github(?: (?:user|developer|repository|author|student))?$"
    r"|^github (?:issues?|comments?|pull requests?|discussions?)\b"  # a kind of post, not a who
)


def source_keys(example: Example) -> list[str]:
    """What ties a real row to others from the same place: its page, repository and publisher."""
    source = str(example.meta.get("source") or "").strip()
    keys = []
    code = _CODE_SOURCE.match(source) or _GITHUB_PAGE.match(source)
    if code:
        keys.append("repo:" + code.group("repo").lower())
    elif source:
        page = source.split("#", 1)[0].rstrip("/")
        page = re.sub(r"^https?://(www\.|m\.)?", "", page.lower())
        keys.append("page:" + page)
    publisher = str(example.meta.get("publisher") or "").strip()
    publisher = re.sub(r"[（(].*?[)）]", "", publisher).strip().lower()
    if publisher and not _NAMES_NO_ONE.search(publisher):
        keys.append("publisher:" + publisher)
    return keys or [f"row:{example.uid}"]


def source_groups(examples: Sequence[Example]) -> list[str]:
    """One group id per example: rows sharing a page, repository or publisher (transitively) share
    a group, so a grouped split never has a source on both sides. Non-real rows get ''."""
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    keys_of: list[list[str]] = []
    for example in examples:
        keys = source_keys(example) if example.source in REAL_SOURCES else []
        keys_of.append(keys)
        for key in keys[1:]:
            root_a, root_b = find(keys[0]), find(key)
            if root_a != root_b:
                parent[max(root_a, root_b)] = min(root_a, root_b)
    return [find(keys[0]) if keys else "" for keys in keys_of]


_PRIORITY = {REAL: 0, REAL_QUOTED: 1, CORPUS: 2, "mudou": 3, "fbs": 4, CHINESEHARM: 5, "uci": 6}


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


def source_files(
    data_dir: Path = DATA_DIR, corpus_dir: Path = CORPUS_DIR, real_dir: Path = REAL_DIR
) -> dict[str, str]:
    """sha256 of every file training reads, by path relative to its root."""
    hashes = {}
    for relative in (FBS_FILE, *MUDOU_FILES):
        hashes[f"data/{relative.as_posix()}"] = sha256_bytes((data_dir / relative).read_bytes())
    for path in corpus_files(corpus_dir):
        hashes[f"corpus/{path.name}"] = sha256_bytes(path.read_bytes())
    for path in real_files(real_dir):
        hashes[f"real/{path.name}"] = sha256_bytes(path.read_bytes())
    quoted = data_dir / REAL_QUOTED_FILE
    if quoted.is_file():
        hashes[f"data/{REAL_QUOTED_FILE.as_posix()}"] = sha256_bytes(quoted.read_bytes())
    return hashes


def corpus_hash(corpus_dir: Path = CORPUS_DIR) -> str:
    """One hash over all corpus files (name + content), order-independent of the filesystem."""
    digest = hashlib.sha256()
    for path in corpus_files(corpus_dir):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


# What the shipped model trains on (see model/reports/real.md for what each source adds).
ALL_SOURCES = frozenset({REAL, REAL_QUOTED, CORPUS, "mudou", "fbs", UCI})


def load_training_examples(
    data_dir: Path = DATA_DIR,
    corpus_dir: Path = CORPUS_DIR,
    real_dir: Path = REAL_DIR,
    sources: frozenset[str] = ALL_SOURCES,
) -> tuple[list[Example], dict[str, int]]:
    """All training sources, deduplicated (before any split)."""
    loaders = {
        REAL: lambda: load_real(real_dir),
        REAL_QUOTED: lambda: load_real_quoted(data_dir),
        CORPUS: lambda: load_corpus(corpus_dir),
        "mudou": lambda: load_mudou(data_dir),
        "fbs": lambda: load_fbs(data_dir),
        UCI: lambda: load_uci_training(data_dir),
        CHINESEHARM: lambda: load_chineseharm(data_dir),
    }
    examples = [e for name, load in loaders.items() if name in sources for e in load()]
    return deduplicate(examples)
