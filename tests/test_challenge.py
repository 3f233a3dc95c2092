"""The challenge sets are valid, kept out of training, and scored by the real verdict."""

from __future__ import annotations

import json
from pathlib import Path

from model import challenge, data
from service.engine.pipeline import Analyzer
from service.engine.schemas import CATEGORIES, parse_record

FILES = sorted(challenge.CHALLENGE_DIR.glob("*.jsonl"))


def test_every_challenge_row_is_a_valid_labelled_record() -> None:
    assert FILES
    for path in FILES:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        assert len({row["id"] for row in rows}) == len(rows)
        for row in rows:
            assert row["label"] in CATEGORIES
            assert row["provenance"].startswith("written by the dunscan project")
            parse_record({k: row[k] for k in ("kind", "sender", "text", "duration_s") if k in row})


def test_training_never_reads_the_challenge_sets() -> None:
    corpus = {path.resolve() for path in data.corpus_files()}
    assert not corpus & {path.resolve() for path in FILES}
    challenge_texts = {
        json.loads(line).get("text") for path in FILES for line in path.read_text().splitlines()
    } - {None}
    assert not challenge_texts & {example.record.text for example in data.load_corpus()}


def test_score_file_reports_the_verdicts_figures(analyzer: Analyzer, tmp_path: Path) -> None:
    rows = [
        {
            "id": "t1",
            "sender": "95188",
            "label": "legit",
            "text": "【支付宝】您的花呗本期账单1,280.00元将于11月25日到期，请在支付宝App还款。",
        },
        {
            "id": "t2",
            "sender": "17123456789",
            "label": "scam",
            "text": "【支付宝】您的借呗已逾期，账户将被冻结，请缴纳解冻费后联系专员",
        },
    ]
    path = tmp_path / "two.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    report = challenge.score_file(analyzer, path)
    assert "| macro F1 | 1.000 |" in report
    assert "| scam caught at risk >= 0.3 / 0.7 | 1.000 / 1.000 |" in report
    assert "| genuine (legit + other) flagged at risk >= 0.3 / 0.7 | 0.000 / 0.000 |" in report
