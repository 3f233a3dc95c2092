"""Derive the Traditional-character and obfuscated rows of variants.jsonl from hand-written rows.

Real senders dodge keyword filters (spaces or symbols between characters, full-width digits, emoji,
zero-width characters, V信 for 微信, Cyrillic look-alikes) and some phones show Traditional
characters. The detector must see through all of it, so the corpus carries such rows. They are
derived here, deterministically, from the plain rows written by hand; each derived row keeps the
batch of its source row (so a held-out batch holds out its variants too) and names it in
`derived_from`. Run `python -m model.corpus.variants` to rewrite variants.jsonl.
"""

from __future__ import annotations

import hashlib
import random
import re
from typing import Any

import opencc

from model.corpus.rows import CORPUS_DIR, load_rows, write_rows

VARIANTS_FILE = CORPUS_DIR / "variants.jsonl"
SEED = 20241122

# Share of each label's hand-written rows that get a derived variant. Selection hashes the source
# id, so adding rows never changes which existing rows are derived, nor how.
TRADITIONAL_SHARE = {"scam": 0.13, "legit": 0.09, "abusive": 0.10, "other": 0.05}
OBFUSCATED_SHARE = {"scam": 0.18, "abusive": 0.12, "other": 0.12}

# Words senders split up to slip past filters: the strongest signals first.
KEY_TERMS = (
    "解冻费",
    "解冻金",
    "解冻",
    "保证金",
    "验证金",
    "手续费",
    "服务费",
    "工本费",
    "刷流水",
    "验证码",
    "密码",
    "有效期",
    "安全账户",
    "监管账户",
    "核验账户",
    "注销",
    "学生账户",
    "校园贷",
    "征信",
    "屏幕共享",
    "共享屏幕",
    "腾讯会议",
    "瞩目",
    "向日葵",
    "钉钉",
    "双向关停",
    "清空额度",
    "额度",
    "百万保障",
    "备用金",
    "退款",
    "转账",
    "客服",
    "专员",
    "逾期",
    "起诉",
    "法院",
    "公安",
    "通讯录",
    "上门",
    "曝光",
    "父母",
    "单位",
    "老赖",
    "欠款",
    "还款",
    "联系人",
)
FILLERS = (" ", "*", ".", "-", "/", "_", "·")
EMOJI = ("⚠️", "❗", "💰", "📞", "✅", "🔥", "👉", "😊", "‼️", "🙏")
ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\ufeff")
# Latin letter -> Cyrillic look-alike.
HOMOGLYPHS = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "y": "у", "i": "і"}
CONTACT_SWAPS = (
    ("微信", ("V信", "薇信", "威信", "vx", "徽信", "wx")),
    ("QQ", ("扣扣", "企鹅号", "叩叩", "Ｑ Ｑ")),
)
PROVENANCE = (
    "written by the dunscan project (synthetic); derived by model/corpus/variants.py from {source}"
)


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _key_spans(text: str) -> list[tuple[int, int]]:
    """Non-overlapping spans of KEY_TERMS in text, longest terms taking precedence."""
    taken = [False] * len(text)
    spans = []
    for term in sorted(KEY_TERMS, key=len, reverse=True):
        for match in re.finditer(re.escape(term), text):
            start, end = match.span()
            if not any(taken[start:end]):
                spans.append((start, end))
                taken[start:end] = [True] * (end - start)
    return sorted(spans)


def _split_terms(text: str, rng: random.Random, joiners: tuple[str, ...]) -> str:
    joiner = rng.choice(joiners)
    pieces, last = [], 0
    for start, end in _key_spans(text):
        pieces.append(text[last:start])
        pieces.append(joiner.join(text[start:end]))
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def _fullwidth_digits(text: str, rng: random.Random) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if ch.isdigit() and ch.isascii() else ch for ch in text)


def _emoji(text: str, rng: random.Random) -> str:
    clauses = re.split(r"([，。！？])", text)
    out = []
    for part in clauses:
        out.append(part)
        if part in "，。！？" and part and rng.random() < 0.5:
            out.append(rng.choice(EMOJI))
    return rng.choice(EMOJI) + "".join(out)


def _contact_words(text: str, rng: random.Random) -> str:
    for word, swaps in CONTACT_SWAPS:
        text = text.replace(word, rng.choice(swaps))
    return text


def _homoglyphs(text: str, rng: random.Random) -> str:
    return "".join(HOMOGLYPHS.get(ch, ch) if rng.random() < 0.7 else ch for ch in text)


def _spaced_digits(text: str, rng: random.Random) -> str:
    return re.sub(r"\d{4,}", lambda m: " ".join(m.group()), text)


def obfuscate(text: str, rng: random.Random) -> str:
    """Apply a term-splitting technique plus one or two surface tricks, as real senders mix them."""
    split = rng.choice(
        [
            lambda t: _split_terms(t, rng, FILLERS),
            lambda t: _split_terms(t, rng, ZERO_WIDTH),
        ]
    )
    extras = [_fullwidth_digits, _emoji, _contact_words, _homoglyphs, _spaced_digits]
    out = split(text)
    for trick in rng.sample(extras, k=rng.choice((1, 2))):
        out = trick(out, rng)
    return out


def _chosen(row_id: str, purpose: str, share: float) -> bool:
    digest = hashlib.sha256(f"{SEED}:{purpose}:{row_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def _derived_row(source: dict[str, Any], text: str, variant: str, prefix: str) -> dict[str, Any]:
    row = {**source, "text": text, "variant": variant}
    row["id"] = source["id"].replace("dc-", f"dc-{prefix}-", 1)
    row["derived_from"] = source["id"]
    row["provenance"] = PROVENANCE.format(source=source["id"])
    return row


def build_variants(base_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Derived rows for the hand-written SMS rows in base_rows, in base order."""
    # Compared without whitespace: a variant must differ by more than spacing.
    seen = {_squeezed(r["text"]) for r in base_rows if r["kind"] == "sms"}
    # Mostly generic Traditional; some Taiwan and Hong Kong forms, as phones there show them.
    converters = [opencc.OpenCC(name) for name in ("s2t", "s2t", "s2tw", "s2hk")]
    derived: list[dict[str, Any]] = []

    def add(row: dict[str, Any]) -> None:
        if _squeezed(row["text"]) not in seen:
            seen.add(_squeezed(row["text"]))
            derived.append(row)

    for source in base_rows:
        if source["kind"] != "sms" or source["variant"] not in ("plain", "short"):
            continue
        label, rng = source["label"], random.Random(f"{SEED}:{source['id']}")
        if _chosen(source["id"], "traditional", TRADITIONAL_SHARE.get(label, 0.0)):
            text = rng.choice(converters).convert(source["text"])
            add(_derived_row(source, text, "traditional", "trad"))
        # Obfuscation only means something where there are words to hide, and among unrelated
        # messages only advertisers do it.
        hideable = _key_spans(source["text"]) and (
            label != "other" or source["scenario"] in ("ad", "loan_ad")
        )
        if hideable and _chosen(source["id"], "obfuscated", OBFUSCATED_SHARE.get(label, 0.0)):
            add(_derived_row(source, obfuscate(source["text"], rng), "obfuscated", "obf"))
    return derived


def main() -> None:
    base = [r for r in load_rows() if "derived_from" not in r]
    rows = build_variants(base)
    write_rows(VARIANTS_FILE, rows)
    print(f"wrote {len(rows)} rows to {VARIANTS_FILE.name}")


if __name__ == "__main__":
    main()
