"""The `webhooks` blueprint: SmsForwarder posts every SMS and call record here.

    POST|PUT|PATCH|GET /hooks/sf/<token>

The token in the path picks the hook (unknown: 404). With a secret, `timestamp` and `sign` must
be present, fresh and right (otherwise 401, nothing scored). A record is accepted in one database
transaction that also records its signature and fingerprint (to refuse replays and answer resends
as duplicates) and, when the verdict is high risk, adds the push to the outbox; the answer (2xx)
goes out only after that commit, so nothing accepted is lost, and the push itself is delivered by
the worker in service.phones.notify, never on the request.

Logs carry the hook id, the outcome and timings; never the token, the text or a full number.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from flask import Blueprint, Flask, current_app, jsonify, request
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from werkzeug.routing import PathConverter

from service.engine.schemas import CallRecord, SmsRecord
from service.http.api import limit_characters, parse_json
from service.http.errors import ApiError, validation_error
from service.phones import notify
from service.phones.smsforwarder import (
    HOOK_PATH_PREFIX,
    ForwarderRequestError,
    parse_timestamp_ms,
    record_fingerprint,
    timestamp_is_fresh,
    to_record,
    verify_sign,
)
from service.phones.store import Hook, SeenKey, find_hook, store_for

log = logging.getLogger(__name__)

blueprint = Blueprint("webhooks", __name__)


class _TokenAndRestConverter(PathConverter):
    """The token, and whatever SmsForwarder's template-less GET glues on with '&' (may hold
    decoded newlines, which the stock path converter does not match)."""

    regex = "(?s:[^/].*?)"


SETTINGS: dict[str, float] = {
    "HOOK_MAX_SKEW_S": 3600.0,  # accepted distance between the phone's timestamp and our clock
    "HOOK_DEDUP_S": 3600.0,  # identical records (hook, sender, body) within this are duplicates
}
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def _setting(name: str) -> float:
    value = current_app.config.get(name)
    return float(SETTINGS[name] if value is None else value)


def _refuse(outcome: str, hook_id: int | None, started: float, error: ApiError) -> ApiError:
    _log(outcome, hook_id, started)
    return error


def _log(outcome: str, hook_id: int | None, started: float, **extra: Any) -> None:
    log.info(
        "smsforwarder hook",
        extra={
            "hook_id": hook_id,
            "outcome": outcome,
            "ms": round((time.perf_counter() - started) * 1000, 1),
            **extra,
        },
    )


def _fields(path_rest: str | None) -> dict[str, Any]:
    """Every field the request carries: query string, form body or JSON body, merged."""
    fields: dict[str, Any] = {}
    if path_rest is not None:
        # SmsForwarder's GET mode without a template appends "&content=…" to the path itself.
        fields.update(parse_qsl(path_rest, keep_blank_values=True))
    fields.update(request.args.to_dict())
    if request.is_json:
        data = request.get_data(cache=True)
        body = parse_json(data) if data.strip() else None
        if not isinstance(body, dict):
            raise ApiError(400, "bad_request", "the body is not a JSON object", "body")
        fields.update(body)
    elif request.mimetype == "application/x-www-form-urlencoded":
        fields.update(request.form.to_dict())
    elif request.mimetype.startswith("text/") and request.content_length:
        # A text/* Content-Type header sends the template as a string; a JSON one is usual.
        try:
            body = parse_json(request.get_data())
        except ApiError:  # not JSON: the text itself is the message
            body = None
        if isinstance(body, dict):
            fields.update(body)
        else:
            fields.setdefault("org_content", request.get_data(as_text=True))
    return fields


def _raw_path_rest(token_and_rest: str) -> str | None:
    """The still-encoded part after '&' in the request path (werkzeug has decoded request.path)."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or ""
    raw_path = raw.split("?", 1)[0]
    if "&" in raw_path:
        return raw_path.split("&", 1)[1]
    return token_and_rest.split("&", 1)[1] if "&" in token_and_rest else None


