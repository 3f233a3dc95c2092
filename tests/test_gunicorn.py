"""The real thing: gunicorn with the repo's config, over HTTP on a free loopback port."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_notify import free_port

from model import data
from service.paths import RULES_DIR

REPO = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"
SCAM_TEXT = "【支付宝】您的借呗已逾期，账户将被冻结，请缴纳解冻费后联系专员17123456789"
MOBILE = "17123456789"
STARTUP_LIMIT_S = 90  # a guard against a hung start, not a speed assertion


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def logs(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()


def _start(tmp: Path, workers: int = 2, **env: str) -> Server:
    port = free_port()
    environment = {**os.environ, "DUNSCAN_DATABASE_URL": f"sqlite:///{tmp / 'store.sqlite3'}"}
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the config makes its own
    environment.update(env)
    stdout, stderr = tmp / "stdout.log", tmp / "stderr.log"
    command = [
        str(GUNICORN),
        "--config",
        "service/gunicorn_conf.py",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "service:create_app()",
    ]
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(command, cwd=REPO, env=environment, stdout=out, stderr=err)
    return Server(f"http://127.0.0.1:{port}", process, stdout, stderr)


def _request(
    url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _wait_until_healthy(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_LIMIT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"gunicorn exited with {server.process.returncode}:\n{server.logs()}")
        try:
            if _request(server.url + "/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    server.process.kill()
    pytest.fail(f"gunicorn did not answer /healthz:\n{server.logs()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = _start(tmp_path_factory.mktemp("gunicorn"))
    _wait_until_healthy(running)
    yield running
    if running.process.poll() is None:
        running.process.kill()
        running.process.wait()


def test_check_over_http(server: Server) -> None:
    status, headers, body = _request(
        server.url + "/v1/check?lang=en",
        {"sender": "+86 171 2345 6789", "text": SCAM_TEXT},
        {"X-Request-ID": "gunicorn-test-1"},
    )
    assert status == 200
    assert headers["X-Request-ID"] == "gunicorn-test-1"
    verdict = json.loads(body)
    assert verdict["category"] == "scam"
    assert verdict["sender"]["normalized"] == "+8617123456789"


def test_summary_number_and_errors_over_http(server: Server) -> None:
    status, headers, body = _request(
        server.url + "/v1/check", {"text": SCAM_TEXT}, {"Accept": "text/plain"}
    )
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert "高风险" in body.decode()

    status, _, body = _request(server.url + "/v1/numbers/%2B86%20171%202345%206789")
    assert status == 200 and json.loads(body)["type"] == "virtual_mobile"

    status, _, body = _request(server.url + "/v1/check", {"kind": "fax"})
    assert status == 422 and json.loads(body)["error"]["field"] == "kind"

    status, _, body = _request(server.url + "/nowhere")
    assert status == 404 and json.loads(body)["error"]["code"] == "not_found"


def test_metrics_add_up_across_workers(server: Server) -> None:
    """Two workers, one scrape: multiprocess mode sums what every worker counted."""

    def scam_verdicts() -> float:
        text = _request(server.url + "/metrics")[2].decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("dunscan_verdicts_total{") and 'category="scam"' in line
        )

    before = scam_verdicts()
    for _ in range(12):  # each urlopen is a new connection, so both workers take some
        assert _request(server.url + "/v1/check", {"text": SCAM_TEXT})[0] == 200
    assert scam_verdicts() == before + 12


def test_workers_share_one_analyzer_loaded_by_the_master(server: Server) -> None:
    """preload_app: rules, lists and the model are loaded once, before the two workers fork."""
    loads = [
        json.loads(line)
        for line in server.stderr.read_text().splitlines()
        if '"analyzer loaded"' in line
    ]
    assert len(loads) == 1
    master = server.process.pid
    assert loads[0].get("pid", master) == master


def test_graceful_stop_and_private_logs(server: Server) -> None:
    _request(server.url + f"/v1/numbers/{MOBILE}?lang=en")
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=60) == 0

    logs = server.logs()
    access = [json.loads(line) for line in server.stdout.read_text().splitlines()]
    paths = {entry["path"] for entry in access if entry["msg"] == "request"}
    assert "/v1/numbers/171****6789" in paths
    assert any(entry.get("request_id") == "gunicorn-test-1" for entry in access)
    assert all(json.loads(line) for line in server.stderr.read_text().splitlines())
    for secret in (SCAM_TEXT, "解冻费", MOBILE, "2345 6789", "lang=en"):
        assert secret not in logs


def test_a_large_batch_leaves_a_thread_for_an_ordinary_check(tmp_path: Path) -> None:
    """One worker with the shipped config: while it scores a batch of 100 long messages, a check
    sent after the batch is answered before the batch, by the worker's other thread."""
    texts = [example.record.text or "" for example in data.load_real()]
    block = "".join(text for text in texts if len(text) > 100)
    records = [{"text": block[i * 5000 : (i + 1) * 5000]} for i in range(100)]
    assert all(len(record["text"]) == 5000 for record in records)
    server = _start(tmp_path, workers=1, DUNSCAN_RATELIMIT_ENABLED="false")
    try:
        _wait_until_healthy(server)
        finished: dict[str, float] = {}

        def send_batch() -> None:
            status = _request(server.url + "/v1/check/batch", {"records": records})[0]
            finished["batch"] = time.monotonic()
            finished["batch_status"] = status

        batch = threading.Thread(target=send_batch)
        batch.start()
        time.sleep(0.3)  # the batch is being read and scored
        status, _, body = _request(server.url + "/v1/check", {"text": SCAM_TEXT})
        finished["check"] = time.monotonic()
        batch.join(timeout=120)
    finally:
        server.process.kill()
        server.process.wait()
    assert status == 200 and json.loads(body)["category"] == "scam"
    assert finished["batch_status"] == 200
    assert finished["check"] < finished["batch"]


def test_bad_rules_refuse_to_start(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    (rules / "patterns" / "000_broken.yaml").write_text("rules: [unclosed\n", encoding="utf-8")
    server = _start(tmp_path, DUNSCAN_RULES_DIR=str(rules))
    try:
        returncode = server.process.wait(timeout=STARTUP_LIMIT_S)
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
    assert returncode != 0
    assert "000_broken.yaml" in server.logs()
