"""Faults on the real stack: gunicorn with the repo's config, a real receiver on loopback, and a
worker killed with SIGKILL while webhooks are in flight.

What must hold: every record that was answered 2xx (accepted) reaches the receiver, and the
receiver can tell repeats by the push's Idempotency-Key, so it shows each warning exactly once.
A request the dying worker never answered gets no 2xx: the phone retries it, and a record the
worker had committed just before dying is then answered as a duplicate, never pushed twice.
Waiting is a bounded poll; nothing here asserts a duration.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from test_gunicorn import _start, _wait_until_healthy
from test_notify import Receiver

from service.phones.store import Store, create_hook

SCAM_TEXT = "【支付宝】您的借呗已逾期，账户将被冻结，请缴纳解冻费后联系专员17123456789，编号{}"
RECORDS = 60
MAX_ROUNDS = 4
WAIT_LIMIT_S = 120.0


def _workers(master_pid: int) -> list[int]:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return [int(pid) for pid in children]


def _post(url: str, body: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {}
    except (OSError, http.client.HTTPException, ValueError):
        # The worker holding this connection was killed: no answer, or one cut off mid-status-line
        # or mid-body (IncompleteRead, BadStatusLine, half a JSON body). Not accepted: retried.
        return 0, {}


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_a_worker_killed_mid_webhook_loses_no_accepted_record(tmp_path: Path) -> None:
    receiver = Receiver()
    database = tmp_path / "store.sqlite3"
    store = Store(f"sqlite:///{database}")
    hook = create_hook("faults", notify_url="json+" + receiver.url(), store=store)
    store.dispose()
    server = _start(
        tmp_path,
        DUNSCAN_NOTIFY_POLL_S="0.2",
        DUNSCAN_NOTIFY_BACKOFF_S="0.2",
        DUNSCAN_NOTIFY_BACKOFF_MAX_S="1",
        DUNSCAN_NOTIFY_LEASE_S="3",  # a dead claimer's rows come back quickly
        DUNSCAN_RATELIMIT_ENABLED="false",
    )
    try:
        _wait_until_healthy(server)
        results: dict[int, tuple[int, dict]] = {}
        lock = threading.Lock()

        def body(index: int) -> dict[str, str]:
            return {"from": "+86 171 2345 6789", "org_content": SCAM_TEXT.format(index)}

        def send(index: int) -> None:
            outcome = _post(server.url + hook.path, body(index))
            with lock:
                results[index] = outcome

        # Rounds of RECORDS posts, a worker killed mid-load in each, until a kill has cut some
        # requests off (a kill can land on a worker that happens to hold none).
        first_answers: Counter[int] = Counter()
        for round_number in range(MAX_ROUNDS):
            indices = range(round_number * RECORDS, (round_number + 1) * RECORDS)
            threads = [threading.Thread(target=send, args=(i,)) for i in indices]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + WAIT_LIMIT_S
            while sum(i in results for i in indices) < RECORDS // 6:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            os.kill(_workers(server.process.pid)[0], signal.SIGKILL)
            for thread in threads:
                thread.join()
            first_answers.update(results[i][0] for i in indices)
            if first_answers[0]:
                break
            _wait_until_healthy(server)  # the master has replaced the worker
        assert first_answers[0] > 0, first_answers
        total = len(results)

        # The phone retries what got no 2xx (SmsForwarder's retry, same body). A record the dead
        # worker had committed before dying is now a duplicate; nothing is accepted twice.
        for _ in range(5):
            unanswered = [index for index, (status, _) in results.items() if status != 200]
            if not unanswered:
                break
            for index in unanswered:
                results[index] = _post(server.url + hook.path, body(index))
        assert all(status == 200 for status, _ in results.values()), results

        def keys() -> Counter[str]:
            return Counter(push["headers"].get("Idempotency-Key") for push in receiver.received)

        deadline = time.monotonic() + WAIT_LIMIT_S
        while time.monotonic() < deadline and len(keys()) < total:
            time.sleep(0.2)
        seen = keys()
        assert None not in seen
        # Every record acknowledged is pushed, under one key each: none lost, none twice.
        assert len(seen) == total, (len(seen), total, first_answers)
        for push in receiver.received:
            assert json.loads(push["body"])["idempotency_key"] == push["headers"]["Idempotency-Key"]
        repeats = sum(count - 1 for count in seen.values())
        print(
            f"faults: first answers {dict(first_answers)} (0 = cut off by the kill), after "
            f"retries {total} acknowledged, {len(receiver.received)} pushes, {len(seen)} keys, "
            f"{repeats} repeats"
        )
    finally:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(timeout=60)
        receiver.close()


def _webhook_app(database: Path) -> Any:
    """The real app over a SQLite file, rules only, no push worker and no rate limits."""
    from service.app import create_app
    from service.engine.pipeline import Analyzer

    return create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{database}",
            "NOTIFY_WORKER": 0,
            "RATELIMIT_ENABLED": False,
        },
        analyzer=Analyzer.load(use_model=False),
    )


def test_a_database_that_is_gone_is_a_503_the_phone_retries(tmp_path: Path) -> None:
    """Nothing is answered 2xx unless committed: with the database unreachable the webhook says
    503 (JSON, Retry-After), which SmsForwarder retries, instead of a 500 or a false 200."""
    from service.phones.store import store_for

    folder = tmp_path / "db"
    folder.mkdir()
    app = _webhook_app(folder / "gone.sqlite3")
    hook = create_hook("gone", store=store_for(app))
    store_for(app).dispose()
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    folder.write_text("not a directory any more")  # the database cannot be opened again
    response = app.test_client().post(
        hook.path, json={"from": "95188", "org_content": "您的借呗已逾期"}
    )
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "database_unavailable"
    assert int(response.headers["Retry-After"]) > 0


def test_a_full_database_is_a_503_and_keeps_what_it_had(tmp_path: Path) -> None:
    """The outbox cannot grow (SQLite answers "database or disk is full", as on a full disk):
    the webhook says 503 and saves nothing half-way; what was accepted before stays."""
    from sqlalchemy import event, func, select

    from service.phones.store import Outbox, SeenKey, store_for

    app = _webhook_app(tmp_path / "full.sqlite3")
    store = store_for(app)
    hook = create_hook("full", notify_url="json+http://127.0.0.1:9/x", store=store)
    client = app.test_client()
    first = {"from": "+86 171 2345 6789", "org_content": SCAM_TEXT.format(1)}
    assert client.post(hook.path, json=first).get_json()["notified"] is True

    def counts() -> tuple[int, int]:
        with store.session() as session:
            outbox = session.scalar(select(func.count()).select_from(Outbox)) or 0
            seen = session.scalar(select(func.count()).select_from(SeenKey)) or 0
        return int(outbox), int(seen)

    before = counts()

    @event.listens_for(store.engine, "connect")
    def _no_room(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    store.engine.dispose()  # new connections, each with no room left to grow
    filler = "x" * 3000  # rows bigger than the free space left in the last pages
    refused = 0
    for index in range(2, 40):
        body = {"from": "+86 171 2345 6789", "org_content": SCAM_TEXT.format(index) + filler}
        response = client.post(hook.path, json=body)
        assert response.status_code in (200, 503), response.get_json()
        if response.status_code == 503:
            refused += 1
            assert response.get_json()["error"]["code"] == "database_unavailable"
            assert response.headers["Retry-After"]
    assert refused > 0
    event.remove(store.engine, "connect", _no_room)
    store.engine.dispose()
    after = counts()
    # Every answer was all or nothing: each 200 added one push and its keys, a 503 nothing.
    accepted = 38 - refused
    assert after[0] == before[0] + accepted
    assert after[1] == before[1] + accepted


def test_a_locked_database_is_a_503_and_the_retry_is_kept_once(tmp_path: Path) -> None:
    """Another process holds SQLite's write lock past the busy timeout: the webhook says 503 and
    saves nothing; once the lock is gone the phone's retry is accepted, and only once."""
    import sqlite3

    from sqlalchemy import event, func, select

    from service.phones.store import Outbox, store_for

    database = tmp_path / "locked.sqlite3"
    app = _webhook_app(database)
    store = store_for(app)
    hook = create_hook("locked", notify_url="json+http://127.0.0.1:9/x", store=store)

    @event.listens_for(store.engine, "connect")
    def _short_wait(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Runs after the store's own hook: wait 0.1 s for the lock instead of 30 s.
        dbapi_connection.execute("PRAGMA busy_timeout = 100")

    store.engine.dispose()

    def pushes() -> int:
        with store.session() as session:
            return int(session.scalar(select(func.count()).select_from(Outbox)) or 0)

    before = pushes()
    client = app.test_client()
    body = {"from": "+86 171 2345 6789", "org_content": SCAM_TEXT.format("locked")}
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        response = client.post(hook.path, json=body)
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "database_unavailable"
        assert int(response.headers["Retry-After"]) > 0
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert pushes() == before  # nothing half-saved
    retried = client.post(hook.path, json=body)
    assert retried.status_code == 200 and retried.get_json()["notified"] is True
    again = client.post(hook.path, json=body)  # a second retry of the same record
    assert again.status_code == 200
    assert pushes() == before + 1
