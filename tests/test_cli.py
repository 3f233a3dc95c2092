"""The dunscan CLI, run in-process and once as the installed console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.cli.main import main

SCAM = "【支付宝】您的花呗已逾期，请缴纳解冻费2000元，详询客服17123456789"
GENUINE = "【京东金融】您的白条本期应还426.30元，还款日12月1日，请打开京东金融App还款。拒收请回复R"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_check_prints_a_json_verdict(capsys) -> None:
    status, out, _ = run(capsys, "check", "--from", "17123456789", SCAM)
    verdict = json.loads(out)
    assert status == 0
    assert verdict["category"] == "scam"
    assert verdict["sender"]["type"] == "virtual_mobile"


def test_check_text_format_is_a_chinese_summary(capsys) -> None:
    status, out, _ = run(capsys, "check", "--from", "17123456789", "--format", "text", SCAM)
    assert status == 0
    assert out.startswith("【高风险·疑似诈骗】")
    assert "建议" in out


def test_check_reads_stdin(capsys, monkeypatch) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO(GENUINE))
    status, out, _ = run(capsys, "check", "--from", "95118", "-")
    assert status == 0
    assert json.loads(out)["category"] == "legit"


def test_check_call_record(capsys) -> None:
    status, out, _ = run(capsys, "check", "--call", "--from", "+95188", "--duration", "42")
    verdict = json.loads(out)
    assert status == 0
    assert verdict["kind"] == "call"
    assert verdict["sender"]["type"] == "international"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check"], "give the message text"),
        (["check", "--call"], "needs --from"),
        (["check", "   "], "give the message text"),
        (["check", "--format", "xml", "x"], "invalid choice"),
        (["score", "/no/such/file.jsonl"], "no such input file"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)
def test_unusable_arguments_exit_2_with_one_line(capsys, argv, message) -> None:
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1 and message in err


def test_score_jsonl_echoes_input_and_skips_bad_lines(tmp_path: Path, capsys) -> None:
    source = tmp_path / "in.jsonl"
    lines = [
        json.dumps({"id": "a1", "sender": "17123456789", "text": SCAM, "note": "kept"}),
        "{not json",
        json.dumps({"id": "a2", "sender": "95118", "text": GENUINE}),
        json.dumps({"id": "a3", "text": 42}),
        json.dumps({"id": "a4", "kind": "call", "sender": "+95188", "duration_s": 10}),
        json.dumps(["not", "an", "object"]),
    ]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    target = tmp_path / "out.jsonl"
    status, _, err = run(capsys, "score", str(source), "-o", str(target), "--quiet")
    assert status == 0
    rows = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [row["id"] for row in rows] == ["a1", "a2", "a4"]
    assert rows[0]["note"] == "kept" and rows[0]["verdict"]["category"] == "scam"
    assert rows[1]["verdict"]["category"] == "legit"
    assert rows[2]["verdict"]["kind"] == "call"
    assert "line 2: skipped: not valid JSON" in err
    assert "line 4: skipped: text" in err
    assert "line 6: skipped: expected a JSON object" in err
    assert "scored 3, skipped 3" in err


def test_score_strict_fails_when_lines_were_skipped(tmp_path: Path, capsys) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "hello"}\n{oops\n', encoding="utf-8")
    status, out, _ = run(capsys, "score", str(source), "--strict", "--quiet")
    assert status == 1
    assert json.loads(out.splitlines()[0])["verdict"]["category"] == "other"


def test_score_csv_in_and_out(tmp_path: Path, capsys) -> None:
    source = tmp_path / "in.csv"
    source.write_text(
        "id,kind,sender,text,duration_s\n"
        f"c1,sms,17123456789,{SCAM},\n"
        "c2,call,+95188,,30\n"
        "c3,call,+95188,,thirty\n",
        encoding="utf-8",
    )
    target = tmp_path / "out.csv"
    status, _, err = run(capsys, "score", str(source), "-o", str(target), "--quiet")
    assert status == 0
    import csv

    with target.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["id"] for row in rows] == ["c1", "c2"]
    assert rows[0]["category"] == "scam" and rows[0]["claimed_brands"] == "alipay"
    assert "line 4: skipped: duration_s" in err


def test_console_script_is_installed() -> None:
    script = shutil.which("dunscan", path=str(Path(sys.executable).parent))
    assert script is not None
    result = subprocess.run(
        [script, "check", "--from", "95118", GENUINE],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["category"] == "legit"


def _real_records_file(path: Path) -> Path:
    """Every eighth real and corpus record as a JSONL input (a mix of both, about four scoring
    chunks: enough for two workers to interleave, a fraction of the whole's CI time)."""
    from model import data

    with path.open("w", encoding="utf-8") as handle:
        for example in (data.load_real() + data.load_corpus())[::8]:
            row = example.record.model_dump(mode="json", exclude_none=True)
            handle.write(json.dumps({**row, "id": example.uid}, ensure_ascii=False) + "\n")
    return path


def test_score_with_jobs_gives_the_same_output_in_the_same_order(capsys, tmp_path: Path) -> None:
    source = _real_records_file(tmp_path / "in.jsonl")
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    assert run(capsys, "score", str(source), "-o", str(one), "--quiet")[0] == 0
    assert run(capsys, "score", str(source), "-o", str(two), "--quiet", "--jobs", "2")[0] == 0
    lines = one.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(source.read_text(encoding="utf-8").splitlines()) > 256
    assert two.read_text(encoding="utf-8") == one.read_text(encoding="utf-8")


def test_score_with_jobs_reports_records_the_workers_refuse_by_line(capsys, tmp_path: Path) -> None:
    # Records are validated in the worker processes: a refused one is still reported with its
    # line number, and every other record keeps its place in the output.
    source = _real_records_file(tmp_path / "in.jsonl")
    lines = source.read_text(encoding="utf-8").splitlines()
    lines.insert(300, json.dumps({"id": "bad", "kind": "call"}))
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    status, _, err = run(capsys, "score", str(source), "-o", str(out), "--quiet", "--jobs", "2")
    assert status == 0
    assert "line 301: skipped: " in err
    assert f"scored {len(lines) - 1}, skipped 1" in err
    ids = [json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert ids == [json.loads(line)["id"] for number, line in enumerate(lines) if number != 300]


def test_score_refuses_zero_jobs(capsys, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"text": GENUINE}) + "\n", encoding="utf-8")
    status, _, err = run(capsys, "score", str(source), "--jobs", "0")
    assert status == 2
    assert "--jobs must be at least 1" in err
