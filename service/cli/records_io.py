"""Reading and writing record files for `dunscan score`, as people have them.

- Input is a path or `-` (stdin), JSONL or CSV/TSV (by extension, else by its first character),
  in UTF-8 (with or without a BOM), UTF-16 with a BOM, GBK/GB18030 (what Excel on a mainland
  Chinese Windows writes when it saves "CSV") or Big5 (the same on a Taiwan or Hong Kong one).
  The encoding is decided on the first 64 KiB by strict decoding, not by a general statistical
  detector: a BOM; else strict UTF-8 (which fails within a few characters on real GBK or Big5
  Chinese); else GB18030 (a superset of GBK) or cp950 (Big5), and since Big5 bytes also decode
  as GBK nonsense, the one whose text is mostly everyday characters. charset-normalizer,
  tried on these files, called a short GBK "还款" Big5: a few wrong characters in a verdict's
  input are worse than a refusal. A file that is none of these is refused in one line, and
  one that breaks further on is refused with the reason; `--encoding` overrides the choice.
- Output is JSONL (each input object with its verdict), CSV/TSV (every input column kept, in
  order, then the verdict columns) or .xlsx (the same table; openpyxl's write-only mode), to a
  path or stdout. Any other extension is refused before anything is read.

Everything streams: one record in memory at a time, whatever the file's size. The scoring loop
(service/cli/main.py) only sees `read_records` and a `RecordWriter`.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

SAMPLE_BYTES = 64 * 1024
INPUT_FORMATS = ("jsonl", "csv", "tsv")
OUTPUT_FORMATS = ("jsonl", "csv", "tsv", "xlsx")
_EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".xlsx": "xlsx",
}
VERDICT_COLUMNS = (
    "risk",
    "level",
    "category",
    "sender_location",
    "sender_carrier",
    "signal_ids",
    "claimed_brands",
    "advice",
)
# A verdict column whose name the input already uses gets this prefix: input columns are kept.
COLLISION_PREFIX = "dunscan_"


class RecordFileError(ValueError):
    """The file cannot be read or written as asked; the message is one line."""


# --- formats --------------------------------------------------------------------------------


def format_of(path: str, allowed: tuple[str, ...]) -> str | None:
    """The format a file name asks for; None for `-`; RecordFileError for an unknown extension."""
    if path == "-":
        return None
    suffix = Path(path).suffix.lower()
    kind = _EXTENSIONS.get(suffix)
    if kind is None or kind not in allowed:
        known = ", ".join(sorted(ext for ext, fmt in _EXTENSIONS.items() if fmt in allowed))
        raise RecordFileError(f"{path}: unknown extension {suffix or '(none)'!r}; use {known}")
    return kind


# --- reading --------------------------------------------------------------------------------


class _Prefixed(io.RawIOBase):
    """`head` bytes already read, then the rest of `stream`: stdin cannot seek back."""

    def __init__(self, head: bytes, stream: IO[bytes], owned: bool) -> None:
        self._head = head
        self._stream = stream
        self._owned = owned  # a file we opened is closed with us; stdin is left open

    def close(self) -> None:
        if self._owned and not self.closed:
            self._stream.close()
        super().close()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            count = min(len(buffer), len(self._head))
            buffer[:count] = self._head[:count]
            self._head = self._head[count:]
            return count
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


# Where each encoding keeps its everyday characters: GB2312's level-1 hanzi (the 3,755 most
# used) and Big5's "frequently used" block (5,401). A right decode of real Chinese text is almost
# all everyday characters; the wrong one turns the same bytes into rare ones (中國 in Big5 read
# as GBK is 笢弝-like noise), so the share of everyday characters tells the two apart.
_EVERYDAY_LEAD_BYTES = {"gb18030": ("gb2312", 0xB0, 0xD7), "cp950": ("cp950", 0xA4, 0xC6)}


def _everyday_share(encoding: str, text: str) -> float:
    hanzi = [ch for ch in text if "\u4e00" <= ch <= "\u9fff"]
    if not hanzi:
        return 1.0
    codec, low, high = _EVERYDAY_LEAD_BYTES[encoding]
    everyday = 0
    for ch in hanzi:
        try:
            lead = ch.encode(codec)[0]
        except UnicodeEncodeError:
            continue
        everyday += low <= lead <= high
    return everyday / len(hanzi)


def detect_encoding(sample: bytes, complete: bool) -> str:
    """The encoding of a file from its first bytes (see the module docstring for the why).

    BOM, else strict UTF-8. Otherwise the two legacy Chinese encodings Excel writes: GB18030
    (GBK, mainland Windows) and Big5/cp950 (Taiwan and Hong Kong Windows). Big5 bytes also
    decode as GBK, into nonsense, so when both decode the one whose text is more everyday
    characters wins, GB18030 on a tie (a few characters cannot tell them apart).
    """
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    decoded: dict[str, str] = {}
    for encoding in ("utf-8", "gb18030", "cp950"):
        try:
            # A sample cut mid-character is not an error (final=False), unless it is the file.
            text = codecs.getincrementaldecoder(encoding)("strict").decode(sample, final=complete)
        except UnicodeDecodeError:
            continue
        if encoding == "utf-8":
            return encoding
        decoded[encoding] = text
    if not decoded:
        raise RecordFileError(
            "not UTF-8, GBK/GB18030 or Big5 text (saved in another encoding? give --encoding)"
        )
    return max(decoded, key=lambda encoding: _everyday_share(encoding, decoded[encoding]))


@dataclass
class Source:
    """An opened input: its text stream, format and encoding."""

    text: IO[str]
    format: str
    encoding: str
    name: str

    def close(self) -> None:
        if self.name != "-":
            self.text.close()


def open_source(path: str, input_format: str | None = None, encoding: str | None = None) -> Source:
    """Open a path or `-` as text, its encoding and format decided as the docstring says."""
    fmt = input_format or format_of(path, INPUT_FORMATS)
    if path == "-":
        raw: IO[bytes] = sys.stdin.buffer
        name = "-"
    else:
        file = Path(path)
        if not file.is_file():
            raise RecordFileError(f"no such input file: {path}")
        raw = file.open("rb")
        name = str(file)
    head = raw.read(SAMPLE_BYTES)
    if encoding is None:
        try:
            encoding = detect_encoding(head, complete=len(head) < SAMPLE_BYTES)
        except RecordFileError as error:
            if name != "-":
                raw.close()
            raise RecordFileError(f"{name}: {error}") from None
    else:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise RecordFileError(f"unknown encoding {encoding!r}") from None
    buffered = io.BufferedReader(_Prefixed(head, raw, owned=name != "-"))
    text = io.TextIOWrapper(buffered, encoding=encoding, errors="strict", newline="")
    if fmt is None:  # stdin without --input-format: a JSON object starts a JSONL file
        first = head.decode(encoding, errors="ignore").lstrip("\ufeff \t\r\n")[:1]
        fmt = "jsonl" if first == "{" else "csv"
    return Source(text=text, format=fmt, encoding=encoding, name=name)


@dataclass
class Row:
    """One input record: where it was, its fields as given (kept for output), and the fields
    to check (CSV: empty cells dropped, duration_s as a number) or why it cannot be."""

    line: int
    original: dict[str, Any]
    fields: dict[str, Any] | None
    problem: str | None = None


def read_records(source: Source) -> Iterator[Row]:
    """Every record of the source, in order; a bad one carries its problem instead of fields."""
    try:
        if source.format == "jsonl":
            yield from _read_jsonl(source.text)
        else:
            yield from _read_csv(source.text, "\t" if source.format == "tsv" else ",")
    except UnicodeDecodeError as error:
        raise RecordFileError(
            f"{source.name} is not valid {source.encoding} text past its start ({error.reason}); "
            "give --encoding"
        ) from None


def _read_jsonl(text: IO[str]) -> Iterator[Row]:
    for number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            yield Row(number, {}, None, f"not valid JSON ({error.msg})")
            continue
        except RecursionError:
            yield Row(number, {}, None, "JSON nested too deeply")
            continue
        except ValueError:  # an integer past Python's 4,300-digit conversion limit
            yield Row(number, {}, None, "a number with too many digits")
            continue
        if not isinstance(row, dict):
            yield Row(number, {}, None, "expected a JSON object")
            continue
        yield Row(number, row, row)


def _read_csv(text: IO[str], delimiter: str) -> Iterator[Row]:
    reader = csv.DictReader(text, delimiter=delimiter)
    for row in reader:
        original = {key: value for key, value in row.items() if key is not None}
        fields: dict[str, Any] = {k: v for k, v in original.items() if k and v not in (None, "")}
        if "duration_s" in fields:
            try:
                fields["duration_s"] = int(fields["duration_s"])
            except ValueError:
                yield Row(reader.line_num, original, None, "duration_s: not a whole number")
                continue
        yield Row(reader.line_num, original, fields)


# --- writing --------------------------------------------------------------------------------


# The writers take a verdict in its JSON form (`Verdict.model_dump(mode="json")`): `dunscan score`
# builds it in the worker process that scored the record, and plain dicts cross processes cheaply.
VerdictJson = dict[str, Any]


def verdict_cells(verdict: VerdictJson) -> dict[str, Any]:
    sender = verdict.get("sender") or {}
    return {
        "risk": verdict["risk"],
        "level": verdict["level"],
        "category": verdict["category"],
        # 归属地 and carrier of the sender, as the page and the API show them
        "sender_location": sender.get("location"),
        "sender_carrier": sender.get("carrier"),
        "signal_ids": " ".join(s["id"] for s in verdict["signals"] if s["source"] != "model"),
        "claimed_brands": " ".join(b["brand"] for b in verdict["claimed_brands"]),
        "advice": " / ".join(verdict["advice"]),
    }


class RecordWriter(Protocol):
    def write(self, row: Row, verdict: VerdictJson) -> None: ...

    def close(self) -> None: ...


class JsonlWriter:
    """Each input object, as given, with its verdict under "verdict"."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    # `dunscan score` hands this writer each verdict already serialised (`write_text`): the
    # workers of --jobs do that part, and the process that writes only splices.
    takes_text = True

    def write(self, row: Row, verdict: VerdictJson) -> None:
        result = {**row.original, "verdict": verdict}
        self.out.write(json.dumps(result, ensure_ascii=False) + "\n")

    def write_text(self, row: Row, verdict_text: str) -> None:
        """`write` for a verdict given as json.dumps(verdict, ensure_ascii=False): the same
        line, the input object's text with the verdict's spliced in as its last member."""
        if not row.original or "verdict" in row.original:
            # {} has no member to follow; an input "verdict" is replaced where it stands.
            self.write(row, json.loads(verdict_text))
            return
        given = json.dumps(row.original, ensure_ascii=False)
        self.out.write(f'{given[:-1]}, "verdict": {verdict_text}}}\n')

    def close(self) -> None:
        self.out.flush()


