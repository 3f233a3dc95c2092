"""`make bench`: dunscan against the bare TF-IDF + LogisticRegression anchor, on the same messages.

    python -m model.bench [--repeat 3] [--no-processes]

The messages are every record of model/corpus and model/real. The anchor is what a user would
build: TfidfVectorizer(analyzer="char", ngram_range=(1, 3)) + LogisticRegression, fitted here on
those messages' texts and labels; it reads the raw text only (no normalisation, rules, numbers
or explanation). Printed, never asserted: the figures depend on the machine and its load, so
each timing also shows the CPU time of this process where that is the fairer figure.

Rows: one message in-process (p50/p99 of `Analyzer.check` vs one-row `predict_proba`), a batch
in-process (`Analyzer.check_many` vs one transform + `predict_proba`), `dunscan score` with
--jobs 1 and 2 (separate processes, start-up included) against the anchor's batch rate,
`Analyzer.load`, memory, and a whole `dunscan check` process. Ratios are dunscan / anchor:
below 1 is faster for latencies, above 1 is faster for rates.

The analyzer is timed as a server worker runs it: loaded, `warm()`ed, and its objects frozen out
of the garbage collector's way after the warm-up (gunicorn_conf.pre_fork does both). Memory is
the RSS of a separate process that imports only the engine (not scikit-learn, not the anchor),
loads and warms it, then checks every message twice; `make bench-http` shows the real workers'.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from model import data
from service.paths import MODEL_PATH, REPO_ROOT

CHECK_SAMPLE = "【支付宝】您的花呗已逾期，请立即缴纳解冻费2000元，详询专员17123456789"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _percentiles(values: Sequence[float]) -> tuple[float, float]:
    array = np.array(values)
    return float(np.percentile(array, 50)), float(np.percentile(array, 99))


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(function: Callable[[], Any]) -> tuple[float, float]:
    """(wall, CPU) seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def _anchor(examples: list[data.Example]) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    texts = [e.record.text or "" for e in examples]
    anchor = make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3)), LogisticRegression(max_iter=1000)
    )
    anchor.fit(texts, [e.label for e in examples])
    return anchor


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _score_process(path: Path, jobs: int) -> tuple[float, float, str]:
    """Wall and CPU seconds (its workers included) of a whole `dunscan score` process; "" or
    why it could not run."""
    command = [sys.executable, "-m", "service.cli", "score", str(path), "--quiet"]
    if jobs != 1:
        command += ["--jobs", str(jobs)]
    started, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    wall, cpu = time.perf_counter() - started, _children_cpu() - cpu
    if done.returncode != 0:
        return wall, cpu, (done.stderr.strip().splitlines() or ["failed"])[-1]
    return wall, cpu, ""


def _memory_probe() -> int:
    """`--memory-probe`: what a serving process holds, printed as JSON (MB): the engine only
    (no scikit-learn, no anchor), loaded and warmed as a server worker gets it, then after
    checking every bench message twice."""
    from service.engine.pipeline import Analyzer

    analyzer = Analyzer.load().warm()
    loaded = _rss_mb()
    records = [e.record for e in data.load_corpus() + data.load_real()]
    read = _rss_mb()  # the messages themselves are the bench's, not the engine's
    for _ in range(2):
        for record in records:
            analyzer.check(record)
    print(json.dumps({"loaded": loaded, "scored": _rss_mb() - (read - loaded)}))
    return 0


def _serving_memory() -> tuple[float, float] | str:
    """RSS (MB) of a fresh engine-only process after load and after scoring; or why not."""
    command = [sys.executable, "-m", "model.bench", "--memory-probe"]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or ["failed"])[-1]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return figures["loaded"], figures["scored"]


