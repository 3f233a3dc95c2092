"""The JSON API (`/v1/*`) every surface calls, plus the health probes.

Input arrives in the shapes phones send: a JSON record, a form (`text`, `sender`) from HTTP
Shortcuts or Tasker, or the bare text as `text/plain`. All of them become the same validated record
(service.engine.schemas) and the same verdict. Limits (body, text, batch) answer 413, wrong shapes
422, and a client asking for `text/plain` gets the short summary a phone can show as is.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import limits
from flask import Blueprint, Flask, Response, current_app, jsonify, request
from pydantic import BaseModel, Field, ValidationError

from service.engine.numbers.directory import Brand, NumberEntry
from service.engine.numbers.phone_facts import phone_facts
from service.engine.pipeline import Analyzer
from service.engine.schemas import CallRecord, Lang, SmsRecord, Verdict, parse_record
from service.engine.summary import summarize
from service.http.errors import ApiError, ErrorDetail, field_path, validation_error
from service.http.metrics import count_verdict

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
LANGS: tuple[Lang, ...] = ("zh", "en")
# What ?lang= accepts (README, OpenAPI): zh or en in any case, optionally with a region.
LANG_PATTERN = r"^([zZ][hH]|[eE][nN])(-[A-Za-z0-9]+)*$"
# Text that is not only whitespace. The whitespace is spelled out (Python's str.isspace set)
# instead of \s, which means different things in Python and in the ECMA regexes of JSON Schema:
# the schema's pattern and the check below must refuse exactly the same strings.
WHITESPACE = "\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK = f"[^{WHITESPACE}]"


def is_blank(text: str) -> bool:
    return re.search(NOT_BLANK, text) is None


# The query parameters each operation reads; any other is refused rather than ignored.
QUERY_PARAMETERS: dict[str, frozenset[str]] = {
    "api.check": frozenset({"lang", "sender"}),
    "api.check_batch": frozenset({"lang"}),
}
MAX_SENDER_CHARS = 64
# Form fields a shortcut app may send; anything else in a form is ignored, like unknown JSON fields.
FORM_FIELDS = ("text", "sender", "kind", "id", "received_at", "direction", "duration_s")
JSON_TYPES = ("application/json",)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

api = Blueprint("api", __name__, url_prefix="/v1")
health = Blueprint("health", __name__)


# --- request and response models (the OpenAPI document is generated from these) ------------------


class BatchRequest(BaseModel):
    records: list[Any] = Field(
        min_length=1, description="Records as for /v1/check; at most MAX_BATCH (default 100)."
    )


class BatchItem(BaseModel):
    """One input record's outcome: its verdict, or the error that record alone caused."""

    index: int
    verdict: Verdict | None = None
    error: ErrorDetail | None = None


class BatchResponse(BaseModel):
    results: list[BatchItem]
    count: int
    errors: int


class NumberResponse(BaseModel):
    """What one number is: its type, the brand it belongs to and whether it is an official one."""

    raw: str
    normalized: str | None
    type: str
    brand: str | None = None
    brand_name: str | None = None
    official: bool = False
    detail: str | None = None
    region: str | None = None
    location: str | None = Field(default=None, description="归属地 (phonenumbers' geocoder)")
    carrier: str | None = Field(default=None, description="Carrier of the number's segment")
    virtual_operator: bool = False


class OfficialNumber(BaseModel):
    number: str
    verified: bool = Field(description="False: recalled, but no public page states it.")
    source: str
    checked: date


class OfficialDomain(BaseModel):
    domain: str
    verified: bool
    source: str
    checked: date


class BrandContacts(BaseModel):
    """How a brand really contacts people, each entry with its public source."""

    id: str
    name: str
    category: str
    aliases: list[str]
    app: str | None = None
    voice: list[OfficialNumber]
    sms_ports: list[OfficialNumber]
    domains: list[OfficialDomain]
    verified: bool = Field(description="False when none of its numbers could be verified.")
    open_lists: bool = Field(
        default=False,
        description="True when its genuine messages also use numbers and links not listed here "
        "(a carrier's regional sites): an unlisted one is then no sign of fraud.",
    )


