"""The web page: paste or share a message, see the verdict with the evidence highlighted.

Routes (blueprint `web`; the installable-app files are in blueprint `web_assets`, which is not
rate limited, so a page load never spends a person's check allowance):

    GET  /                            the form (works without JavaScript)
    POST /                            the form's submit: the same page with the verdict
    GET  /share, POST /share          the Web Share Target action (manifest `share_target`)
    GET  /manifest.webmanifest        the web app manifest, with the share target
    GET  /sw.js                       the service worker, served from the root so its scope is `/`
    GET  /offline                     what the service worker shows when the phone is offline
    GET  /setup                       how to reach dunscan from a phone (install, HTTP Shortcuts,
                                      SmsForwarder)
    GET  /setup/http-shortcuts.json   a ready-made HTTP Shortcuts import for this server
    GET  /setup/qr.svg?target=NAME    a QR code for one of the setup links (never arbitrary text)
    GET  /assets/...                  CSS, JS and icons

Message text is hostile input: templates autoescape it, and every response of these blueprints
carries a strict Content-Security-Policy (no inline script or style anywhere).
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import segno
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from pydantic import ValidationError
from werkzeug.exceptions import RequestEntityTooLarge, TooManyRequests

from service.engine.pipeline import Analyzer
from service.engine.schemas import Verdict, parse_record
from service.http.api import API_KEY_HEADER, MAX_SENDER_CHARS, limit_characters, matching_key
from service.http.errors import ApiError
from service.http.metrics import count_verdict

# `X as X`: re-exported, they lived here before the result view moved to result_page.py.
from service.http.result_page import Segment as Segment
from service.http.result_page import evidence_segments as evidence_segments
from service.http.result_page import result_view
from service.http.result_page import tel_href as tel_href

log = logging.getLogger(__name__)

bp = Blueprint("web", __name__, template_folder="templates")
# Its own URL prefix: the app's default /static route would bypass this module's headers.
assets = Blueprint("web_assets", __name__, static_folder="static", static_url_path="/assets")
# The API path the HTTP Shortcuts import calls (the public contract of DESIGN.md).
API_CHECK_PATH = "/v1/check"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

# HTTP Shortcuts import format, as read in Waboodoo/HTTP-Shortcuts at commit 5e3bc298
# (import_export/ImportMigrator.kt: VERSION = COMPATIBILITY_VERSION = 90, app 3.28.0; the exporter
# writes both). Newer apps migrate a version-90 file forward; older ones refuse it with a clear
# "version mismatch" message rather than importing it wrongly.
HTTP_SHORTCUTS_FORMAT_VERSION = 90
HTTP_SHORTCUTS_MIN_APP = "3.28.0"
# Fixed ids (UUIDs, as the importer requires), so importing again updates the shortcut in place.
_HS_NAMESPACE = uuid.UUID("6f1c2d0e-8a43-4a51-9d55-0b6f3d2e7c11")
HS_CATEGORY_ID = str(uuid.uuid5(_HS_NAMESPACE, "category"))
HS_SHORTCUT_ID = str(uuid.uuid5(_HS_NAMESPACE, "shortcut"))
HS_VARIABLE_ID = str(uuid.uuid5(_HS_NAMESPACE, "variable"))
HS_VARIABLE_KEY = "dunscan_message"  # [A-Za-z0-9_]{1,30} (variables/Variables.kt)
HS_KEY_VARIABLE_ID = str(uuid.uuid5(_HS_NAMESPACE, "api-key-variable"))
HS_KEY_VARIABLE_KEY = "dunscan_api_key"
HS_SHORTCUT_NAME = "dunscan 查诈骗"

# The files the service worker keeps for offline use: the empty form, the setup page and the assets.
# Never a result page: those hold the person's message.
_SHELL_ASSETS = ("app.css", "app.js", "icons/icon-192.png", "icons/icon-512.png")


def _security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


bp.after_request(_security_headers)
assets.after_request(_security_headers)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(assets)
    limit_characters(app, "web.check")
    limit_characters(app, "web.share")
    for limiter in app.extensions.get("limiter", ()):
        limiter.exempt(assets)


# --- verdict rendering ------------------------------------------------------------------------


# The page's words, marks and reasons are built in service/http/result_page.py.


class InputProblem(Exception):
    """Input the page cannot check; shown on the page with its status, never as a 500."""

    def __init__(self, status: int, message: str, field: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def _max_chars() -> int:
    return int(current_app.config["MAX_TEXT_CHARS"])


def _check(text: str, sender: str) -> Verdict:
    if not text.strip():
        raise InputProblem(400, "请先粘贴或输入要检查的短信内容。", "text")
    if len(text) > _max_chars():
        raise InputProblem(413, f"短信内容太长（{len(text)} 字）：最多 {_max_chars()} 字。", "text")
    if len(sender) > MAX_SENDER_CHARS:
        raise InputProblem(400, f"发件号码太长：最多 {MAX_SENDER_CHARS} 个字符。", "sender")
    try:
        record = parse_record({"text": text, "sender": sender.strip() or None})
    except ValidationError as error:
        raise InputProblem(422, "输入无法识别，请检查后重试。", "text") from error
    analyzer: Analyzer = current_app.extensions["dunscan"]
    started = time.perf_counter()
    verdict = analyzer.check(record, "zh")
    count_verdict(verdict)
    # Counts, ids and timings only: the message and the number are personal data.
    log.info(
        "web check",
        extra={
            "has_sender": record.sender is not None,
            "text_chars": len(text),
            "category": verdict.category,
            "verdict_level": verdict.level,
            "signals": [signal.id for signal in verdict.signals],
            "ms": round((time.perf_counter() - started) * 1000, 2),
        },
    )
    return verdict


def _needs_api_key() -> bool:
    return bool(current_app.config.get("API_KEYS"))


@bp.context_processor
def _key_field() -> dict[str, Any]:
    return {"needs_api_key": _needs_api_key()}


def _require_form_key() -> None:
    """With API keys on, the form spends the same checks the API does, so it needs a key too.

    The key travels in the form (a password field the browser can remember), not a session: a
    CSRF token or a same-origin check would only prove the request came from our page, and
    anyone can load the page. The person's message is kept on the refusal page, so a shared SMS
    is not lost while the key is typed in."""
    if not _needs_api_key():
        return
    offered = request.form.get("api_key", "") or request.headers.get(API_KEY_HEADER, "")
    if not offered or matching_key(offered) is None:
        message = "这个服务需要访问密钥：请填入管理员给你的密钥后再检查。"
        raise InputProblem(401, message, "api_key")


def _render_check(text: str, sender: str, shared: bool = False) -> tuple[str, int]:
    try:
        _require_form_key()
        verdict = _check(text, sender)
    except InputProblem as problem:
        page = render_template(
            "index.html", text=text, sender=sender, error=problem, max_chars=_max_chars()
        )
        return page, problem.status
    result = result_view(text, verdict)
    page = render_template(
        "index.html",
        text=text,
        sender=sender,
        result=result,
        shared=shared,
        max_chars=_max_chars(),
    )
    return page, 200


def _no_store(page: str, status: int) -> Response:
    # A result page holds the person's message: no cache (browser, proxy, service worker) keeps it.
    response = Response(page, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def _form_value(name: str) -> str:
    value = request.form.get(name, "")
    return value.replace("\r\n", "\n")


def _error_page(problem: InputProblem) -> Response:
    page = render_template("index.html", text="", sender="", error=problem, max_chars=_max_chars())
    return _no_store(page, problem.status)


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_error: RequestEntityTooLarge) -> Response:
    return _error_page(InputProblem(413, f"提交的内容太大：短信最多 {_max_chars()} 字。", "text"))


@bp.errorhandler(TooManyRequests)
def _too_many(error: TooManyRequests) -> Response:
    response = _error_page(InputProblem(429, "检查得太频繁了，请过一分钟再试。", "text"))
    for name, value in error.get_headers():  # Retry-After and the limiter's headers
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


# The large-text choice is a cookie, so the server renders the page large from the first byte
# (no flash of small text) and it also works without JavaScript; app.js sets the same cookie.
TEXT_SIZE_COOKIE = "dunscan_text"
TEXT_SIZE_MAX_AGE = 400 * 24 * 3600  # browsers cap cookie lifetimes at 400 days


@bp.app_context_processor
def _text_size() -> dict[str, bool]:
    return {"large_text": request.cookies.get(TEXT_SIZE_COOKIE) == "large"}


@bp.get("/text-size")
def text_size() -> Response:
    """Switch large text on or off and go back to the form (the no-JavaScript path)."""
    response = redirect(url_for("web.index"), 303)
    if request.args.get("size") == "large":
        response.set_cookie(
            TEXT_SIZE_COOKIE, "large", max_age=TEXT_SIZE_MAX_AGE, samesite="Lax", httponly=False
        )
    else:
        response.delete_cookie(TEXT_SIZE_COOKIE, samesite="Lax")
    return response


@bp.get("/")
def index() -> Response:
    return Response(render_template("index.html", text="", sender="", max_chars=_max_chars()))


@bp.post("/")
def check() -> Response:
    return _no_store(*_render_check(_form_value("text"), _form_value("sender")))


def shared_message(title: str, text: str, url: str) -> str:
    """The message from a share: Android puts the SMS body in `text` (links included), sometimes
    only in `title`, and leaves `url` empty; a link sent on its own is appended unless present."""
    message = text if text.strip() else title
    if url.strip() and url.strip() not in message:
        message = f"{message}\n{url.strip()}" if message.strip() else url.strip()
    return message


@bp.get("/share")
def share_form() -> Response:
    # Opening the share action without a share (a bookmark, a reload) shows the empty form.
    return index()


@bp.post("/share")
def share() -> Response:
    message = shared_message(_form_value("title"), _form_value("text"), _form_value("url"))
    return _no_store(*_render_check(message, "", shared=True))


# --- installable app --------------------------------------------------------------------------


@functools.cache
def _shell_version() -> str:
    """Changes whenever a shell asset or template changes, so phones fetch the new shell.
    Computed once per process: browsers fetch /sw.js on nearly every navigation."""
    digest = hashlib.sha256()
    folders = (Path(assets.static_folder or ""), Path(bp.root_path) / (bp.template_folder or ""))
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                digest.update(path.name.encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@assets.get("/manifest.webmanifest")
def manifest() -> Response:
    icons = [
        {
            "src": url_for("web_assets.static", filename=f"icons/icon-{size}.png"),
            "sizes": f"{size}x{size}",
            "type": "image/png",
            "purpose": purpose,
        }
        for size in (192, 512)
        for purpose in ("any", "maskable")
    ]
    body = {
        "id": "/",
        "name": "dunscan 催收短信查诈骗",
        "short_name": "查诈骗",
        "description": "收到催收短信？粘贴或分享给我，看看是不是诈骗。",
        "lang": "zh-CN",
        "dir": "ltr",
        "start_url": url_for("web.index"),
        "scope": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#0d47a1",
        "icons": icons,
        "share_target": {
            "action": url_for("web.share"),
            "method": "POST",
            "enctype": "application/x-www-form-urlencoded",
            "params": {"title": "title", "text": "text", "url": "url"},
        },
    }
    response = jsonify(body)
    response.mimetype = "application/manifest+json"
    return response


@assets.get("/sw.js")
def service_worker() -> Response:
    shell = [
        url_for("web.index"),
        url_for("web_assets.offline"),
        url_for("web.setup"),
        url_for("web_assets.manifest"),
        *(url_for("web_assets.static", filename=name) for name in _SHELL_ASSETS),
    ]
    script = render_template(
        "sw.js",
        shell=shell,
        version=_shell_version(),
        offline_url=url_for("web_assets.offline"),
    )
    response = Response(script, mimetype="text/javascript")
    # Served from the root, so its default scope is already `/`; the header states it explicitly.
    response.headers["Service-Worker-Allowed"] = "/"
    response.headers["Cache-Control"] = "no-cache"
    return response


@assets.get("/offline")
def offline() -> Response:
    return Response(render_template("offline.html"))


# --- setup for phones -------------------------------------------------------------------------


# Host names that may build links when DUNSCAN_PUBLIC_URL is unset: the machine itself.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def _listed_hosts() -> list[str]:
    """DUNSCAN_PUBLIC_HOSTS: "dunscan.example.org,.example.net" (a leading dot: any subdomain)."""
    configured = current_app.config.get("PUBLIC_HOSTS") or ""
    names = configured.split(",") if isinstance(configured, str) else list(configured)
    return [*LOOPBACK_HOSTS, *(str(name).strip().lower() for name in names if str(name).strip())]


def host_is_listed(host: str, listed: list[str]) -> bool:
    """Whether a Host header (with or without a port) names one of `listed`."""
    try:
        hostname = (urlsplit(f"//{host}").hostname or "").rstrip(".")
    except ValueError:  # "[::1" and other broken brackets
        return False
    for name in listed:
        if name.startswith("."):
            if hostname.endswith(name) or hostname == name[1:]:
                return True
        elif hostname == name:
            return True
    return False


def public_base_url() -> str:
    """Where phones reach this server: `DUNSCAN_PUBLIC_URL` (config PUBLIC_URL) when set, which
    is what a server behind a proxy or tunnel needs; otherwise the URL this request came in on,
    but only for a host the operator listed in DUNSCAN_PUBLIC_HOSTS (or loopback).

    The Host header is the client's to write: a link built from any Host would let a stranger
    mint a setup page, an HTTP Shortcuts import and a QR code that send a person's messages to
    their own server."""
    configured = str(current_app.config.get("PUBLIC_URL") or "").strip()
    if configured:
        parts = urlsplit(configured)
        if parts.scheme in ("http", "https") and parts.netloc:
            return configured.rstrip("/")
    if not host_is_listed(request.host, _listed_hosts()):
        raise ApiError(
            400,
            "untrusted_host",
            "This server does not know its public address: its operator sets DUNSCAN_PUBLIC_URL "
            "or lists this host name in DUNSCAN_PUBLIC_HOSTS.",
        )
    return request.host_url.rstrip("/")


def _placeholder(variable_id: str) -> str:
    return "{{" + variable_id + "}}"  # variables/Variables.kt RAW_PLACEHOLDER_REGEX


def http_shortcuts_import(base_url: str, needs_api_key: bool = False) -> dict[str, Any]:
    """One HTTP Shortcuts shortcut that takes shared text, POSTs it to /v1/check asking for
    text/plain and shows the answer in a dialog. Field names and values follow the app's import
    models (import_export/models/*.kt) and enums (data/enums/*.kt).

    When the API requires a key, the file carries an empty static variable for it (the person
    types in the key they were given): a public download must never contain a key."""
    headers = [{"key": "Accept", "value": "text/plain"}]
    variables: list[dict[str, Any]] = [
        {
            "id": HS_VARIABLE_ID,
            "key": HS_VARIABLE_KEY,
            # A text prompt when the shortcut is started by hand; a share fills it instead.
            "type": "text",
            "title": "要检查的短信",
            "message": "粘贴收到的短信内容",
            "isShareText": True,
            "isMultiline": True,
            # The text goes inside a JSON string: the app escapes quotes and newlines.
            "jsonEncode": True,
        }
    ]
    if needs_api_key:
        headers.append({"key": "X-API-Key", "value": _placeholder(HS_KEY_VARIABLE_ID)})
        variables.append(
            {"id": HS_KEY_VARIABLE_ID, "key": HS_KEY_VARIABLE_KEY, "type": "constant", "value": ""}
        )
    return {
        "version": HTTP_SHORTCUTS_FORMAT_VERSION,
        "compatibilityVersion": HTTP_SHORTCUTS_FORMAT_VERSION,
        "categories": [
            {
                "id": HS_CATEGORY_ID,
                "name": "dunscan",
                "shortcuts": [
                    {
                        "id": HS_SHORTCUT_ID,
                        "executionType": "app",  # ShortcutExecutionType.HTTP
                        "name": HS_SHORTCUT_NAME,
                        "description": "把可疑短信分享到这里，看看是不是诈骗",
                        "method": "POST",
                        "url": f"{base_url}{API_CHECK_PATH}",
                        "requestBodyType": "custom_text",
                        "contentType": "application/json",
                        "bodyContent": '{"text": "' + _placeholder(HS_VARIABLE_ID) + '"}',
                        "headers": headers,
                        "timeout": 20000,
                        "responseHandling": {
                            "uiType": "dialog",
                            "successOutput": "response",
                            "failureOutput": "detailed",
                        },
                    }
                ],
            }
        ],
        "variables": variables,
    }


def _setup_links(base_url: str) -> dict[str, str]:
    import_url = f"{base_url}{url_for('web.http_shortcuts_file')}"
    return {
        "setup": f"{base_url}{url_for('web.setup')}",
        "home": f"{base_url}{url_for('web.index')}",
        "import_file": import_url,
        # Opens HTTP Shortcuts' import directly (DeepLinkViewModel: host "import", query "url").
        "http_shortcuts": f"http-shortcuts://import?url={quote(import_url, safe='')}",
        "api": f"{base_url}{API_CHECK_PATH}",
    }


@bp.get("/setup")
def setup() -> Response:
    base_url = public_base_url()
    secure = base_url.startswith("https://") or urlsplit(base_url).hostname in (
        "localhost",
        "127.0.0.1",
    )
    return Response(
        render_template(
            "setup.html",
            links=_setup_links(base_url),
            secure=secure,
            shortcut_name=HS_SHORTCUT_NAME,
            min_app=HTTP_SHORTCUTS_MIN_APP,
            needs_api_key=bool(current_app.config.get("API_KEYS")),
            api_key_variable=HS_KEY_VARIABLE_KEY,
        )
    )


@bp.get("/setup/http-shortcuts.json")
def http_shortcuts_file() -> Response:
    needs_api_key = bool(current_app.config.get("API_KEYS"))
    response = jsonify(http_shortcuts_import(public_base_url(), needs_api_key))
    response.headers["Content-Disposition"] = 'attachment; filename="dunscan-http-shortcuts.json"'
    return response


@bp.get("/setup/qr.svg")
def qr_code() -> Response:
    target = request.args.get("target", "setup")
    links = _setup_links(public_base_url())
    if target not in ("setup", "http_shortcuts", "home"):
        # Only our own setup links: the service must not mint QR codes for arbitrary text.
        message = "unknown QR target; use home, setup or http_shortcuts\n"
        return Response(message, 404, mimetype="text/plain")
    buffer = io.BytesIO()
    segno.make(links[target], error="m").save(
        buffer, kind="svg", scale=6, border=2, xmldecl=False, title=links[target]
    )
    return Response(buffer.getvalue(), mimetype="image/svg+xml")