def _check_process() -> float:
    command = [sys.executable, "-m", "service.cli", "check", "--from", "95188", CHECK_SAMPLE]
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO_ROOT, capture_output=True, check=True)
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.bench", description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="passes over the messages")
    parser.add_argument("--no-processes", action="store_true", help="skip the subprocess rows")
    parser.add_argument(
        "--score-copies",
        type=int,
        default=5,
        help="the messages written this many times into the `dunscan score` input",
    )
    parser.add_argument("--memory-probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_probe:
        return _memory_probe()

    from service.engine.pipeline import Analyzer

    loads = [_timed(Analyzer.load) for _ in range(5)]
    # The sentence encoder loads on the first check that needs it (or in `warm`), once a
    # process: its own row, from the unpacked cache as every load after the first has it.
    from service.engine.sentence import SentenceEncoder

    SentenceEncoder.load()
    encoder_loads = [_timed(SentenceEncoder.load) for _ in range(5)]
    # As a server worker gets it: loaded, warmed (Analyzer.warm) and, after the warm-up below,
    # its objects frozen out of the garbage collector's way (gunicorn_conf.pre_fork).
    analyzer = Analyzer.load().warm()

    examples = data.load_corpus() + data.load_real()
    records = [e.record for e in examples]
    texts = [r.text or "" for r in records]
    anchor = _anchor(examples)

    # Warm caches (OpenCC, RE2 DFAs, the explanation terms) before timing.
    for record in records[:100]:
        analyzer.check(record)
    for text in texts[:100]:
        anchor.predict_proba([text])
    gc.collect()
    gc.freeze()

    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(args.repeat):
        for record, text in zip(records, texts, strict=True):
            started = time.perf_counter()
            analyzer.check(record)
            ours.append(time.perf_counter() - started)
            started = time.perf_counter()
            anchor.predict_proba([text])
            theirs.append(time.perf_counter() - started)
    our_p50, our_p99 = _percentiles(ours)
    their_p50, their_p99 = _percentiles(theirs)

    check_many = getattr(analyzer, "check_many", None)
    batch = (
        (lambda: check_many(records))
        if check_many
        else (lambda: [analyzer.check(r) for r in records])
    )
    our_runs = [_timed(batch) for _ in range(args.repeat)]
    their_runs = [_timed(lambda: anchor.predict_proba(texts)) for _ in range(args.repeat)]
    our_rate = len(records) / min(wall for wall, _ in our_runs)
    their_rate = len(records) / min(wall for wall, _ in their_runs)
    # Per CPU second: what one core does, whatever else the machine runs meanwhile.
    our_cpu_rate = len(records) / min(cpu for _, cpu in our_runs)
    their_cpu_rate = len(records) / min(cpu for _, cpu in their_runs)

    # The cascade (service/engine/model.py read_many): how many of these messages its n-gram-only
    # first reader decided, never computing the sentence embedding.
    model = analyzer.model
    decided = "–"
    if getattr(model, "fast", None) is not None:
        readings = model.read_many([analyzer.analyze(record) for record in records])
        alone = sum(reading.fast for reading in readings)
        decided = f"{alone} of {len(records)} ({alone / len(records):.0%})"

    rows = [
        ("messages", f"{len(records)} (model/corpus + model/real)", "same", ""),
        ("messages the first reader decided alone (no sentence embedding)", decided, "–", ""),
        (
            "one message, p50",
            _ms(our_p50),
            _ms(their_p50),
            f"{our_p50 / their_p50:.2f}x",
        ),
        (
            "one message, p99",
            _ms(our_p99),
            _ms(their_p99),
            f"{our_p99 / their_p99:.2f}x",
        ),
        (
            "batch in-process (check_many vs transform + predict_proba)",
            f"{our_rate:,.0f} msgs/s",
            f"{their_rate:,.0f} msgs/s",
            f"{our_rate / their_rate:.2f}x",
        ),
        (
            "batch in-process, per CPU second",
            f"{our_cpu_rate:,.0f} msgs/CPU-s",
            f"{their_cpu_rate:,.0f} msgs/CPU-s",
            f"{our_cpu_rate / their_cpu_rate:.2f}x",
        ),
    ]
    if not args.no_processes:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "messages.jsonl"
            lines = [
                json.dumps(record.model_dump(mode="json", exclude_none=True), ensure_ascii=False)
                for record in records
            ] * args.score_copies
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            for jobs in (1, 2):
                wall, cpu, problem = _score_process(path, jobs)
                rate = len(lines) / wall
                rows.append(
                    (
                        f"`dunscan score --jobs {jobs}`, {len(lines)} lines (process, load "
                        "included; CPU of the process and its workers)",
                        problem or f"{rate:,.0f} msgs/s ({len(lines) / cpu:,.0f} msgs/CPU-s)",
                        f"{their_rate:,.0f} msgs/s",
                        "" if problem else f"{rate / their_rate:.2f}x",
                    )
                )
        walls = sorted(_check_process() for _ in range(5))
        rows.append(
            (
                "`dunscan check` process, wall (median / min of 5)",
                f"{statistics.median(walls):.2f} s / {walls[0]:.2f} s",
                "–",
                "",
            )
        )
    serving = _serving_memory()
    rows += [
        (
            "Analyzer.load, wall / CPU (median of 5)",
            f"{_ms(statistics.median(w for w, _ in loads))} / "
            f"{_ms(statistics.median(c for _, c in loads))}",
            "–",
            "",
        ),
        (
            "sentence encoder load (first check or warm), wall / CPU (median of 5)",
            f"{_ms(statistics.median(w for w, _ in encoder_loads))} / "
            f"{_ms(statistics.median(c for _, c in encoder_loads))}",
            "–",
            "",
        ),
        (
            "RSS of an engine-only process: loaded and warmed / after checking every message twice",
            serving if isinstance(serving, str) else f"{serving[0]:.0f} MB / {serving[1]:.0f} MB",
            "–",
            "",
        ),
        ("artifact size", f"{MODEL_PATH.stat().st_size / 1e6:.2f} MB", "–", ""),
    ]
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print("| measure | dunscan | anchor (char 1-3 TF-IDF + LR) | ratio |\n|---|---|---|---|")
    for name, ours_text, theirs_text, ratio in rows:
        print(f"| {name} | {ours_text} | {theirs_text} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