class BrandsResponse(BaseModel):
    brands: list[BrandContacts]


class HealthResponse(BaseModel):
    status: str


class ReadyResponse(BaseModel):
    status: str
    checks: dict[str, bool]
    versions: dict[str, str | None]


# --- helpers ------------------------------------------------------------------------------------


def analyzer() -> Analyzer:
    return current_app.extensions["dunscan"]


def matching_key(offered: str) -> str | None:
    """The configured key equal to `offered`, compared in constant time against every key."""
    found = None
    for key in current_app.config["API_KEYS"]:
        if hmac.compare_digest(key.encode(), offered.encode()):
            found = key
    return found


def rate_limit_key() -> str:
    """Limits count per API key when a valid one is sent, else per client address."""
    offered = request.headers.get(API_KEY_HEADER, "")
    if offered and current_app.config["API_KEYS"] and matching_key(offered):
        # Only a digest reaches the limiter's storage (which may be a shared Redis).
        return "key:" + hashlib.sha256(offered.encode()).hexdigest()[:16]
    return "ip:" + (request.remote_addr or "unknown")


@api.before_request
def _require_api_key() -> None:
    if not current_app.config["API_KEYS"]:
        return
    offered = request.headers.get(API_KEY_HEADER, "")
    if not offered or matching_key(offered) is None:
        raise ApiError(
            401,
            "unauthorized",
            f"A valid API key is required in the {API_KEY_HEADER} header.",
            headers={"WWW-Authenticate": f'ApiKey header="{API_KEY_HEADER}"'},
        )


@api.before_request
def _refuse_unknown_query_parameters() -> None:
    allowed = QUERY_PARAMETERS.get(request.endpoint or "", frozenset())
    unknown = sorted(set(request.args) - allowed)
    if unknown:
        listed = ", ".join(sorted(allowed)) or "none"
        raise ApiError(
            422,
            "validation_error",
            f"Unknown query parameter {unknown[0]!r}; this endpoint takes: {listed}.",
            unknown[0],
        )


def _lang() -> Lang:
    """?lang=en|zh wins; otherwise the Accept-Language header; Chinese by default."""
    asked = request.args.get("lang")
    if asked is not None:
        # The schema's own pattern decides (searched, as JSON Schema does), so the two agree.
        matched = re.search(LANG_PATTERN, asked)
        if matched is None:
            raise ApiError(422, "validation_error", "lang must be 'zh' or 'en'", "lang")
        return matched.group(1).lower()  # type: ignore[return-value]
    return request.accept_languages.best_match(LANGS, default="zh")  # type: ignore[return-value]


def _wants_text() -> bool:
    return request.accept_mimetypes.best_match(["application/json", "text/plain"]) == "text/plain"


def parse_json(data: bytes) -> Any:
    """JSON from a request body, or an ApiError (400) saying what is wrong with it.

    Beside malformed JSON, two inputs make Python's parser raise errors of its own: nesting deep
    enough to exhaust the stack (RecursionError) and an integer of more than 4,300 digits (a
    plain ValueError from int()). Both are the client's fault and are answered as such.
    """
    try:
        return json.loads(data)
    except UnicodeDecodeError:
        raise ApiError(400, "malformed_json", "The request body is not valid UTF-8.") from None
    except json.JSONDecodeError as error:
        raise ApiError(
            400,
            "malformed_json",
            f"The request body is not valid JSON: {error.msg} (line {error.lineno}, column "
            f"{error.colno}).",
        ) from None
    except RecursionError:
        raise ApiError(400, "malformed_json", "The JSON is nested too deeply.") from None
    except ValueError:  # "Exceeds the limit (4300 digits) for integer string conversion"
        raise ApiError(
            400,
            "malformed_json",
            f"The JSON holds a number with more than {sys.get_int_max_str_digits()} digits.",
        ) from None


def _json_body() -> Any:
    data = request.get_data(cache=True)  # over MAX_BODY_BYTES: werkzeug raises 413 here
    if not data.strip():
        raise ApiError(400, "malformed_json", 'The request body is empty; send {"text": "..."}.')
    return parse_json(data)