def _check_signature(hook: Hook, fields: dict[str, Any], started: float) -> str:
    """The signature key to remember (timestamp + sign), or raise 401."""
    assert hook.secret is not None
    received = fields.get("sign")
    if not isinstance(received, str) or not received:
        raise _refuse(
            "unsigned",
            hook.id,
            started,
            ApiError(401, "unauthorized", "this hook needs a signed request (sign)", "sign"),
        )
    try:
        timestamp_ms = parse_timestamp_ms(str(fields.get("timestamp") or ""))
    except ForwarderRequestError as error:
        raise _refuse(
            "unsigned", hook.id, started, ApiError(401, "unauthorized", str(error), error.field)
        ) from error
    if not timestamp_is_fresh(timestamp_ms, _setting("HOOK_MAX_SKEW_S")):
        raise _refuse(
            "stale",
            hook.id,
            started,
            ApiError(
                401,
                "unauthorized",
                "timestamp is too far from the server's clock; check the phone's time",
                "timestamp",
            ),
        )
    if not verify_sign(hook.secret, str(timestamp_ms), received):
        raise _refuse(
            "bad_sign",
            hook.id,
            started,
            ApiError(401, "unauthorized", "sign does not match this hook's secret", "sign"),
        )
    return f"sig:{timestamp_ms}"


class _AcceptedMeanwhile(Exception):
    """Another request committed the same key after this transaction last looked."""


def _remember(
    session: Any, hook_id: int, key: str, fingerprint: str | None, ttl_s: float, now: float
) -> None:
    """Record a key for this hook; _AcceptedMeanwhile when it is already there and current.

    On SQLite the transaction holds the write lock from its start (BEGIN IMMEDIATE), so nothing
    can appear between _seen_answer and here. On PostgreSQL (read committed) each statement sees
    what others committed up to then: a concurrent request may have accepted the same record
    since, and this one must not be accepted (and pushed) a second time.
    """
    existing = session.query(SeenKey).filter_by(hook_id=hook_id, key=key).one_or_none()
    if existing is not None:
        if existing.expires_at >= now:
            raise _AcceptedMeanwhile(key)
        session.delete(existing)
        session.flush()
    session.add(SeenKey(hook_id=hook_id, key=key, fingerprint=fingerprint, expires_at=now + ttl_s))
    session.flush()


def _seen_answer(
    session: Any,
    hook: Hook,
    signature_key: str | None,
    fingerprint: str,
    now: float,
    started: float,
) -> dict[str, Any] | None:
    """The answer to a record already accepted, else None; raises 401 for a lifted signature."""
    duplicate = {"accepted": True, "duplicate": True}
    if signature_key is not None:
        seen = session.query(SeenKey).filter_by(hook_id=hook.id, key=signature_key)
        previous = seen.one_or_none()
        if previous is not None and previous.expires_at >= now:
            if previous.fingerprint != fingerprint:
                # Same timestamp and sign, other content: the signature was lifted.
                raise _refuse(
                    "replay",
                    hook.id,
                    started,
                    ApiError(401, "unauthorized", "this signature was already used", "sign"),
                )
            _log("duplicate", hook.id, started, reason="resend")
            return duplicate
    record_key = session.query(SeenKey).filter_by(hook_id=hook.id, key=f"rec:{fingerprint}")
    existing = record_key.one_or_none()
    if existing is not None and existing.expires_at >= now:
        _log("duplicate", hook.id, started, reason="same_record")
        return duplicate
    return None


