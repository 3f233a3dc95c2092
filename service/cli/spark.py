"""The batch scorer on Apache Spark, for archives one machine cannot score in time.

    pip install 'dunscan[spark]'
    spark-submit --master yarn service/cli/spark.py IN OUT [--input-format parquet|csv|json]
                 [--output-format parquet|csv|json] [--lang zh|en] [--no-model]

IN holds one record per row (the fields of `dunscan score`: id, kind, sender, text, duration_s,
direction; other columns are kept). Each Spark task scores its rows with `mapInPandas` in chunks
through `Analyzer.check_many`, one `Analyzer` per executor Python process (loaded on its first
task, then reused), so the verdicts are exactly those of `dunscan score`. OUT gets every input
column plus risk, level, category, signal_ids, claimed_brands, advice, the whole verdict as JSON
(`verdict`) and `error` for a row that is not a valid record (its verdict columns are null).

The executors need the package and its data (rules/, model/artifact/) installed or shipped
(`--py-files`, a container image, or DUNSCAN_RULES_DIR / DUNSCAN_MODEL_PATH on shared storage).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator, Sequence
from typing import Any

# The columns a record is built from; the others pass through untouched.
RECORD_FIELDS = ("id", "kind", "sender", "text", "received_at", "duration_s", "direction")
VERDICT_COLUMNS = (
    ("risk", "double"),
    ("level", "string"),
    ("category", "string"),
    ("signal_ids", "string"),
    ("claimed_brands", "string"),
    ("advice", "string"),
    ("verdict", "string"),
    ("error", "string"),
)
CHUNK = 256

_ANALYZER: Any = None


def _analyzer(use_model: bool) -> Any:
    """One analyzer per executor Python process (Spark reuses the worker between tasks)."""
    global _ANALYZER
    if _ANALYZER is None:
        from service.engine.pipeline import Analyzer

        _ANALYZER = Analyzer.load(use_model=use_model)
    return _ANALYZER


def _clean(value: Any) -> Any:
    """pandas/Arrow values back to what a JSON record holds (NaN and NaT are missing)."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _record_fields(row: dict[str, Any]) -> dict[str, Any]:
    fields = {name: _clean(row.get(name)) for name in RECORD_FIELDS if name in row}
    fields = {name: value for name, value in fields.items() if value not in (None, "")}
    if "id" in fields:
        fields["id"] = str(fields["id"])
    return fields


def score_rows(rows: list[dict[str, Any]], lang: str, use_model: bool) -> list[dict[str, Any]]:
    """Verdict columns for each row, in order (the work of one chunk)."""
    from pydantic import ValidationError

    from service.cli.main import _validation_message
    from service.cli.records_io import verdict_cells
    from service.engine.schemas import parse_record

    out: list[dict[str, Any]] = [dict.fromkeys(name for name, _ in VERDICT_COLUMNS) for _ in rows]
    valid: list[tuple[int, Any]] = []
    for index, row in enumerate(rows):
        try:
            valid.append((index, parse_record(_record_fields(row))))
        except ValidationError as error:
            out[index]["error"] = _validation_message(error)
    verdicts = _analyzer(use_model).check_many([record for _, record in valid], lang)
    for (index, _), verdict in zip(valid, verdicts, strict=True):
        dumped = verdict.model_dump(mode="json")  # the form `dunscan score`'s writers take
        cells = verdict_cells(dumped)  # `dunscan score`'s own columns, the same values
        out[index].update({name: cells[name] for name in out[index] if name in cells})
        out[index]["verdict"] = json.dumps(dumped, ensure_ascii=False)
    return out


def score_frames(frames: Iterator[Any], lang: str = "zh", use_model: bool = True) -> Iterator[Any]:
    """The `mapInPandas` function: pandas DataFrames in, the same rows with verdicts out."""
    import pandas as pd

    for frame in frames:
        rows = frame.to_dict("records")
        scored: list[dict[str, Any]] = []
        for start in range(0, len(rows), CHUNK):
            scored.extend(score_rows(rows[start : start + CHUNK], lang, use_model))
        verdicts = pd.DataFrame(scored, columns=[name for name, _ in VERDICT_COLUMNS])
        yield pd.concat([frame.reset_index(drop=True), verdicts], axis=1)


def score_dataframe(frame: Any, lang: str = "zh", use_model: bool = True) -> Any:
    """A Spark DataFrame of records -> the same rows with the verdict columns."""
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    types = {"double": DoubleType(), "string": StringType()}
    taken = set(frame.columns)
    clash = [name for name, _ in VERDICT_COLUMNS if name in taken]
    if clash:
        raise ValueError(f"input already has verdict columns: {', '.join(clash)}")
    schema = StructType(
        list(frame.schema.fields)
        + [StructField(name, types[kind], True) for name, kind in VERDICT_COLUMNS]
    )
    return frame.mapInPandas(lambda frames: score_frames(frames, lang, use_model), schema)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spark-submit service/cli/spark.py", description=__doc__)
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--input-format", choices=["parquet", "csv", "json"], default="parquet")
    parser.add_argument("--output-format", choices=["parquet", "csv", "json"], default="parquet")
    parser.add_argument("--lang", choices=["zh", "en"], default="zh")
    parser.add_argument("--no-model", action="store_true")
    args = parser.parse_args(argv)

    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("dunscan-score").getOrCreate()
    reader = spark.read
    if args.input_format == "csv":
        reader = reader.option("header", True).option("encoding", "UTF-8")
    frame = getattr(reader, args.input_format)(args.input)
    scored = score_dataframe(frame, args.lang, not args.no_model)
    writer = scored.write.mode("errorifexists")
    if args.output_format == "csv":
        writer = writer.option("header", True)
    getattr(writer, args.output_format)(args.output)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
