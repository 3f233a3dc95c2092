"""The `dunscan` command line: check one message or call, or score a whole file.

    dunscan check --from 95188 "【支付宝】..."        one verdict as JSON
    dunscan check --call --from "+86 171 2345 6789"   a call record
    dunscan score IN.jsonl [-o OUT.jsonl]             one verdict per input line (CSV too)

Exit 0 on success, 2 with one line on unusable input, 1 when the service data cannot be loaded.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import sys
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from service.schemas import Verdict, error_field, parse_record

# Other surfaces add subcommands by exposing `register(subparsers)` in these modules.
_EXTENSIONS = ("service.hooks_cli",)
# Commands of this module: when one of them is asked for, the extensions (which import the
# store, SQLAlchemy and the web code) are not imported at all; a `dunscan check` starts faster.
_CORE_COMMANDS = frozenset({"check", "score"})
CSV_VERDICT_COLUMNS = ("risk", "level", "category", "signal_ids", "claimed_brands", "advice")


class UsageError(Exception):
    """Unusable arguments or input: reported as one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        raise UsageError(message)


def _load_analyzer(use_model: bool = True) -> Any:
    from service.pipeline import Analyzer, LoadError

    try:
        return Analyzer.load(use_model=use_model)
    except LoadError as error:
        print(f"dunscan: cannot load: {error}", file=sys.stderr)
        raise SystemExit(1) from error


def _validation_message(error: ValidationError) -> str:
    first = error.errors()[0]
    return f"{error_field(first['loc'])}: {first['msg']}"


def _cmd_check(args: argparse.Namespace) -> int:
    text = args.text
    if text == "-":
        text = sys.stdin.read()
    data: dict[str, Any] = {"sender": args.sender}
    if args.call:
        if args.sender is None:
            raise UsageError("a call record needs --from NUMBER")
        data.update(kind="call", duration_s=args.duration, direction=args.direction)
        if text:
            data["text"] = text
    else:
        if not text or not text.strip():
            raise UsageError("give the message text (or - to read it from stdin), or use --call")
        data.update(kind="sms", text=text)
    try:
        record = parse_record(data)
    except ValidationError as error:
        raise UsageError(_validation_message(error)) from error
    verdict = _load_analyzer(not args.no_model).check(record, lang=args.lang)
    if args.format == "text":
        from service.summary import summarize

        print(summarize(verdict, args.lang))
    else:
        print(json.dumps(verdict.model_dump(mode="json"), ensure_ascii=False, indent=2))
    return 0


def _is_csv(path: Path) -> bool:
    return path.suffix.lower() in {".csv", ".tsv"}


def _read_rows(handle: TextIO, as_csv: bool) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """Yield (line number, row) or (line number, error message) for each input record."""
    if as_csv:
        reader = csv.DictReader(handle)
        for row in reader:
            clean: dict[str, Any] = {k: v for k, v in row.items() if k and v not in (None, "")}
            if "duration_s" in clean:
                try:
                    clean["duration_s"] = int(clean["duration_s"])
                except ValueError:
                    yield reader.line_num, "duration_s: not a whole number"
                    continue
            yield reader.line_num, clean
        return
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            yield number, f"not valid JSON ({error.msg})"
            continue
        except RecursionError:
            yield number, "JSON nested too deeply"
            continue
        except ValueError:  # an integer past Python's 4,300-digit conversion limit
            yield number, "a number with too many digits"
            continue
        if not isinstance(row, dict):
            yield number, "expected a JSON object"
            continue
        yield number, row


def _flatten(row: dict[str, Any], verdict: Verdict) -> dict[str, Any]:
    return {
        **row,
        "risk": verdict.risk,
        "level": verdict.level,
        "category": verdict.category,
        "sender_location": verdict.sender.location if verdict.sender else None,
        "sender_carrier": verdict.sender.carrier if verdict.sender else None,
        "signal_ids": " ".join(s.id for s in verdict.signals if s.source != "model"),
        "claimed_brands": " ".join(b.brand for b in verdict.claimed_brands),
        "advice": " / ".join(verdict.advice),
    }


# Records scored together: one TF-IDF transform and one matrix product per chunk.
SCORE_CHUNK = 256