def _accept(
    hook: Hook, record: SmsRecord | CallRecord, signature_key: str | None, started: float
) -> tuple[dict[str, Any], int]:
    store = store_for(current_app)
    analyzer = current_app.extensions["dunscan"]
    fingerprint = record_fingerprint(hook.id, record)
    now = time.time()
    # A resend or a replay is answered without scoring it.
    with store.session() as session:
        answer = _seen_answer(session, hook, signature_key, fingerprint, now, started)
    if answer is not None:
        return answer, 200
    # Scored outside any transaction: a write transaction holds the database's write lock (for
    # SQLite, the whole file), and every other hook's message would wait for this scoring.
    scoring = time.perf_counter()
    verdict = analyzer.check(record, lang="zh")
    score_ms = round((time.perf_counter() - scoring) * 1000, 1)
    notified = bool(hook.notify_url) and notify.should_notify(verdict)
    try:
        with store.session() as session:
            # Again inside the transaction: a concurrent request may have accepted it meanwhile.
            answer = _seen_answer(session, hook, signature_key, fingerprint, now, started)
            if answer is not None:
                return answer, 200
            if signature_key is not None:
                ttl = 2 * _setting("HOOK_MAX_SKEW_S")
                _remember(session, hook.id, signature_key, fingerprint, ttl, now)
            _remember(session, hook.id, f"rec:{fingerprint}", None, _setting("HOOK_DEDUP_S"), now)
            if notified:
                title, body, payload = notify.compose(record, verdict)
                notify.enqueue(
                    session,
                    hook_id=hook.id,
                    url=hook.notify_url or "",
                    kind=hook.notify_kind or "json",
                    title=title,
                    body=body,
                    payload=payload,
                )
    except (IntegrityError, _AcceptedMeanwhile):
        # A concurrent request with the same record or signature committed first (its insert
        # won the unique key, or it committed before ours looked): rolled back, nothing saved.
        _log("duplicate", hook.id, started, reason="race")
        return {"accepted": True, "duplicate": True}, 200
    if notified:
        notify.wake(current_app)
    _log(
        "accepted",
        hook.id,
        started,
        kind=record.kind,
        verdict_level=verdict.level,
        category=verdict.category,
        notified=notified,
        score_ms=score_ms,
    )
    from service.engine.summary import summarize

    return {
        "accepted": True,
        "duplicate": False,
        "kind": record.kind,
        "risk": verdict.risk,
        "level": verdict.level,
        "category": verdict.category,
        "notified": notified,
        "summary": summarize(verdict, "zh"),
    }, 200


@blueprint.route("/hooks/sf/<sf_token:token>", methods=["GET", "POST", "PUT", "PATCH"])
def smsforwarder(token: str) -> Any:
    started = time.perf_counter()
    token_part, _, rest = token.partition("&")
    if not token_part or not set(token_part) <= _TOKEN_CHARS:
        raise _refuse(
            "unknown_hook", None, started, ApiError(404, "not_found", "no such hook; check the URL")
        )
    hook = find_hook(token_part, store=store_for(current_app))
    if hook is None:
        raise _refuse(
            "unknown_hook", None, started, ApiError(404, "not_found", "no such hook; check the URL")
        )
    fields = _fields(_raw_path_rest(token) if rest else None)
    signature_key = _check_signature(hook, fields, started) if hook.secret else None
    try:
        record = to_record(fields)
    except ForwarderRequestError as error:
        refusal = ApiError(422, "validation_error", str(error), error.field)
        raise _refuse("bad_request", hook.id, started, refusal) from error
    except ValidationError as error:
        raise _refuse("bad_request", hook.id, started, validation_error(error)) from error
    max_chars = int(current_app.config["MAX_TEXT_CHARS"])
    if len(record.text or "") > max_chars:
        refusal = ApiError(
            413,
            "text_too_long",
            f"the message is longer than {max_chars} characters",
            "org_content",
        )
        raise _refuse("too_long", hook.id, started, refusal)
    body, status = _accept(hook, record, signature_key, started)
    return jsonify(body), status


def redact_hook_paths(environ: dict[str, Any]) -> None:
    """The path holds the hook token (and, in the app's template-less GET mode, the message):
    the server's access log reads PATH_INFO from this same environ after the response, so it is
    shortened here to the first characters of the token."""
    for key in ("PATH_INFO", "RAW_URI", "REQUEST_URI"):
        value = environ.get(key)
        if isinstance(value, str) and value.startswith(HOOK_PATH_PREFIX):
            token = value[len(HOOK_PATH_PREFIX) :]
            environ[key] = f"{HOOK_PATH_PREFIX}{token[:4]}…"


def _redacting(wsgi_app: Callable[..., Any]) -> Callable[..., Any]:
    # Around the whole app, not on the blueprint: a DELETE, TRACE or made-up method on a hook URL
    # never reaches the blueprint (405 or 404 from routing), and its path is logged all the same.
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        try:
            return wsgi_app(environ, start_response)
        finally:
            redact_hook_paths(environ)

    return app


def init_app(app: Flask) -> None:
    app.wsgi_app = _redacting(app.wsgi_app)  # type: ignore[method-assign]
    app.url_map.converters["sf_token"] = _TokenAndRestConverter
    app.register_blueprint(blueprint)
    limit_characters(app, "webhooks.smsforwarder")
    store_for(app)  # create the tables at start, not on the first phone's request
    notify.init_app(app)
