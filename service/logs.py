"""Structured JSON logs with a request id, and no personal data.

One JSON object per line on stderr. Message texts never reach a log call (callers log ids, rule ids,
counts and timings); as a second line of defence every string that is logged passes through
`mask_numbers`, so a phone number that slips into a message or a path shows as 171****6789.

A small formatter is written here rather than pulled in as a dependency: it is the masking and the
request id that matter, and both are ours.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-ID"
# A client's request id is echoed into logs and headers, so only a plain token is accepted.
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# Seven or more digits (ASCII, full-width or any other decimal digits), optionally with up to three
# separators between them (spaces, dashes, dots, underscores, middle dots, brackets, in their
# ASCII and full-width forms) and a leading +: long enough for any phone number, short enough to
# spare counts and durations. Dates (versions) are spared, as is a run glued to letters or digits
# (request ids, hashes) or continuing a longer dotted/dashed run.
_SEPARATOR = r"[\s\-._·・()\u2010-\u2015\u2212\uff08\uff09\uff0d\uff0e\uff3f]"
_DATE = r"\d{4}[-./_]\d{1,2}[-./_]\d{1,2}(?!\d)"
_PHONE_LIKE = re.compile(
    rf"(?<![A-Za-z0-9\d])(?<!\d[-./_:])(?!{_DATE})[+＋]?\d(?:{_SEPARATOR}{{0,3}}\d){{6,}}(?![A-Za-z\d])"
)
# A hook URL's path holds its secret token (and, in SmsForwarder's template-less GET mode, the
# message): only the first four characters of the token are kept, whatever the method or status.
_HOOK_PATH = re.compile(r"(/hooks/sf/)([A-Za-z0-9_-]{0,4})[^\s\"'?#]*")
_HANDLER_MARK = "_dunscan_json_handler"

# LogRecord attributes that are not "extra" fields passed by the caller.
_RECORD_FIELDS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime", "taskName"}
)
# ... and the request id, which has its own place in a line.
_NOT_EXTRAS = _RECORD_FIELDS | {"request_id"}


def mask_numbers(value: str) -> str:
    """Hide the middle of anything that looks like a phone number: 17123456789 -> 171****6789."""

    def mask(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group())
        prefix = "+" if match.group().startswith(("+", "＋")) else ""
        if len(digits) >= 11:  # keep country code and carrier prefix, hide the subscriber part
            return f"{prefix}{digits[:-8]}****{digits[-4:]}"
        return f"{prefix}{digits[:3]}****"

    return _PHONE_LIKE.sub(mask, value)


def mask_hook_tokens(value: str) -> str:
    """/hooks/sf/AbCdEfGh… -> /hooks/sf/AbCd…: the token in a hook URL is its password."""
    return _HOOK_PATH.sub(lambda match: f"{match.group(1)}{match.group(2)}…", value)


_ANY_DIGIT = re.compile(r"\d")


def scrub_text(value: str) -> str:
    """A string as it may be logged: hook tokens cut short, phone numbers masked."""
    # Most logged strings (rule ids, kinds, categories) hold neither: two cheap tests spare the
    # two full scans a log line would otherwise make per string.
    if "/hooks/sf/" in value:
        value = mask_hook_tokens(value)
    if _ANY_DIGIT.search(value) is None:
        return value
    return mask_numbers(value)


# Values that hold no text: most of a log line's extras (counts, timings, flags).
_PLAIN_TYPES = frozenset({int, float, bool, type(None)})


def _scrub(value: Any) -> Any:
    if type(value) in _PLAIN_TYPES:
        return value
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {key: _scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


def current_request_id() -> str | None:
    if has_request_context():
        return g.get("request_id")
    return None


# One encoder for every line: json.dumps with options builds a new encoder per call.
_encode = json.JSONEncoder(ensure_ascii=False, default=str).encode


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request id and the caller's extras.

    Exceptions are logged as their type and stack frames only: an exception's message can quote the
    input that caused it, and the input is personal data.

    Every API request writes two lines (the check, the access), so a line must cost little: the
    date and time of the current second are formatted once, not per line.
    """

    _second: tuple[int, str] = (-1, "")

    def _timestamp(self, created: float) -> str:
        """ISO 8601 in UTC to the millisecond, as datetime.isoformat(timespec="milliseconds")."""
        whole = int(created)
        micros = round((created - whole) * 1e6)  # rounded to the microsecond as datetime does
        if micros >= 1_000_000:
            whole, micros = whole + 1, micros - 1_000_000
        second, text = self._second  # one tuple, read once: threads may replace it meanwhile
        if second != whole:
            text = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = (whole, text)
        return f"{text}.{micros // 1000:03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": scrub_text(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _NOT_EXTRAS and not key.startswith("_"):
                # An extra never overwrites the fixed fields ("level" of a verdict, say).
                entry[f"{key}_" if key in entry else key] = _scrub(value)
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, _, tb = record.exc_info
            entry["exc_type"] = f"{exc_type.__module__}.{exc_type.__qualname__}"
            entry["stack"] = [
                f"{frame.filename}:{frame.lineno} in {frame.name}"
                for frame in traceback.extract_tb(tb)
            ]
        return _encode(entry)


def json_handler(stream: Any = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    setattr(handler, _HANDLER_MARK, True)
    return handler


def configure(level: str | int = "INFO") -> None:
    """Send the `service` loggers (app, api, pipeline, ...) to stderr as JSON; idempotent."""
    logger = logging.getLogger("service")
    logger.setLevel(level)
    if not any(getattr(handler, _HANDLER_MARK, False) for handler in logger.handlers):
        logger.addHandler(json_handler())
    # Records also propagate to the root logger, where a host (pytest, an embedding app) may
    # collect them; gunicorn leaves the root logger without handlers, so nothing prints twice.


def lean_records() -> None:
    """Stop the logging module finding, for every record, the caller's file and line, thread and
    process (the logging HOWTO's "Optimization"): JsonFormatter writes none of them. Process-wide,
    so only for a process whose logs are all ours (the gunicorn server), never a host's."""
    logging._srcfile = None  # type: ignore[attr-defined]  # no stack walk per record
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def _assign_request_id() -> None:
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = offered if _CLIENT_REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex


def _echo_request_id(response: Response) -> Response:
    request_id = g.get("request_id")
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response


def init_app(app: Flask) -> None:
    configure(app.config["LOG_LEVEL"])
    app.before_request(_assign_request_id)
    app.after_request(_echo_request_id)
