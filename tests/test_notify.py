"""Push notifications: a real HTTP receiver on loopback, the real worker, the real database.

Waiting is a bounded poll (no timing is asserted): each test waits until the receiver has what
it should, or gives up after a generous limit and fails with what it saw.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from service.app import create_app
from service.cli.main import main as cli_main
from service.engine.pipeline import Analyzer
from service.engine.schemas import SmsRecord
from service.phones import notify
from service.phones.notify import Deliverer, compose
from service.phones.store import HookInfo, Outbox, Store, create_hook, store_for

SCAM_SENDER = "+86 171 2345 6789"
SCAM_TEXT = (
    "【支付宝】您的借呗账户异常已被冻结，需缴纳解冻费2000元，请加微信kf8888处理，"
    "否则影响征信。退订回T"
)
WAIT_LIMIT_S = 20.0


def wait_for(condition: Callable[[], bool], what: str, limit_s: float = WAIT_LIMIT_S) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    pytest.fail(f"gave up waiting for: {what}")


class Receiver:
    """A notification server on 127.0.0.1: records every request; answers `status`."""

    def __init__(self, port: int = 0, status: int = 200) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                receiver.received.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers.items()),
                        "body": self.rfile.read(length),
                    }
                )
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/alerts") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    """A loopback port nothing listens on (yet): the receiver is 'down'."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'notify.sqlite3'}"


@pytest.fixture
def make_app(db_url: str, analyzer: Analyzer) -> Iterator[Callable[..., Flask]]:
    apps: list[Flask] = []

    def build(**config: Any) -> Flask:
        settings = {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "RATELIMIT_ENABLED": False,
            "NOTIFY_POLL_S": 0.05,
            "NOTIFY_BACKOFF_S": 0.05,
            "NOTIFY_BACKOFF_MAX_S": 0.2,
            "NOTIFY_TIMEOUT_S": 5,
            **config,
        }
        app = create_app(settings, analyzer=analyzer)
        apps.append(app)
        return app

    yield build
    for app in apps:
        notify.stop_worker(app)


def forward_scam(app: Flask, hook: HookInfo) -> dict[str, Any]:
    response = app.test_client().post(
        hook.path, data={"from": SCAM_SENDER, "org_content": SCAM_TEXT}
    )
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert answer["notified"] is True, answer
    return answer


def outbox(store: Store) -> list[Outbox]:
    with store.session() as session:
        return list(session.scalars(select(Outbox).order_by(Outbox.id)))


def test_an_old_ntfy_hook_still_delivers_through_apprise(
    make_app: Callable[..., Flask], receiver: Receiver
) -> None:
    # A hook as `hooks add --notify ntfy+http://…/topic` stored it before apprise: kind "ntfy"
    # and the http URL. apprise publishes it the way ntfy documents for JSON: at the root, the
    # topic in the body.
    app = make_app()
    hook = create_hook(
        "mum", notify_url="ntfy+" + receiver.url("/dunscan-mum"), store=store_for(app)
    )
    assert (hook.notify_kind, hook.notify_url) == ("ntfy", receiver.url("/dunscan-mum"))
    forward_scam(app, hook)
    wait_for(lambda: len(receiver.received) == 1, "the ntfy push")
    push = receiver.received[0]
    assert push["path"] == "/"
    published = json.loads(push["body"])
    assert published["topic"] == "dunscan-mum"
    assert "疑似诈骗" in published["title"]
    assert push["headers"]["X-Priority"] == "high" and push["headers"]["X-Tags"] == "warning"
    body = published["message"]
    assert "解冻费" in body  # the key evidence
    assert "95188" in body  # the brand's official number
    assert "171****6789" in body and "17123456789" not in body
    assert SCAM_TEXT not in body  # a short warning, not the message
    wait_for(lambda: outbox(store_for(app))[0].status == "delivered", "the row marked delivered")
    row = outbox(store_for(app))[0]
    assert (row.title, row.body) == ("", "")  # no text kept once delivered


