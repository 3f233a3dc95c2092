"""The deployment that faces the internet: nginx (deploy/nginx/dunscan.conf.template) in front of
gunicorn with the repo's config, both on loopback. Skipped without nginx (`.ci/run` installs it
from Debian, as it does Chromium).

- 32 clients trickling a request body and 16 trickling headers, and /healthz still answers
  through the proxy (the figure is printed; the hang guard is the only limit). Straight at
  gunicorn the same clients hold every worker thread: that figure is printed beside it.
- What nginx refuses itself (two Content-Length values, a 16 KiB header, NUL in a header, an
  oversized body) is answered in the service's JSON error shape, as the README promises.
- The whole stack docker-compose.yml describes, on loopback: nginx, gunicorn and a real
  PostgreSQL server (tests/pg_server.py; skipped without one): `dunscan hooks add`, a signed
  SmsForwarder post and its push through the proxy, and /healthz while 32 clients trickle bodies.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pg_server import PostgresServer
from test_gunicorn import GUNICORN, Server, _start, _wait_until_healthy
from test_notify import SCAM_SENDER, SCAM_TEXT, Receiver, free_port
from test_webhooks import SECRET, default_params, now_ms, retrofit_form_body

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "deploy" / "nginx" / "dunscan.conf.template"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
BODY_TRICKLERS = 32
HEADER_TRICKLERS = 16
HANG_GUARD_S = 10.0  # a request that takes longer than this is a hang, not slowness

pytestmark = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (apt-get install nginx)"
)


@dataclass
class Proxy:
    port: int
    process: subprocess.Popen[bytes]
    prefix: Path


def render(upstream: str, listen: str) -> str:
    text = TEMPLATE.read_text()
    return text.replace("${DUNSCAN_UPSTREAM}", upstream).replace("${DUNSCAN_LISTEN}", listen)


def _start_nginx(prefix: Path, upstream_port: int) -> Proxy:
    port = free_port()
    (prefix / "conf.d").mkdir(parents=True)
    (prefix / "conf.d" / "dunscan.conf").write_text(
        render(f"127.0.0.1:{upstream_port}", f"127.0.0.1:{port}")
    )
    temp = "\n".join(
        f"  {name}_temp_path {prefix / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root;\n" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(
        f"{user}worker_processes 1;\ndaemon off;\npid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'error.log'} warn;\n"
        "events { worker_connections 512; }\n"
        f"http {{\n  access_log off;\n{temp}\n  include {prefix / 'conf.d' / 'dunscan.conf'};\n}}\n"
    )
    process = subprocess.Popen(
        [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"nginx exited: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    return Proxy(port, process, prefix)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Proxy]]:
    server = _start(tmp_path_factory.mktemp("stack"), DUNSCAN_PROXY_FIX_X_FOR="1")
    _wait_until_healthy(server)
    port = int(server.url.rsplit(":", 1)[1])
    proxy = _start_nginx(tmp_path_factory.mktemp("nginx"), port)
    yield server, proxy
    proxy.process.send_signal(signal.SIGQUIT)
    proxy.process.wait(timeout=30)
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=60)


def raw_request(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (no client library cleans them up) and read the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD_S) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
    }
    return status, headers, body


def healthz_seconds(port: int) -> float | None:
    """Seconds for GET /healthz on a new connection; None when it did not answer in the guard."""
    started = time.perf_counter()
    try:
        status, _, _ = raw_request(
            port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
    except OSError:
        return None
    return time.perf_counter() - started if status == 200 else None


class Tricklers:
    """Clients that send a request one byte at a time, forever (until stopped)."""

    def __init__(self, port: int, bodies: int, headers: int) -> None:
        self.port = port
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._body, daemon=True) for _ in range(bodies)] + [
            threading.Thread(target=self._headers, daemon=True) for _ in range(headers)
        ]

    def _trickle(self, head: bytes, tail: bytes) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=60) as sock:
                sock.sendall(head)
                for byte in tail:
                    if self.stop.wait(0.5):
                        return
                    sock.sendall(bytes([byte]))
        except OSError:
            return  # the server cut us off: that is what it should do

    def _body(self) -> None:
        body = b'{"text": "' + b"x" * 5000 + b'"}'
        head = (
            b"POST /v1/check HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        self._trickle(head, body)

    def _headers(self) -> None:
        self._trickle(b"GET /healthz HTTP/1.1\r\n", b"Host: 127.0.0.1\r\n" + b"X-Slow: y\r\n" * 500)

    def __enter__(self) -> Tricklers:
        for thread in self.threads:
            thread.start()
        time.sleep(2)  # every trickler connected and holding its connection
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=5)


def test_healthz_answers_through_the_proxy_while_slow_clients_trickle(
    stack: tuple[Server, Proxy],
) -> None:
    server, proxy = stack
    gunicorn_port = int(server.url.rsplit(":", 1)[1])
    with Tricklers(proxy.port, BODY_TRICKLERS, HEADER_TRICKLERS):
        through_proxy = [healthz_seconds(proxy.port) for _ in range(5)]
    with Tricklers(gunicorn_port, BODY_TRICKLERS, HEADER_TRICKLERS):
        direct = [healthz_seconds(gunicorn_port)]
    print(
        f"slow clients ({BODY_TRICKLERS} body + {HEADER_TRICKLERS} header tricklers): /healthz "
        f"through nginx {[round(s, 3) if s else None for s in through_proxy]} s; straight at "
        f"gunicorn {[round(s, 3) if s else f'> {HANG_GUARD_S:.0f} (no answer)' for s in direct]}"
    )
    assert all(seconds is not None for seconds in through_proxy), through_proxy


def test_the_service_works_through_the_proxy(stack: tuple[Server, Proxy]) -> None:
    _, proxy = stack
    body = json.dumps({"text": "【支付宝】您的借呗已逾期，请缴纳解冻费"}).encode()
    status, headers, answer = raw_request(
        proxy.port,
        b"POST /v1/check HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body),
    )
    assert status == 200 and json.loads(answer)["level"] in ("high", "medium", "low")
    assert headers["x-request-id"]


@pytest.mark.parametrize(
    "request_bytes, status, code",
    [
        (
            b"POST /v1/check HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2\r\nContent-Length: 3\r\nConnection: close\r\n\r\n{}",
            400,
            "bad_request",
        ),
        (
            b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 16384 + b"\r\n"
            b"Connection: close\r\n\r\n",
            431,
            "headers_too_large",
        ),
        (
            b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Nul: a\x00b\r\nConnection: close\r\n\r\n",
            400,
            "bad_request",
        ),
        (
            b"POST /v1/check HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
            b"Content-Length: 3000000\r\nConnection: close\r\n\r\n",
            413,
            "body_too_large",
        ),
        (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414, "uri_too_long"),
    ],
)
def test_what_the_proxy_refuses_is_json(
    stack: tuple[Server, Proxy], request_bytes: bytes, status: int, code: str
) -> None:
    _, proxy = stack
    got, headers, body = raw_request(proxy.port, request_bytes)
    assert got == status, body[:200]
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["error"]["code"] == code


# --- the compose stack: nginx + gunicorn + PostgreSQL -------------------------------------------


@dataclass
class PostgresStack:
    server: Server
    proxy: Proxy
    database_url: str
    receiver: Receiver


@pytest.fixture(scope="module")
def pg_stack(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer
) -> Iterator[PostgresStack]:
    """docker-compose.yml's services on loopback: the same settings for the app (database URL,
    one trusted proxy, a public URL), the same nginx server block, a real PostgreSQL."""
    database_url = postgres.create_database("dunscan_stack")
    receiver = Receiver()
    server = _start(
        tmp_path_factory.mktemp("pg-stack"),
        DUNSCAN_DATABASE_URL=database_url,
        DUNSCAN_PROXY_FIX_X_FOR="1",
        DUNSCAN_PUBLIC_URL="https://dunscan.example.org",
        DUNSCAN_NOTIFY_POLL_S="0.2",
    )
    _wait_until_healthy(server)
    port = int(server.url.rsplit(":", 1)[1])
    proxy = _start_nginx(tmp_path_factory.mktemp("pg-nginx"), port)
    yield PostgresStack(server, proxy, database_url, receiver)
    proxy.process.send_signal(signal.SIGQUIT)
    proxy.process.wait(timeout=30)
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=60)
    receiver.close()


def _hooks_add(database_url: str, notify: str) -> str:
    """`dunscan hooks add` as an operator runs it (`docker compose exec app dunscan hooks add`):
    the hook's path."""
    environment = {**os.environ, "DUNSCAN_DATABASE_URL": database_url}
    environment["DUNSCAN_PUBLIC_URL"] = "https://dunscan.example.org"
    add = ["hooks", "add", "--name", "mum", "--secret", SECRET, "--notify", notify]
    result = subprocess.run(
        [str(GUNICORN.parent / "dunscan"), *add, "--format", "json"],
        capture_output=True,
        text=True,
        env=environment,
        check=True,
        timeout=120,
    )
    return json.loads(result.stdout)["url"].removeprefix("https://dunscan.example.org")


