"""The Spark batch scorer gives `dunscan score`'s verdicts (local[2], two executor processes).

Needs the `spark` extra (`make test` installs it) and a Java runtime (`.ci/run` installs one);
skipped without them, except in CI (CI=true), where a missing part is a failure: this test was
skipped everywhere once, and the scorer broke unseen.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from model import data
from service.cli.main import main as cli
from service.cli.spark import score_dataframe  # imports pyspark only when called


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true"):
        pytest.fail(f"{reason} in CI, where .ci/run and make test install it", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


for _module in ("pyspark", "pandas", "pyarrow"):
    try:
        __import__(_module)
    except ImportError:
        _missing(f"{_module} is not installed (the spark extra)")
if shutil.which("java") is None:
    _missing("no Java runtime for Spark")

# Spark and py4j warn about their own internals (deprecations, Arrow fallbacks): not ours.
pytestmark = pytest.mark.filterwarnings("ignore")


def test_spark_verdicts_equal_dunscan_score(tmp_path: Path, capsys) -> None:
    from pyspark.sql import SparkSession

    source = tmp_path / "in.jsonl"
    with source.open("w", encoding="utf-8") as handle:
        # Every third real row and 300 corpus rows: about a dozen chunks over four partitions.
        for example in data.load_real()[::3] + data.load_corpus()[:300]:
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