def test_an_old_bark_hook_and_a_generic_json_hook_still_deliver(
    make_app: Callable[..., Flask], receiver: Receiver
) -> None:
    app = make_app()
    bark = create_hook(
        "ios", notify_url="bark+" + receiver.url("/DEVICEKEY/"), store=store_for(app)
    )
    generic = create_hook("bot", notify_url=receiver.url("/hook"), store=store_for(app))
    assert (bark.notify_kind, generic.notify_kind) == ("bark", "json")
    forward_scam(app, bark)
    forward_scam(app, generic)
    wait_for(lambda: len(receiver.received) == 2, "both pushes")
    by_path = {push["path"]: json.loads(push["body"]) for push in receiver.received}
    # Bark's own API: POST /push with the device key in the body.
    assert by_path["/push"]["device_key"] == "DEVICEKEY"
    assert by_path["/push"]["group"] == "dunscan"
    assert by_path["/push"]["level"] == "timeSensitive"
    assert "疑似诈骗" in by_path["/push"]["title"] and "解冻费" in by_path["/push"]["body"]
    # The generic webhook keeps the body its receivers were built for.
    assert by_path["/hook"]["source"] == "dunscan" and "疑似诈骗" in by_path["/hook"]["title"]
    assert by_path["/hook"]["category"] == "scam" and by_path["/hook"]["level"] == "high"
    assert "95188" in by_path["/hook"]["official_numbers"]["alipay"]


def test_an_apprise_url_hook_delivers(make_app: Callable[..., Flask], receiver: Receiver) -> None:
    app = make_app()
    url = f"ntfy://127.0.0.1:{receiver.port}/dunscan-dad"
    hook = create_hook("dad", notify_url=url, store=store_for(app))
    assert hook.notify_kind == "apprise" and hook.public()["notify"] == "ntfy://…"
    forward_scam(app, hook)
    wait_for(lambda: len(receiver.received) == 1, "the apprise push")
    assert json.loads(receiver.received[0]["body"])["topic"] == "dunscan-dad"
    wait_for(lambda: outbox(store_for(app))[0].status == "delivered", "the row marked delivered")


@pytest.mark.parametrize(
    ("url", "service"),
    [
        ("wecombot://0123456789abcdef0123456789abcdef", "WeCom Bot"),
        ("dingtalk://0123456789abcdef0123456789abcdef/", "DingTalk"),
        ("feishu://0123456789abcdef0123456789abcdef", "Feishu"),
        ("pushplus://0123456789abcdef0123456789abcdef", "PushPlus"),
        ("schan://SCT12345Tabcdefghijklmnopqrstu", "ServerChan"),
        ("barks://api.day.app/DEVICEKEY", "Bark"),
    ],
)
def test_push_services_people_in_china_use_are_accepted(url: str, service: str) -> None:
    import apprise

    from service.phones.store import notify_target

    assert notify_target(url) == ("apprise", url)
    plugin = apprise.Apprise.instantiate(url)
    assert plugin is not None and service.lower() in str(plugin.service_name).lower()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("wecombot://", "not a valid wecombot:// URL"),
        ("json://127.0.0.1/x", "must be http(s)://HOST/…"),
        ("windows://", "must be http(s)://HOST/…"),
    ],
)
def test_push_urls_that_cannot_work_are_refused(url: str, message: str) -> None:
    from service.phones.store import HookError, notify_target

    with pytest.raises(HookError, match=re.escape(message)):
        notify_target(url)


def test_no_push_for_a_low_risk_message(make_app: Callable[..., Flask], receiver: Receiver) -> None:
    app = make_app(NOTIFY_WORKER=0)
    hook = create_hook("mum", notify_url=receiver.url(), store=store_for(app))
    response = app.test_client().post(
        hook.path,
        data={
            "from": "95188",
            "org_content": "【支付宝】您的花呗本期账单已出，请通过支付宝App还款。",
        },
    )
    assert response.get_json()["notified"] is False
    assert outbox(store_for(app)) == []


def test_push_is_retried_until_the_receiver_is_back(make_app: Callable[..., Flask]) -> None:
    port = free_port()
    app = make_app()
    hook = create_hook("mum", notify_url=f"ntfy+http://127.0.0.1:{port}/t", store=store_for(app))
    forward_scam(app, hook)  # answered at once although the receiver is down
    wait_for(lambda: outbox(store_for(app))[0].attempts >= 2, "two failed attempts")
    assert outbox(store_for(app))[0].status == "pending"
    receiver = Receiver(port)
    try:
        wait_for(lambda: outbox(store_for(app))[0].status == "delivered", "delivery")
        assert len(receiver.received) == 1
    finally:
        receiver.close()


def test_a_new_process_delivers_what_the_old_one_could_not(
    make_app: Callable[..., Flask], db_url: str
) -> None:
    port = free_port()
    first = make_app()
    hook = create_hook("mum", notify_url=f"ntfy+http://127.0.0.1:{port}/t", store=store_for(first))
    forward_scam(first, hook)
    wait_for(lambda: outbox(store_for(first))[0].attempts >= 1, "a failed attempt")
    notify.stop_worker(first)  # the first service instance is gone
    receiver = Receiver(port)
    try:
        second = make_app()  # a fresh app over the same database file
        assert store_for(second).url == db_url
        wait_for(lambda: len(receiver.received) == 1, "delivery by the second instance")
        wait_for(lambda: outbox(store_for(second))[0].status == "delivered", "row delivered")
        assert len(receiver.received) == 1
    finally:
        receiver.close()


