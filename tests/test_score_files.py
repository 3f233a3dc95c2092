"""`dunscan score` on files as people have them: stdin, Excel's Chinese CSV, every column kept,
.xlsx out, and clear refusals. Real files written in the encodings Excel and phones produce."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook

from service.cli.main import main
from service.cli.records_io import SAMPLE_BYTES, JsonlWriter, Row, detect_encoding

SCAM = "【支付宝】您的花呗已逾期，请缴纳解冻费2000元，详询客服17123456789"
GENUINE = "【京东金融】您的白条本期应还426.30元，还款日12月1日，请打开京东金融App还款。拒收请回复R"
# What a person exports: the contract's fields, a blank cell in the first row, and columns of
# their own (one named like a verdict column).
CSV_TEXT = (
    "id,kind,sender,text,duration_s,direction,备注,category\n"
    f"c1,sms,17123456789,{SCAM},,,妈妈手机,我标的:诈骗\n"
    "c2,call,+95188,,30,incoming,来电,\n"
)
# The input file's columns, in order: every output keeps them first, its own "category" included.
INPUT_COLUMNS = ["id", "kind", "sender", "text", "duration_s", "direction", "备注", "category"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_taiwan_excel_csv_in_big5_is_read_not_turned_into_gbk_nonsense(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "【中國信託】您的貸款已逾期，請立即繳納手續費，否則將影響信用，客服0912345678"
    source = tmp_path / "in.csv"
    source.write_bytes(f"id,text\nt1,{text}\n".encode("cp950"))
    status, out, err = run(capsys, "score", str(source), "--quiet", "--no-model")
    assert status == 0, err
    (row,) = csv.DictReader(io.StringIO(out))
    assert row["text"] == text


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8-sig", "utf-8", "utf-16"])
def test_csv_in_every_encoding_excel_writes_keeps_every_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], encoding: str
) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(CSV_TEXT.encode(encoding))
    target = tmp_path / "out.csv"
    status, _, err = run(capsys, "score", str(source), "-o", str(target), "--quiet")
    assert status == 0, err
    rows = _rows(target)
    assert list(rows[0])[: len(INPUT_COLUMNS)] == INPUT_COLUMNS
    assert [row["id"] for row in rows] == ["c1", "c2"]
    assert rows[0]["text"] == SCAM  # decoded, not mojibake
    assert rows[0]["备注"] == "妈妈手机" and rows[0]["category"] == "我标的:诈骗"
    assert rows[0]["dunscan_category"] == "scam"  # the verdict never overwrites an input column
    assert rows[0]["sender_carrier"] and rows[0]["sender_location"] is not None  # 归属地 columns
    assert rows[1]["duration_s"] == "30" and rows[1]["direction"] == "incoming"
    assert rows[1]["dunscan_category"] in {"legit", "other", "scam", "abusive"}


def test_gb18030_beyond_gbk_and_a_late_multibyte_character(tmp_path: Path, capsys) -> None:
    # A character GBK lacks (𠀀, four bytes in GB18030), placed so that the detection sample
    # ends in the middle of a character.
    filler = "a" * (SAMPLE_BYTES - 40)
    text = f"id,text\nx,{filler}\ny,【支付宝】𠀀您的花呗已逾期，请缴纳解冻费\n"
    source = tmp_path / "in.csv"
    source.write_bytes(text.encode("gb18030"))
    status, out, err = run(capsys, "score", str(source), "--quiet", "--no-model")
    assert status == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[1]["text"] == "【支付宝】𠀀您的花呗已逾期，请缴纳解冻费"


def test_stdin_to_stdout_with_dashes(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "s1", "sender": "17123456789", "text": SCAM}, ensure_ascii=False),
        json.dumps({"id": "s2", "sender": "95118", "text": GENUINE}, ensure_ascii=False),
    ]
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "score", "-", "-o", "-", "--quiet"],
        input=("\n".join(lines) + "\n").encode("utf-8"),
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    rows = [json.loads(line) for line in result.stdout.decode("utf-8").splitlines()]
    assert [(r["id"], r["verdict"]["category"]) for r in rows] == [("s1", "scam"), ("s2", "legit")]


def test_stdin_csv_in_gbk_is_recognised(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(CSV_TEXT.encode("gbk"))))
    status, out, err = run(capsys, "score", "-", "--quiet", "--no-model")
    assert status == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0]["备注"] == "妈妈手机" and rows[0]["dunscan_category"] == "scam"


def test_xlsx_output_is_a_real_workbook_with_text_kept_as_text(tmp_path: Path, capsys) -> None:
    source = tmp_path / "in.csv"
    # A cell that Excel would run as a formula if it were stored as one.
    source.write_text(CSV_TEXT + '"c3",sms,95118,"=HYPERLINK(""http://x.cn"")",,,,\n', "utf-8")
    target = tmp_path / "out.xlsx"
    status, _, err = run(capsys, "score", str(source), "-o", str(target), "--quiet")
    assert status == 0, err
    sheet = load_workbook(target, read_only=True).active
    table = [list(row) for row in sheet.iter_rows(values_only=True)]
    header, rows = table[0], table[1:]
    assert header[: len(INPUT_COLUMNS)] == INPUT_COLUMNS
    assert "dunscan_category" in header and "risk" in header
    assert [row[0] for row in rows] == ["c1", "c2", "c3"]
    assert rows[0][header.index("dunscan_category")] == "scam"
    risk = rows[0][header.index("risk")]
    assert isinstance(risk, int | float) and 0 <= risk <= 1  # a number cell, not text
    assert rows[2][3] == '=HYPERLINK("http://x.cn")'
    workbook_xml = subprocess.run(
        ["unzip", "-p", str(target), "xl/worksheets/sheet1.xml"], capture_output=True, check=False
    ).stdout
    if workbook_xml:  # stored as a string cell, never as <f>formula</f>
        assert b"<f>" not in workbook_xml


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["-o", "out.txt"],
            "unknown extension '.txt'; use .csv, .json, .jsonl, .ndjson, .tsv, .xlsx",
        ),
        (["-o", "out"], "unknown extension '(none)'"),
        (["--output-format", "xlsx"], "an .xlsx workbook is written to a file"),
        (["--encoding", "klingon"], "unknown encoding 'klingon'"),
    ],
)
def test_unusable_outputs_are_refused_in_one_line(
    tmp_path: Path, capsys, monkeypatch, argv: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.jsonl").write_text('{"text": "还款"}\n', encoding="utf-8")
    status, out, err = run(capsys, "score", "in.jsonl", "--quiet", *argv)
    assert status == 2
    assert out == "" and err.count("\n") == 1 and message in err
    assert not (tmp_path / "out.txt").exists()


def test_an_unknown_input_extension_is_refused(tmp_path: Path, capsys) -> None:
    source = tmp_path / "in.xls"
    source.write_bytes(b"\xd0\xcf\x11\xe0")
    status, _, err = run(capsys, "score", str(source), "--quiet")
    assert status == 2 and "unknown extension '.xls'" in err


def test_text_in_no_known_encoding_is_refused(tmp_path: Path, capsys) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"text": "\xff\xfe\xff"}\n')  # 0xFF starts no UTF-8 or GB18030 character
    status, _, err = run(capsys, "score", str(source), "--quiet")
    assert status == 2
    assert "not UTF-8, GBK/GB18030 or Big5 text" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("data", "complete", "expected"),
    [
        ("还款".encode("gbk"), True, "gb18030"),  # too short to tell from Big5: mainland default
        ("明天还款，张伟".encode("gbk"), True, "gb18030"),
        ("【中國信託】您的貸款已逾期，請立即繳納手續費".encode("cp950"), True, "cp950"),
        ("还款".encode(), True, "utf-8"),
        ("还款".encode()[:-1], False, "utf-8"),  # a sample cut mid-character
        ("还款".encode("utf-8-sig"), True, "utf-8-sig"),
        ("还款".encode("utf-16"), True, "utf-16"),
        (b"id,text\n", True, "utf-8"),
    ],
)
def test_detect_encoding(data: bytes, complete: bool, expected: str) -> None:
    assert detect_encoding(data, complete) == expected


def test_spark_rows_carry_the_columns_and_verdict_dunscan_score_writes(tmp_path: Path) -> None:
    # service.cli.spark.score_rows (what each Spark executor runs; no pyspark needed to call it)
    # against the CSV and JSONL that `dunscan score` writes for the same records.
    from service.cli.spark import score_rows

    rows = [
        {"id": "a", "sender": "+86 171 2345 6789", "text": "【支付宝】请缴纳解冻费500元"},
        {"id": "b", "sender": "95588", "text": "【工商银行】您的信用卡本期账单已出，请按时还款"},
        {"id": "c", "kind": "call"},  # refused: a call needs its number
    ]
    source = tmp_path / "in.jsonl"
    source.write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8"
    )
    assert main(["score", str(source), "-o", str(tmp_path / "out.csv"), "--quiet"]) == 0
    assert main(["score", str(source), "-o", str(tmp_path / "out.jsonl"), "--quiet"]) == 0
    with (tmp_path / "out.csv").open(encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    written = [
        json.loads(line)["verdict"]
        for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    ]

    scored = score_rows(rows, "zh", True)
    assert scored[2]["error"] and scored[2]["verdict"] is None
    for spark_row, csv_row, verdict in zip(scored[:2], table, written, strict=True):
        assert spark_row["error"] is None
        assert json.loads(spark_row["verdict"]) == verdict
        for name in ("level", "category", "signal_ids", "claimed_brands", "advice"):
            assert spark_row[name] == csv_row[name], name
        assert spark_row["risk"] == float(csv_row["risk"])


def test_jsonl_lines_are_the_same_whether_the_verdict_comes_as_a_dict_or_as_text() -> None:
    """`dunscan score` hands the JSONL writer verdicts its workers already serialised: each
    line must be byte for byte the one written from the dict, whatever the input object."""
    verdict = {
        "risk": 0.91,
        "level": "high",
        "signals": [{"id": "fee_unfreeze", "evidence": "解冻费"}],
    }
    originals = [
        {"id": "a", "text": "请缴纳解冻费", "extra": [1, {"x": None}]},
        {},  # nothing for the verdict to follow
        {"text": "x", "verdict": "old", "after": 1},  # an input "verdict" is replaced in place
    ]
    for original in originals:
        row = Row(line=1, original=original, fields=original)
        from_dict, from_text = io.StringIO(), io.StringIO()
        JsonlWriter(from_dict).write(row, verdict)
        JsonlWriter(from_text).write_text(row, json.dumps(verdict, ensure_ascii=False))
        assert from_text.getvalue() == from_dict.getvalue()
        assert json.loads(from_text.getvalue())["verdict"] == verdict