class _BatchScorer:
    """Scores chunks of records with `Analyzer.check_many`, giving them back in input order:
    in this process, or over `jobs` worker processes with at most two chunks per process in
    flight, so memory stays flat whatever the input size."""

    def __init__(self, analyzer: Any, lang: str, jobs: int) -> None:
        self.analyzer = analyzer
        self.lang = lang
        self.pool: Any = None
        self.in_flight: deque[tuple[list[dict[str, Any]], Any]] = deque()
        self.limit = 2 * jobs
        if jobs > 1:
            import multiprocessing

            global _WORKER_ANALYZER
            _WORKER_ANALYZER = analyzer  # forked workers share the loaded model copy-on-write
            # A forked worker flushes its copy of stdout when it exits: nothing may be pending.
            sys.stdout.flush()
            sys.stderr.flush()
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else None)
            self.pool = context.Pool(
                jobs, initializer=_init_worker, initargs=(analyzer.model is not None,)
            )

    def submit(
        self, chunk: list[tuple[dict[str, Any], Any]]
    ) -> Iterator[tuple[dict[str, Any], Verdict]]:
        """Queue a chunk; yield every (row, verdict) that is ready, in input order."""
        rows = [row for row, _ in chunk]
        records = [record for _, record in chunk]
        if self.pool is None:
            yield from zip(rows, self.analyzer.check_many(records, self.lang), strict=True)
            return
        self.in_flight.append((rows, self.pool.apply_async(_score_chunk, (records, self.lang))))
        while len(self.in_flight) >= self.limit:
            yield from self._next()

    def finish(self) -> Iterator[tuple[dict[str, Any], Verdict]]:
        while self.in_flight:
            yield from self._next()
        if self.pool is not None:
            self.pool.close()
            self.pool.join()
            self.pool = None

    def _next(self) -> Iterator[tuple[dict[str, Any], Verdict]]:
        rows, result = self.in_flight.popleft()
        yield from zip(rows, result.get(), strict=True)

    def abort(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()


_WORKER_ANALYZER: Any = None


def _init_worker(use_model: bool) -> None:
    global _WORKER_ANALYZER
    if _WORKER_ANALYZER is None:  # not inherited (spawn): load it in this process
        _WORKER_ANALYZER = _load_analyzer(use_model)


def _score_chunk(records: list[Any], lang: str) -> list[Verdict]:
    return _WORKER_ANALYZER.check_many(records, lang)


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def _cmd_score(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    source = Path(args.input)
    if not source.is_file():
        raise UsageError(f"no such input file: {source}")
    target = Path(args.output) if args.output else None
    as_csv = _is_csv(source)
    out_csv = _is_csv(target) if target else as_csv
    analyzer = _load_analyzer(not args.no_model)

    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    scored = skipped = 0
    out = target.open("w", encoding="utf-8", newline="") if target else sys.stdout
    writer: csv.DictWriter[str] | None = None
    scorer = _BatchScorer(analyzer, args.lang, args.jobs)
    pending: list[tuple[dict[str, Any], Any]] = []

    def write(row: dict[str, Any], verdict: Verdict) -> None:
        nonlocal writer, scored
        if out_csv:
            flat = _flatten(row, verdict)
            if writer is None:
                columns = list(row) + [c for c in CSV_VERDICT_COLUMNS if c not in row]
                writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
                writer.writeheader()
            writer.writerow(flat)
        else:
            result = {**row, "verdict": verdict.model_dump(mode="json")}
            out.write(json.dumps(result, ensure_ascii=False) + "\n")
        scored += 1

    try:
        with source.open(encoding="utf-8-sig", newline="") as handle:
            rows = _read_rows(handle, as_csv)
            progress = tqdm(
                rows,
                total=_count_lines(source),
                unit="msg",
                file=sys.stderr,
                disable=args.quiet or None,
            )
            for line_number, row in progress:
                if isinstance(row, str):
                    skipped += 1
                    tqdm.write(f"line {line_number}: skipped: {row}", file=sys.stderr)
                    continue
                try:
                    record = parse_record(row)
                except ValidationError as error:
                    skipped += 1
                    message = _validation_message(error)
                    tqdm.write(f"line {line_number}: skipped: {message}", file=sys.stderr)
                    continue
                pending.append((row, record))
                if len(pending) >= SCORE_CHUNK:
                    for done in scorer.submit(pending):
                        write(*done)
                    pending = []
            if pending:
                for done in scorer.submit(pending):
                    write(*done)
            for done in scorer.finish():
                write(*done)
    except UnicodeDecodeError as error:
        raise UsageError(f"{source} is not UTF-8 text ({error.reason})") from error
    finally:
        scorer.abort()
        if target:
            out.close()
    print(f"scored {scored}, skipped {skipped}", file=sys.stderr)
    return 1 if args.strict and skipped else 0


def build_parser(extensions: bool = True) -> argparse.ArgumentParser:
    parser = _Parser(prog="dunscan", description="Is this collection SMS or call a scam?")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    check = sub.add_parser("check", help="check one SMS or call record")
    check.add_argument("text", nargs="?", help="the message text, or - to read it from stdin")
    check.add_argument("--from", dest="sender", help="sender number as the phone shows it")
    check.add_argument("--call", action="store_true", help="a call record (no text needed)")
    check.add_argument("--duration", type=int, help="call duration in seconds")
    check.add_argument("--direction", choices=["incoming", "outgoing", "missed"])
    check.add_argument("--format", choices=["json", "text"], default="json")
    check.add_argument("--lang", choices=["zh", "en"], default="zh")
    check.add_argument("--no-model", action="store_true", help="numbers and rules only")
    check.set_defaults(func=_cmd_check)

    score = sub.add_parser("score", help="score a JSONL or CSV file, one verdict per line")
    score.add_argument("input", help="IN.jsonl or IN.csv (fields: id, kind, sender, text, ...)")
    score.add_argument("-o", "--output", help="write here instead of stdout (.jsonl or .csv)")
    score.add_argument("--lang", choices=["zh", "en"], default="zh")
    score.add_argument("--quiet", action="store_true", help="no progress bar")
    score.add_argument("--strict", action="store_true", help="exit 1 if any line was skipped")
    score.add_argument("--no-model", action="store_true", help="numbers and rules only")
    score.add_argument(
        "--jobs", type=int, default=1, help="worker processes (output keeps the input order)"
    )
    score.set_defaults(func=_cmd_score)

    for module_name in _EXTENSIONS if extensions else ():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        given = sys.argv[1:] if argv is None else argv
        core = bool(given) and given[0] in _CORE_COMMANDS
        args = build_parser(extensions=not core).parse_args(argv)
        return int(args.func(args) or 0)
    except UsageError as error:
        print(f"dunscan: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head/less that closed early
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
