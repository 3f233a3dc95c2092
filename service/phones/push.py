"""How one push leaves the outbox: apprise for the services people use, our JSON for webhooks.

apprise (github.com/caronc/apprise) speaks the push services a phone owner in China uses —
企业微信 group bots (`wecombot://`), 钉钉 (`dingtalk://`), 飞书 (`feishu://`), PushPlus
(`pushplus://`), Server酱 (`schan://`) — and ntfy, Bark, Telegram and e-mail, and keeps up with
their APIs so we do not have to. It sits behind the outbox (service/phones/notify.py), which still
decides when and how often to try.

- Hooks made before apprise stored `ntfy` or `bark` with an http(s) URL; they are translated
  here, at send time, to the same service's apprise URL (`https://ntfy.sh/topic` →
  `ntfys://ntfy.sh/topic`), so no stored hook or queued push needs changing.
- The generic `json` kind keeps its own sender: its body (title, body, source, category, level,
  risk, signals, official numbers) is what existing receivers were built against, and apprise's
  `json://` sends a different shape.
- apprise answers only "sent or not". The HTTP status of a refusal is read from the warning its
  plugins log (`…error=404.`), so a wrong key is abandoned at once, as before, instead of being
  retried for a day; without a status a failure is retried.
- apprise's own log lines describe the target (most plugins mask keys, none promises to): they
  are kept out of the service's logs (captured per attempt, never propagated), which carry one
  line per attempt from the outbox instead.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# Schemes a hook may use directly (README "SmsForwarder"); apprise knows many more, but a hook
# can only name services this project documents and tests the shape of.
APPRISE_SCHEMES = frozenset(
    {
        "wecombot",  # 企业微信 group robot
        "dingtalk",  # 钉钉
        "feishu",  # 飞书
        "lark",  # Lark (飞书 outside China)
        "pushplus",  # PushPlus (微信)
        "schan",  # Server酱
        "ntfy",
        "ntfys",
        "bark",
        "barks",
        "tgram",  # Telegram
        "mailto",
        "mailtos",
        "gotify",
        "gotifys",
    }
)
# A 4xx other than these will not change on retry (wrong topic, bad key): the push is abandoned.
RETRYABLE_4XX = frozenset({408, 425, 429})
_STATUS_IN_LOG = re.compile(r"error=(\d{3})\b")


class DeliveryError(Exception):
    def __init__(self, reason: str, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


def _failure(status: int | None, reason: str | None = None) -> DeliveryError:
    if status is None:
        return DeliveryError(reason or "not delivered")
    permanent = 400 <= status < 500 and status not in RETRYABLE_4XX
    return DeliveryError(f"HTTP {status}", permanent=permanent)


# --- apprise URLs ---------------------------------------------------------------------------


def is_apprise_url(url: str) -> bool:
    return urlsplit(url.strip()).scheme.lower() in APPRISE_SCHEMES


def check_apprise_url(url: str) -> str:
    """The URL if apprise can send to it; ValueError (one line, no secret in it) otherwise."""
    import apprise

    scheme = urlsplit(url).scheme.lower()
    if scheme not in APPRISE_SCHEMES:
        raise ValueError(
            f"unsupported push service {scheme!r}; use one of {', '.join(sorted(APPRISE_SCHEMES))}"
        )
    with _quiet():
        plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        raise ValueError(f"not a valid {scheme}:// URL (see apprise's page for {scheme})")
    return url


def apprise_url(kind: str, url: str) -> str:
    """The apprise URL a stored hook target is sent to (see the module docstring)."""
    if kind == "apprise":
        return url
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    segments = [segment for segment in parts.path.split("/") if segment]
    if kind == "ntfy":
        # One topic at the server's root: ntfy publishes JSON at the root, naming the topic.
        if len(segments) != 1:
            raise DeliveryError("an ntfy URL must be https://HOST/TOPIC", permanent=True)
        scheme, query = ("ntfys" if secure else "ntfy"), "priority=high&tags=warning&image=no"
    elif kind == "bark":
        # https://api.day.app/<device key>: Bark's /push endpoint takes the key in the body.
        if not segments:
            raise DeliveryError("a Bark URL must be https://HOST/DEVICE_KEY", permanent=True)
        segments = segments[:1]
        scheme, query = ("barks" if secure else "bark"), "level=timeSensitive&group=dunscan"
    else:
        raise DeliveryError(f"no apprise sender for kind {kind!r}", permanent=True)
    return urlunsplit((scheme, parts.netloc, "/" + "/".join(segments), query, ""))


# --- sending --------------------------------------------------------------------------------


class _PerThreadCapture(logging.Handler):
    """Collects apprise's log lines for the thread that is sending, and nobody else's."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        lines = getattr(self.local, "lines", None)
        if lines is not None and record.levelno >= logging.WARNING:
            lines.append(record.getMessage())


_capture = _PerThreadCapture()
_apprise_log = logging.getLogger("apprise")
_apprise_log.addHandler(_capture)
_apprise_log.propagate = False  # its lines describe targets, whose URLs are keys
_apprise_log.setLevel(logging.WARNING)


class _quiet:
    """Collect this thread's apprise warnings while inside."""

    def __enter__(self) -> list[str]:
        _capture.local.lines = []
        return _capture.local.lines

    def __exit__(self, *exc: Any) -> None:
        _capture.local.lines = None


def send_apprise(url: str, title: str, body: str, timeout_s: float) -> None:
    """One attempt through apprise; DeliveryError (permanent or not) unless it was sent."""
    import apprise

    with _quiet() as warnings:
        plugin = apprise.Apprise.instantiate(url)
        if plugin is None:
            raise DeliveryError("push URL not understood by apprise", permanent=True)
        plugin.socket_connect_timeout = timeout_s
        plugin.socket_read_timeout = timeout_s
        sent = plugin.notify(
            title=title, body=body, body_format=apprise.NotifyFormat.TEXT, notify_type="warning"
        )
    if sent:
        return
    status = next((int(m.group(1)) for w in warnings if (m := _STATUS_IN_LOG.search(w))), None)
    connection = any("connection error" in warning.lower() for warning in warnings)
    raise _failure(status, "connection error" if connection else None)


def send_json(
    url: str, document: dict[str, Any], timeout_s: float, headers: dict[str, str] | None = None
) -> None:
    """The generic webhook: our JSON document (and any headers), POSTed as it always was."""
    # Imported on the first delivery, not at start-up: ~3 MB in every worker that never pushes.
    import requests

    try:
        response = requests.post(url, json=document, headers=headers, timeout=timeout_s)
    except requests.RequestException as error:
        raise DeliveryError(type(error).__name__) from error
    if not 200 <= response.status_code < 300:
        raise _failure(response.status_code)
