"""Derive the Traditional-character and obfuscated rows of variants.jsonl from hand-written rows.

Real senders dodge keyword filters (spaces or symbols between characters, full-width digits, emoji,
zero-width characters, V信 for 微信, Cyrillic look-alikes) and some phones show Traditional
characters. The detector must see through all of it, so the corpus carries such rows. They are
derived here, deterministically, from the plain rows written by hand; each derived row keeps the
batch of its source row (so a held-out batch holds out its variants too) and names it in
`derived_from`. Run `python -m model.corpus.variants` to rewrite variants.jsonl.
"""

from __future__ import annotations

import random
import re
from typing import Any

import opencc

from model.corpus.rows import CORPUS_DIR, load_rows, write_rows

VARIANTS_FILE = CORPUS_DIR / "variants.jsonl"
SEED = 20241122

# How many rows of each label get a derived variant.
TRADITIONAL_PER_LABEL = {"scam": 38, "legit": 18, "abusive": 12, "other": 8}
OBFUSCATED_PER_LABEL = {"scam": 50, "abusive": 14, "other": 4}

# Words senders split up to slip past filters: the strongest signals first.
KEY_TERMS = (
    "解冻费", "解冻金", "解冻", "保证金", "验证金", "手续费", "服务费",
    "工本费", "刷流水", "验证码", "密码", "有效期", "安全账户", "监管账户",
    "核验账户", "注销", "学生账户", "校园贷", "征信", "屏幕共享", "共享屏幕",
    "腾讯会议", "瞩目", "向日葵", "钉钉", "双向关停", "清空额度", "额度",
    "百万保障", "备用金", "退款", "转账", "客服", "专员", "逾期",
    "起诉", "法院", "公安", "通讯录", "上门", "曝光", "父母",
    "单位", "老赖", "欠款", "还款", "联系人",
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


def _pick(rows: list[dict[str, Any]], label: str, count: int, rng: random.Random) -> list[dict]:
    pool = [r for r in rows if r["label"] == label]
    return rng.sample(pool, k=min(count, len(pool)))


def build_variants(base_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rng = random.Random(SEED)
    sources = [
        r for r in base_rows
        if r["kind"] == "sms" and r["variant"] in ("plain", "short") and "derived_from" not in r
    ]
    # Compared without whitespace: a variant must differ by more than spacing.
    seen = {_squeezed(r["text"]) for r in base_rows if r["kind"] == "sms"}
    # Mostly generic Traditional; some Taiwan and Hong Kong forms, as phones there show them.
    converters = [opencc.OpenCC(name) for name in ("s2t", "s2t", "s2tw", "s2hk")]
    derived: list[dict[str, Any]] = []

    def add(source: dict[str, Any], text: str, variant: str, prefix: str) -> None:
        if _squeezed(text) in seen:
            return
        seen.add(_squeezed(text))
        number = sum(1 for r in derived if r["variant"] == variant) + 1
        derived.append(
            {
                **{k: source[k] for k in ("kind", "sender")},
                "id": f"dc-{prefix}-{number:04d}",
                "text": text,
                **{k: source[k] for k in ("label", "brand", "scenario")},
                "variant": variant,
                "batch": source["batch"],
                "derived_from": source["id"],
                "provenance": PROVENANCE.format(source=source["id"]),
            }
        )

    for label, count in TRADITIONAL_PER_LABEL.items():
        for source in _pick(sources, label, count, rng):
            converter = rng.choice(converters)
            add(source, converter.convert(source["text"]), "traditional", "trad")
    for label, count in OBFUSCATED_PER_LABEL.items():
        # Obfuscation only means something where there are words to hide, and among unrelated
        # messages only advertisers do it.
        candidates = [
            r for r in sources
            if _key_spans(r["text"]) and (label != "other" or r["scenario"] in ("ad", "loan_ad"))
        ]
        for source in _pick(candidates, label, count, rng):
            add(source, obfuscate(source["text"], rng), "obfuscated", "obf")
    order = ("kind", "id", "sender", "text", "label", "brand", "scenario", "variant", "batch")
    return [{**{k: row[k] for k in order}, **row} for row in derived]


def main() -> None:
    base = [r for r in load_rows() if "derived_from" not in r]
    rows = build_variants(base)
    write_rows(VARIANTS_FILE, rows)
    print(f"wrote {len(rows)} rows to {VARIANTS_FILE.name}")


if __name__ == "__main__":
    main()