class _RootRecords(logging.Handler):
    """What reaches the root logger, where a host (gunicorn, an embedding app) writes logs.
    (pytest's caplog is no witness: it also hooks loggers that do not propagate.)"""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_refusing_target_is_abandoned_not_hammered(make_app: Callable[..., Flask]) -> None:
    gone = Receiver(status=404)  # e.g. a wrong Bark key
    root = _RootRecords()
    logging.getLogger().addHandler(root)
    try:
        app = make_app()
        hook = create_hook("mum", notify_url="bark+" + gone.url("/WRONGKEY"), store=store_for(app))
        forward_scam(app, hook)
        wait_for(lambda: outbox(store_for(app))[0].status == "failed", "the push abandoned")
        row = outbox(store_for(app))[0]
        assert (row.attempts, row.last_error, row.body) == (1, "HTTP 404", "")
        assert len(gone.received) == 1
        # apprise's own lines describe the target: they stay out of the service's logs, which
        # carry our one line per attempt instead.
        # The worker writes the row, then logs the attempt: the line may come a moment later.
        wait_for(
            lambda: any(getattr(r, "outcome", None) == "abandoned" for r in root.records),
            "the abandoned attempt logged",
        )
        assert not [record for record in root.records if record.name.startswith("apprise")]
    finally:
        logging.getLogger().removeHandler(root)
        gone.close()


def test_two_deliverers_never_claim_the_same_row(
    make_app: Callable[..., Flask], receiver: Receiver
) -> None:
    app = make_app(NOTIFY_WORKER=0)
    hook = create_hook("mum", notify_url=receiver.url(), store=store_for(app))
    for n in range(3):
        response = app.test_client().post(
            hook.path, data={"from": SCAM_SENDER, "org_content": f"{SCAM_TEXT}（第{n}次）"}
        )
        assert response.get_json()["notified"] is True
    one, two = Deliverer(store_for(app), app), Deliverer(store_for(app), app)
    first_claim = one.claim()
    assert len(first_claim) == 3
    assert two.claim() == []  # leased to the first until it finishes or its lease runs out
    assert one.run_once().delivered == 3
    assert two.run_once().delivered == 0
    assert len(receiver.received) == 3


def test_retention_purges_finished_rows(make_app: Callable[..., Flask], receiver: Receiver) -> None:
    app = make_app(NOTIFY_WORKER=0, NOTIFY_RETENTION_S=0)
    hook = create_hook("mum", notify_url=receiver.url(), store=store_for(app))
    forward_scam(app, hook)
    deliverer = Deliverer(store_for(app), app)
    result = deliverer.run_once()
    assert result.delivered == 1
    deliverer.purge(now=time.time() + 1)
    assert outbox(store_for(app)) == []


def test_cli_run_once_delivers_pending_rows(
    make_app: Callable[..., Flask],
    receiver: Receiver,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = make_app(NOTIFY_WORKER=0)
    hook = create_hook("mum", notify_url=receiver.url(), store=store_for(app))
    forward_scam(app, hook)
    monkeypatch.setenv("DUNSCAN_DATABASE_URL", db_url)
    assert cli_main(["notify", "run-once"]) == 0
    assert "delivered 1" in capsys.readouterr().err
    assert len(receiver.received) == 1
    assert outbox(store_for(app))[0].status == "delivered"


def test_the_warning_is_short_chinese_with_evidence_and_official_number(
    analyzer: Analyzer,
) -> None:
    record = SmsRecord(sender=SCAM_SENDER, text=SCAM_TEXT)
    verdict = analyzer.check(record)
    title, body, payload = compose(record, verdict)
    assert title.startswith("dunscan：疑似诈骗")
    assert "风险" in body and "解冻费" in body and "95188" in body
    assert len(body) < 300
    assert payload["category"] == "scam"


def test_no_worker_thread_until_there_is_something_to_send(
    make_app: Callable[..., Flask], receiver: Receiver
) -> None:
    app = make_app()
    assert "dunscan_notify_worker" not in app.extensions
    hook = create_hook("mum", notify_url=receiver.url(), store=store_for(app))
    forward_scam(app, hook)  # the enqueue starts and wakes it
    assert app.extensions["dunscan_notify_worker"].alive()
    wait_for(lambda: len(receiver.received) == 1, "the push")
