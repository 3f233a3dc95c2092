"""The `dunscan` command line: check one message or call, or score a whole file.

    dunscan check --from 95188 "【支付宝】..."        one verdict as JSON
    dunscan check --call --from "+86 171 2345 6789"   a call record
    dunscan score IN.jsonl [-o OUT.jsonl]             one verdict per input line (CSV, TSV,
                                                      GBK, stdin with -, .xlsx output too)
    dunscan serve [--host H] [--port P] [--workers N] the HTTP service under gunicorn

Exit 0 on success, 2 with one line on unusable input, 1 when the service data cannot be loaded.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import socket
import sys
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from service.cli import records_io
from service.cli.usage import UsageError
from service.engine.schemas import error_field, parse_record
from service.settings import ConfigError, load_settings

# Other surfaces add subcommands by exposing `register(subparsers)` in these modules.
_EXTENSIONS = ("service.cli.hooks",)
# Commands of this module: when one of them is asked for, the extensions (which import the
# store, SQLAlchemy and the web code) are not imported at all; a `dunscan check` starts faster.
_CORE_COMMANDS = frozenset({"check", "score", "serve"})


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        raise UsageError(message)


def _load_analyzer(use_model: bool = True) -> Any:
    from service.engine.pipeline import Analyzer, LoadError

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
        from service.engine.summary import summarize

        print(summarize(verdict, args.lang))
    else:
        print(json.dumps(verdict.model_dump(mode="json"), ensure_ascii=False, indent=2))
    return 0


def _count_lines(path: str) -> int | None:
    """Lines in the input, for the progress bar (one cheap pass; unknown for stdin)."""
    if path == "-":
        return None
    with Path(path).open("rb") as handle:
        return sum(1 for _ in handle)


# Records scored together: one TF-IDF transform and one matrix product per chunk.
SCORE_CHUNK = 256

# What scoring one input row gives: the verdict in its JSON form (a dict, or its json.dumps text
# when the writer takes text), or why the row was skipped.
Scored = tuple[dict[str, Any] | str | None, str | None]


class _BatchScorer:
    """Scores chunks of input rows, giving the results back in input order: in this process,
    or over `jobs` worker processes (forked once, the loaded analyzer shared copy-on-write) with
    at most two chunks per process in flight, so memory stays flat whatever the input size.

    A worker gets the rows' plain fields and does everything per row that costs: it validates
    the record, scores the chunk with `Analyzer.check_many` and turns each verdict into its JSON
    form. Plain dicts cross the process boundary both ways (pickling pydantic verdicts back cost
    the parent more than scoring left it time for), so the parent only reads and writes."""

    def __init__(self, analyzer: Any, lang: str, jobs: int, as_text: bool = False) -> None:
        self.analyzer = analyzer
        self.lang = lang
        # Verdicts come back as JSON text (JSONL output): serialised by the workers, and one
        # string crosses the process boundary instead of a nested dict.
        self.as_text = as_text
        self.pool: Any = None
        self.in_flight: deque[tuple[list[records_io.Row], Any]] = deque()
        self.limit = 2 * jobs
        if jobs > 1:
            import multiprocessing

            global _WORKER_ANALYZER
            _WORKER_ANALYZER = analyzer  # forked workers share the loaded model copy-on-write
            # As gunicorn's master does before it forks: build what the first checks would build
            # in every worker (one shared copy instead), and move the loaded objects out of the
            # collector's way, so the workers' collections neither walk nor unshare their pages.
            analyzer.warm()
            gc.collect()
            gc.freeze()
            # A forked worker flushes its copy of stdout when it exits: nothing may be pending.
            sys.stdout.flush()
            sys.stderr.flush()
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else None)
            self.pool = context.Pool(
                jobs, initializer=_init_worker, initargs=(analyzer.model is not None,)
            )

    def submit(self, chunk: list[records_io.Row]) -> Iterator[tuple[records_io.Row, Scored]]:
        """Queue a chunk; yield every (row, result) that is ready, in input order."""
        fields = [row.fields for row in chunk]
        if self.pool is None:
            scored = _score_rows(self.analyzer, fields, self.lang, self.as_text)
            yield from zip(chunk, scored, strict=True)
            return
        task = self.pool.apply_async(_score_chunk, (fields, self.lang, self.as_text))
        self.in_flight.append((chunk, task))
        while len(self.in_flight) >= self.limit:
            yield from self._next()

    def finish(self) -> Iterator[tuple[records_io.Row, Scored]]:
        while self.in_flight:
            yield from self._next()
        if self.pool is not None:
            self.pool.close()
            self.pool.join()
            self.pool = None

    def _next(self) -> Iterator[tuple[records_io.Row, Scored]]:
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


def _score_rows(
    analyzer: Any, rows: list[dict[str, Any]], lang: str, as_text: bool = False
) -> list[Scored]:
    """Validate each row's fields as a record and score the valid ones in one batch."""
    results: list[Scored] = []
    valid: list[tuple[int, Any]] = []
    for index, fields in enumerate(rows):
        try:
            valid.append((index, parse_record(fields)))
            results.append((None, None))
        except ValidationError as error:
            results.append((None, _validation_message(error)))
    verdicts = analyzer.check_many([record for _, record in valid], lang)
    for (index, _), verdict in zip(valid, verdicts, strict=True):
        as_json = verdict.model_dump(mode="json")
        results[index] = (json.dumps(as_json, ensure_ascii=False) if as_text else as_json, None)
    return results


def _score_chunk(rows: list[dict[str, Any]], lang: str, as_text: bool) -> list[Scored]:
    return _score_rows(_WORKER_ANALYZER, rows, lang, as_text)


