"""`make bench`: model load time, artifact size, per-check latency and throughput.

    python -m model.bench [--repeat 3]

Runs every project-corpus record through `Analyzer.check` (the full verdict, model included).
Figures are printed, never asserted: they depend on the machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence

import numpy as np

from model import data
from service.model import load_model
from service.paths import MODEL_PATH
from service.pipeline import Analyzer


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.bench", description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="passes over the corpus")
    args = parser.parse_args(argv)

    load_times = []
    for _ in range(5):
        started = time.perf_counter()
        load_model(MODEL_PATH)
        load_times.append(time.perf_counter() - started)
    started = time.perf_counter()
    analyzer = Analyzer.load()
    analyzer_load = time.perf_counter() - started

    records = [example.record for example in data.load_corpus()]
    if not records:
        print("no corpus records to time")
        return 1
    for record in records[:50]:  # warm caches (OpenCC, RE2) before timing
        analyzer.check(record)
    latencies = []
    wall_started = time.perf_counter()
    for _ in range(args.repeat):
        for record in records:
            started = time.perf_counter()
            analyzer.check(record)
            latencies.append(time.perf_counter() - started)
    wall = time.perf_counter() - wall_started
    values = np.array(latencies)
    kinds = [record.kind for record in records] * args.repeat
    sms = [lat for lat, kind in zip(latencies, kinds, strict=True) if kind == "sms"]
    calls = [lat for lat, kind in zip(latencies, kinds, strict=True) if kind == "call"]

    rows = [
        ("artifact size", f"{MODEL_PATH.stat().st_size / 1e6:.2f} MB"),
        ("model load (verify + unpickle), median of 5", _ms(statistics.median(load_times))),
        ("Analyzer.load (rules, lists, model)", _ms(analyzer_load)),
        ("checks timed", f"{len(values)} ({len(records)} corpus records x {args.repeat})"),
        ("latency p50 per check", _ms(float(np.percentile(values, 50)))),
        ("latency p95 per check", _ms(float(np.percentile(values, 95)))),
        ("latency p99 per check", _ms(float(np.percentile(values, 99)))),
        (
            "latency p50, SMS / call",
            f"{_ms(float(np.median(sms)))} / {_ms(float(np.median(calls))) if calls else 'n/a'}",
        ),
        ("throughput, one process", f"{len(values) / wall:.0f} checks/s"),
    ]
    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