def _form_body() -> dict[str, Any]:
    fields: dict[str, Any] = {
        name: value for name, value in request.form.items() if name in FORM_FIELDS
    }
    # A form carries only strings; a duration written as digits is the number it means.
    duration = fields.get("duration_s")
    if isinstance(duration, str) and duration.strip().isdigit():
        fields["duration_s"] = int(duration)
    return fields


def _text_body() -> dict[str, Any]:
    charset = request.mimetype_params.get("charset", "utf-8")
    try:
        text = request.get_data(cache=True).decode(charset)
    except (LookupError, UnicodeDecodeError):
        raise ApiError(400, "malformed_body", f"The body is not valid {charset} text.") from None
    fields: dict[str, Any] = {"text": text}
    if request.args.get("sender"):
        fields["sender"] = request.args["sender"]
    return fields


def _unsupported(accepted: str) -> ApiError:
    got = request.mimetype or "no Content-Type"
    return ApiError(415, "unsupported_media_type", f"Send {accepted} (got {got}).")


def _record_input() -> Any:
    """The body of /v1/check in whichever shape it came, as JSON-like data."""
    mimetype = request.mimetype
    if mimetype in JSON_TYPES or mimetype.endswith("+json"):
        return _json_body()
    if mimetype in FORM_TYPES:
        return _form_body()
    if mimetype == "text/plain":
        return _text_body()
    raise _unsupported("application/json, a form (text, sender) or text/plain")


def _record(data: Any, prefix: tuple[str | int, ...] = ()) -> SmsRecord | CallRecord:
    """Validate one record and apply the service's limits; raises ApiError."""

    def field(name: str) -> str | None:
        return field_path((*prefix, name))

    if not isinstance(data, dict):
        message = "A record must be a JSON object."
        raise ApiError(422, "validation_error", message, field_path(prefix))
    sender = data.get("sender")
    if isinstance(sender, str):
        # Counted as sent, before trimming: the limit is the schema's maxLength.
        too_long = len(sender) > MAX_SENDER_CHARS
        sender = "" if is_blank(sender) else sender.strip()
        # An empty sender (a shortcut's unset variable) means "no sender", not a number to check.
        data = {**data, "sender": sender or None}
        if too_long:
            raise ApiError(
                422,
                "validation_error",
                f"sender is longer than {MAX_SENDER_CHARS} characters.",
                field("sender"),
            )
    try:
        record = parse_record(data)
    except ValidationError as error:
        raise validation_error(error, prefix) from None
    max_chars = current_app.config["MAX_TEXT_CHARS"]
    if record.text is not None and len(record.text) > max_chars:
        raise ApiError(
            413, "text_too_long", f"text is longer than {max_chars} characters.", field("text")
        )
    if record.kind == "sms" and is_blank(record.text or ""):
        raise ApiError(422, "validation_error", "text is empty.", field("text"))
    return record


def _check(record: SmsRecord | CallRecord, lang: Lang) -> Verdict:
    return _check_many([record], lang)[0]


def _check_many(records: list[SmsRecord | CallRecord], lang: Lang) -> list[Verdict]:
    """Verdicts for records scored together (one model pass), each counted and logged."""
    started = time.perf_counter()
    verdicts = analyzer().check_many(records, lang=lang)
    # A batch's records share its time: the log says what one of them cost on average.
    share_ms = round((time.perf_counter() - started) * 1000 / max(len(records), 1), 2)
    for record, verdict in zip(records, verdicts, strict=True):
        count_verdict(verdict)
        # Ids, counts and timings only: the text and the numbers are personal data.
        log.info(
            "check",
            extra={
                "kind": record.kind,
                "has_sender": record.sender is not None,
                "text_chars": len(record.text or ""),
                "category": verdict.category,
                "verdict_level": verdict.level,
                "risk": verdict.risk,
                "signals": [signal.id for signal in verdict.signals],
                "lang": lang,
                "ms": share_ms,
            },
        )
    return verdicts


# --- endpoints ------------------------------------------------------------------------------------