def _cmd_score(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    try:
        if args.output not in (None, "-") and not args.output_format:
            records_io.format_of(args.output, records_io.OUTPUT_FORMATS)  # refuse before reading
        source = records_io.open_source(args.input, args.input_format, args.encoding)
    except records_io.RecordFileError as error:
        raise UsageError(str(error)) from error
    if args.jobs < 1:
        source.close()
        raise UsageError("--jobs must be at least 1")
    scored = skipped = 0
    target: records_io.Target | None = None
    scorer: _BatchScorer | None = None
    pending: list[records_io.Row] = []

    def write(row: records_io.Row, result: Scored) -> None:
        nonlocal scored, skipped
        assert target is not None
        verdict, problem = result
        if verdict is None:
            skipped += 1
            tqdm.write(f"line {row.line}: skipped: {problem}", file=sys.stderr)
            return
        if isinstance(verdict, str):
            target.writer.write_text(row, verdict)
        else:
            target.writer.write(row, verdict)
        scored += 1

    try:
        analyzer = _load_analyzer(not args.no_model)
        target = records_io.open_target(args.output, args.output_format, source.format)
        as_text = getattr(target.writer, "takes_text", False)
        scorer = _BatchScorer(analyzer, args.lang, args.jobs, as_text)
        progress = tqdm(
            records_io.read_records(source),
            total=None if args.quiet else _count_lines(args.input),  # no bar, no counting pass
            unit="msg",
            file=sys.stderr,
            disable=args.quiet or None,
        )
        for row in progress:
            if row.fields is None:
                skipped += 1
                tqdm.write(f"line {row.line}: skipped: {row.problem}", file=sys.stderr)
                continue
            pending.append(row)
            if len(pending) >= SCORE_CHUNK:
                for done in scorer.submit(pending):
                    write(*done)
                pending = []
        if pending:
            for done in scorer.submit(pending):
                write(*done)
        for done in scorer.finish():
            write(*done)
    except records_io.RecordFileError as error:
        raise UsageError(str(error)) from error
    finally:
        if scorer is not None:
            scorer.abort()
        source.close()
        if target is not None:
            target.close()
    print(f"scored {scored}, skipped {skipped}", file=sys.stderr)
    return 1 if args.strict and skipped else 0


def _port_problem(host: str, port: int) -> str | None:
    """Why gunicorn could not bind host:port (None when it can): said in one line up front."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return f"cannot listen on {host}:{port}: {error.strerror or error}"
    return None


def _cmd_serve(args: argparse.Namespace) -> int:
    """Run the service under gunicorn with the project's config (service/gunicorn_conf.py:
    workers, timeouts, JSON logs, metrics); only the address and, if given, the worker count
    are set here. gunicorn replaces this process, so signals reach it directly."""
    settings = load_settings()
    host = args.host or settings.HOST
    port = args.port or settings.PORT
    problem = _port_problem(host, port)
    if problem:
        raise UsageError(problem)
    shown = f"[{host}]" if ":" in host else host
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "python:service.gunicorn_conf",
        "--bind",
        f"{shown}:{port}",
    ]
    if args.workers:
        command += ["--workers", str(args.workers)]
    command.append("service:create_app()")
    print(f"dunscan: listening on http://{shown}:{port}/ (Ctrl-C stops)", file=sys.stderr)
    sys.stderr.flush()
    os.execv(sys.executable, command)
    return 0  # not reached


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _port(text: str) -> int:
    value = _positive(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 1 to 65535, got {text!r}")
    return value


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

    score = sub.add_parser("score", help="score a JSONL, CSV or TSV file, one verdict per record")
    score.add_argument(
        "input",
        help="IN.jsonl, IN.csv or IN.tsv (fields: id, kind, sender, text, ...), - for stdin",
    )
    score.add_argument(
        "-o", "--output", help="write here instead of stdout (- too): .jsonl, .csv, .tsv or .xlsx"
    )
    score.add_argument(
        "--input-format",
        choices=records_io.INPUT_FORMATS,
        help="default: from the extension; for stdin, JSONL if it starts with {, else CSV",
    )
    score.add_argument(
        "--output-format",
        choices=records_io.OUTPUT_FORMATS,
        help="default: from the -o extension, else the input's format",
    )
    score.add_argument(
        "--encoding",
        help="input encoding (default: detected: UTF-8, UTF-8/16 with BOM, GBK/GB18030)",
    )
    score.add_argument("--lang", choices=["zh", "en"], default="zh")
    score.add_argument("--quiet", action="store_true", help="no progress bar")
    score.add_argument("--strict", action="store_true", help="exit 1 if any line was skipped")
    score.add_argument("--no-model", action="store_true", help="numbers and rules only")
    score.add_argument(
        "--jobs", type=int, default=1, help="worker processes (output keeps the input order)"
    )
    score.set_defaults(func=_cmd_score)

    serve = sub.add_parser("serve", help="run the HTTP service (gunicorn)")
    serve.add_argument("--host", help="address to bind (default HOST, else 127.0.0.1)")
    serve.add_argument("--port", type=_port, help="port to bind (default PORT, else 8000)")
    serve.add_argument(
        "--workers", type=_positive, help="gunicorn workers (default: service/gunicorn_conf.py)"
    )
    serve.set_defaults(func=_cmd_serve)

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
        load_settings()  # every DUNSCAN_* value checked before any command runs
        return int(args.func(args) or 0)
    except ConfigError as error:
        print(f"dunscan: {error}", file=sys.stderr)
        return 2
    except UsageError as error:
        print(f"dunscan: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head/less that closed early
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