class _Table:
    """The columns of a table output: every input column, then the verdict's."""

    def __init__(self, input_columns: list[str]) -> None:
        self.input_columns = list(input_columns)
        taken = set(self.input_columns)
        self.verdict_names = {
            name: f"{COLLISION_PREFIX}{name}" if name in taken else name for name in VERDICT_COLUMNS
        }
        self.header = self.input_columns + list(self.verdict_names.values())

    def cells(self, row: Row, verdict: VerdictJson) -> list[Any]:
        given = [row.original.get(column, "") for column in self.input_columns]
        computed = verdict_cells(verdict)
        return given + [computed[name] for name in self.verdict_names]


def _as_cell_text(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


class CsvWriter:
    """A CSV (or TSV) table. Its columns are the first record's: for CSV input that is the whole
    header (csv.DictReader gives every row every column, empty or not), so no input column is
    lost; for JSONL input, a key only later records have is left out, said once on stderr."""

    def __init__(self, out: IO[str], delimiter: str = ",") -> None:
        self.out = out
        self.writer = csv.writer(out, delimiter=delimiter)
        self.table: _Table | None = None
        self._warned = False

    def write(self, row: Row, verdict: VerdictJson) -> None:
        if self.table is None:
            self.table = _Table(list(row.original))
            self.writer.writerow(self.table.header)
        elif not self._warned and set(row.original) - set(self.table.input_columns):
            extra = sorted(set(row.original) - set(self.table.input_columns))
            print(
                f"line {row.line}: column(s) {', '.join(extra)} not in the first record: "
                "left out of the CSV (use JSONL output to keep them)",
                file=sys.stderr,
            )
            self._warned = True
        self.writer.writerow([_as_cell_text(cell) for cell in self.table.cells(row, verdict)])

    def close(self) -> None:
        self.out.flush()


class XlsxWriter:
    """The same table as CSV, as an Excel workbook written row by row (constant memory).
    Every cell is a plain value: text starting with "=" stays text, never a formula."""

    def __init__(self, path: Path) -> None:
        from openpyxl import Workbook

        self.path = path
        self.book = Workbook(write_only=True)
        self.sheet = self.book.create_sheet("dunscan")
        self.table: _Table | None = None

    def _start(self, columns: list[str]) -> None:
        self.table = _Table(columns)
        self.sheet.append([self._cell(name) for name in self.table.header])

    def _cell(self, value: Any) -> Any:
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        value = _as_cell_text(value)
        if not isinstance(value, str):
            return value
        cell = WriteOnlyCell(self.sheet, value=ILLEGAL_CHARACTERS_RE.sub("", value))
        cell.data_type = "s"  # openpyxl would store "=…" as a formula
        return cell

    def write(self, row: Row, verdict: VerdictJson) -> None:
        if self.table is None:
            self._start(list(row.original))
        assert self.table is not None
        self.sheet.append([self._cell(value) for value in self.table.cells(row, verdict)])

    def close(self) -> None:
        if self.table is None:  # no record at all: still a valid workbook, with the header
            self._start([])
        self.book.save(self.path)


@dataclass
class Target:
    writer: RecordWriter
    stream: IO[str] | None

    def close(self) -> None:
        self.writer.close()
        if self.stream is not None and self.stream is not sys.stdout:
            self.stream.close()


def open_target(path: str | None, output_format: str | None, fallback: str) -> Target:
    """A writer for `path` (None or `-`: stdout) in the format its extension or
    `output_format` names, else `fallback` (the input's format)."""
    to_stdout = path in (None, "-")
    fmt = output_format or (None if to_stdout else format_of(str(path), OUTPUT_FORMATS))
    fmt = fmt or fallback
    if fmt == "xlsx":
        if to_stdout:
            raise RecordFileError("an .xlsx workbook is written to a file: give -o OUT.xlsx")
        return Target(XlsxWriter(Path(str(path))), None)
    stream: IO[str]
    if to_stdout:
        stream = sys.stdout
    else:
        try:
            stream = Path(str(path)).open("w", encoding="utf-8", newline="")
        except OSError as error:
            raise RecordFileError(f"cannot write {path}: {error.strerror}") from None
    if fmt == "jsonl":
        return Target(JsonlWriter(stream), stream)
    return Target(CsvWriter(stream, "\t" if fmt == "tsv" else ","), stream)