@api.post("/check")
def check() -> Response:
    lang = _lang()
    query_sender = request.args.get("sender")
    if query_sender is not None and len(query_sender) > MAX_SENDER_CHARS:
        # Checked whatever the body's type (only text/plain reads it), as the schema says.
        message = f"sender is longer than {MAX_SENDER_CHARS} characters."
        raise ApiError(422, "validation_error", message, "sender")
    record = _record(_record_input())
    verdict = _check(record, lang)
    if _wants_text():
        return Response(summarize(verdict, lang=lang), content_type="text/plain; charset=utf-8")
    # pydantic's own serializer: the same JSON as jsonify(model_dump()), a third of the time.
    return Response(verdict.model_dump_json(), mimetype="application/json")


# A batch with more text than this is "large": each process scores one large batch at a time, and
# answers another with 503 and Retry-After meanwhile. The character budget stops one client from
# sending many; this stops many clients' first batches from taking every worker at once, so an
# ordinary check always finds a thread and its share of the CPU.
LARGE_BATCH_CHARS = 50_000
BUSY_RETRY_AFTER_S = 5
_LARGE_BATCH_SLOT = "dunscan_large_batch_slot"


def _text_characters(records: list[Any]) -> int:
    return sum(
        len(item["text"])
        for item in records
        if isinstance(item, dict) and isinstance(item.get("text"), str)
    )


@contextmanager
def _large_batch_slot(characters: int) -> Iterator[None]:
    if characters <= LARGE_BATCH_CHARS:
        yield
        return
    slot = current_app.extensions.setdefault(_LARGE_BATCH_SLOT, threading.Lock())
    if not slot.acquire(blocking=False):
        raise ApiError(
            503,
            "busy",
            f"Another batch of more than {LARGE_BATCH_CHARS} characters is being checked here; "
            f"retry after {BUSY_RETRY_AFTER_S} s, or send smaller batches.",
            headers={"Retry-After": str(BUSY_RETRY_AFTER_S)},
        )
    try:
        yield
    finally:
        slot.release()


@api.post("/check/batch")
def check_batch() -> Response:
    lang = _lang()
    if not (request.mimetype in JSON_TYPES or request.mimetype.endswith("+json")):
        raise _unsupported("application/json")
    body = _json_body()
    if not isinstance(body, dict):
        raise ApiError(422, "validation_error", 'Send an object: {"records": [...]}.', None)
    try:
        batch = BatchRequest.model_validate(body)
    except ValidationError as error:
        raise validation_error(error) from None
    max_batch = current_app.config["MAX_BATCH"]
    if len(batch.records) > max_batch:
        raise ApiError(
            413, "batch_too_large", f"At most {max_batch} records per request.", "records"
        )
    results: list[dict[str, Any]] = []
    with _large_batch_slot(_text_characters(batch.records)):
        valid: list[tuple[int, SmsRecord | CallRecord]] = []
        for index, data in enumerate(batch.records):
            try:
                valid.append((index, _record(data, ("records", index))))
            except ApiError as error:
                results.append({"index": index, "error": error.detail()})
        # The valid records are scored together: one model pass for the whole batch.
        verdicts = _check_many([record for _, record in valid], lang)
        for (index, _), verdict in zip(valid, verdicts, strict=True):
            results.append({"index": index, "verdict": verdict.model_dump(mode="json")})
    results.sort(key=lambda item: item["index"])
    failed = sum("error" in item for item in results)
    return jsonify({"results": results, "count": len(results), "errors": failed})


@api.get("/numbers/<number>")
def number(number: str) -> Response:
    # Blank and length as the schema states them (pattern, maxLength): on the value as sent.
    raw = number.strip()
    if is_blank(number) or len(number) > MAX_SENDER_CHARS:
        raise ApiError(
            422,
            "validation_error",
            f"number must be 1 to {MAX_SENDER_CHARS} characters.",
            "number",
        )
    directory = analyzer().directory
    info = directory.classify(raw)
    brand = directory.brands.get(info.brand) if info.brand else None
    facts = phone_facts(info)
    body = NumberResponse(
        **{**dataclasses.asdict(info), "type": str(info.type)},
        brand_name=brand.name if brand else None,
        location=facts.location,
        carrier=facts.carrier,
        virtual_operator=facts.virtual_operator,
    )
    return jsonify(body.model_dump(mode="json"))


