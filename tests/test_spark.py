"""The Spark batch scorer gives `dunscan score`'s verdicts (local[2], two executor processes).

Needs the `spark` extra (`pip install -e '.[spark]'`, `make test-spark`) and a Java runtime;
skipped without them.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

pytest.importorskip("pyspark")
pytest.importorskip("pandas")
pytest.importorskip("pyarrow")
if shutil.which("java") is None:
    pytest.skip("no Java runtime for Spark", allow_module_level=True)

from model import data
from service.cli.main import main as cli
from service.cli.spark import score_dataframe

# Spark and py4j warn about their own internals (deprecations, Arrow fallbacks): not ours.
pytestmark = pytest.mark.filterwarnings("ignore")


def test_spark_verdicts_equal_dunscan_score(tmp_path: Path, capsys) -> None:
    from pyspark.sql import SparkSession

    source = tmp_path / "in.jsonl"
    with source.open("w", encoding="utf-8") as handle:
        for example in data.load_real() + data.load_corpus()[:300]:
            row = example.record.model_dump(mode="json", exclude_none=True)
            handle.write(json.dumps({**row, "id": example.uid}, ensure_ascii=False) + "\n")
        handle.write(json.dumps({"id": "bad", "kind": "fax"}) + "\n")
    expected_file = tmp_path / "expected.jsonl"
    assert cli(["score", str(source), "-o", str(expected_file), "--quiet"]) == 0
    capsys.readouterr()
    expected = {}
    for line in expected_file.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        expected[row["id"]] = row["verdict"]

    os.environ["PYSPARK_PYTHON"] = sys.executable  # executors run this interpreter
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("dunscan-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    try:
        frame = spark.read.json(str(source)).repartition(4)
        rows = [row.asDict() for row in score_dataframe(frame).collect()]
    finally:
        spark.stop()

    got = {row["id"]: row for row in rows}
    assert set(got) == set(expected) | {"bad"}
    assert got["bad"]["error"] and got["bad"]["category"] is None
    for uid, verdict in expected.items():
        row = got[uid]
        assert row["error"] is None, uid
        assert json.loads(row["verdict"]) == verdict, uid
        assert (row["category"], row["level"]) == (verdict["category"], verdict["level"])
        assert row["risk"] == pytest.approx(verdict["risk"], abs=1e-9)