def test_the_compose_stack_takes_a_webhook_and_answers_healthz_under_slow_clients(
    pg_stack: PostgresStack,
) -> None:
    path = _hooks_add(pg_stack.database_url, "json+" + pg_stack.receiver.url())
    form = retrofit_form_body(default_params(SCAM_SENDER, SCAM_TEXT, SECRET, now_ms()))
    with Tricklers(pg_stack.proxy.port, BODY_TRICKLERS, 0):
        through_proxy = [healthz_seconds(pg_stack.proxy.port) for _ in range(5)]
        status, _, answer = raw_request(
            pg_stack.proxy.port,
            b"POST %s HTTP/1.1\r\nHost: dunscan.example.org\r\nConnection: close\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s"
            % (path.encode(), len(form), form),
        )
        after_webhook = [healthz_seconds(pg_stack.proxy.port) for _ in range(5)]
    print(
        f"compose stack (nginx + gunicorn + PostgreSQL), {BODY_TRICKLERS} clients trickling "
        f"bodies: /healthz through nginx {[round(s, 3) if s else None for s in through_proxy]} s, "
        f"after a webhook {[round(s, 3) if s else None for s in after_webhook]} s"
    )
    assert all(seconds is not None for seconds in through_proxy + after_webhook)
    assert status == 200, answer
    verdict = json.loads(answer)
    assert verdict["accepted"] is True and verdict["notified"] is True

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not pg_stack.receiver.received:
        time.sleep(0.1)
    (push,) = pg_stack.receiver.received
    assert json.loads(push["body"])["category"] == "scam"
    # Stored on the PostgreSQL server, not in a SQLite file beside the app.
    import psycopg

    conninfo = pg_stack.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as connection:
        seen = connection.execute("SELECT count(*) FROM hook_seen").fetchone()
        outbox = connection.execute("SELECT status, body FROM notify_outbox").fetchall()
    assert seen == (2,)  # the signature and the record
    deadline = time.monotonic() + 30
    while outbox != [("delivered", "")] and time.monotonic() < deadline:
        time.sleep(0.1)
        with psycopg.connect(conninfo) as connection:
            outbox = connection.execute("SELECT status, body FROM notify_outbox").fetchall()
    assert outbox == [("delivered", "")]