@api.get("/brands")
def brands() -> Response:
    directory = analyzer().directory
    listed = [_brand_contacts(brand) for brand in directory.brands.values()]
    return jsonify(BrandsResponse(brands=listed).model_dump(mode="json"))


def _brand_contacts(brand: Brand) -> BrandContacts:
    def number_entry(entry: NumberEntry) -> OfficialNumber:
        return OfficialNumber(
            number=entry.number, verified=entry.verified, source=entry.source, checked=entry.checked
        )

    return BrandContacts(
        id=brand.id,
        name=brand.name,
        category=brand.category,
        open_lists=brand.open_lists,
        aliases=list(brand.aliases),
        app=brand.app,
        voice=[number_entry(entry) for entry in brand.voice],
        sms_ports=[number_entry(entry) for entry in brand.sms_ports],
        domains=[
            OfficialDomain(
                domain=entry.domain,
                verified=entry.verified,
                source=entry.source,
                checked=entry.checked,
            )
            for entry in brand.domains
        ],
        verified=brand.verified,
    )


@health.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@health.get("/readyz")
def readyz() -> tuple[Response, int]:
    loaded = current_app.extensions.get("dunscan")
    versions: dict[str, str | None] = dict(loaded.versions) if loaded else {}
    checks = {
        "rules": bool(versions.get("rules")),
        "numbers": bool(versions.get("numbers")),
        "model": bool(versions.get("model")),
    }
    ready = checks["rules"] and checks["numbers"]
    if current_app.config["REQUIRE_MODEL"]:
        ready = ready and checks["model"]
    body = {"status": "ready" if ready else "not_ready", "checks": checks, "versions": versions}
    return jsonify(body), 200 if ready else 503


# --- work limits --------------------------------------------------------------------------------

# Characters of message text per minute, per API key (or client address), shared by every route
# that scores text, beside the request budget: one maximal batch (100 x 5,000 characters) costs
# as much scoring as 500 single checks, while counting as one request. The default lets one such
# batch (500,000 characters of text plus its JSON) through per minute; a budget below that would
# refuse a maximal batch on every retry.
DEFAULT_RATELIMIT_CHARS = "600000/minute"
CHARACTERS_SCOPE = "characters"


def _character_limit() -> str:
    return str(current_app.config.get("RATELIMIT_CHARS") or DEFAULT_RATELIMIT_CHARS)


def request_characters() -> int:
    """What a request asks to be scored, in characters: form values, else the decoded body,
    plus query values. Counted before the body is parsed (the limiter runs first)."""
    if request.mimetype in FORM_TYPES:
        count = sum(len(value) for value in request.form.values())
    else:
        count = len(request.get_data(cache=True).decode("utf-8", "replace"))
    count += sum(len(value) for value in request.args.values())
    return max(count, 1)


def _character_limit_message() -> str:
    return f"{_character_limit()} characters of message text"


def limit_characters(app: Flask, endpoint: str) -> None:
    """Put `endpoint` under the shared characters-per-minute budget (DUNSCAN_RATELIMIT_CHARS)."""
    configured = app.config.get("RATELIMIT_CHARS") or DEFAULT_RATELIMIT_CHARS
    try:
        limits.parse_many(str(configured))
    except ValueError as error:
        raise ValueError(
            f"invalid configuration: DUNSCAN_RATELIMIT_CHARS: {configured!r}: {error}"
        ) from None
    for limiter in app.extensions.get("limiter", ()):
        app.view_functions[endpoint] = limiter.shared_limit(
            _character_limit,
            scope=CHARACTERS_SCOPE,
            cost=request_characters,
            error_message=_character_limit_message,
            override_defaults=False,  # a route keeps its other limits beside this one
        )(app.view_functions[endpoint])


def init_app(app: Flask) -> None:
    app.register_blueprint(api)
    app.register_blueprint(health)
    limit_characters(app, "api.check")
    limit_characters(app, "api.check_batch")
