"""The store, its migrations and the webhook path on a real PostgreSQL server, as
docker-compose.yml runs them (`postgresql+psycopg://`), not only on SQLite.

Each test gets a new database on a throw-away server (tests/pg_server.py; skipped when PostgreSQL
is not installed, `.ci/run` installs it). The tests that stop the server start their own.
Waiting is a bounded poll; nothing here asserts a duration.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from conftest import start_postgres
from flask import Flask
from pg_server import PostgresServer
from sqlalchemy import event, func, select
from test_hostile import queue_warning
from test_notify import SCAM_SENDER, SCAM_TEXT, Receiver, wait_for
from test_webhooks import SECRET, default_params, now_ms, retrofit_form_body

from service.app import create_app
from service.cli.main import main as cli_main
from service.engine.pipeline import Analyzer
from service.phones.notify import Deliverer
from service.phones.store import (
    LOCK_WAIT_S,
    Outbox,
    SeenKey,
    Store,
    create_hook,
    list_hooks,
    store_for,
)

WAIT_LIMIT_S = 60.0
FORM = "application/x-www-form-urlencoded"


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", "service.phones:migrations")
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def webhook_app(url: str, analyzer: Analyzer, **config: Any) -> Flask:
    """The real app on a PostgreSQL URL; rate limits off (the tests post in bursts)."""
    return create_app(
        {"TESTING": True, "DATABASE_URL": url, "RATELIMIT_ENABLED": False, **config},
        analyzer=analyzer,
    )


def signed_post(app: Flask, path: str, text: str, timestamp: str | None = None) -> Any:
    """SmsForwarder's default signed form POST, byte for byte (tests/test_webhooks.py)."""
    params = default_params(SCAM_SENDER, text, SECRET, timestamp or now_ms())
    return app.test_client().post(path, data=retrofit_form_body(params), content_type=FORM)


def count(store: Store, table: type) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


# --- migrations ---------------------------------------------------------------------------------


def test_migrations_build_an_empty_database_and_are_a_no_op_on_every_restart(
    postgres_url: str,
) -> None:
    store = Store(postgres_url)
    with store.engine.connect() as connection:
        tables = set(connection.dialect.get_table_names(connection))
        versions = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    assert {"hooks", "hook_seen", "notify_outbox", "alembic_version"} <= tables
    assert versions == [(head_revision(),)]
    hook = create_hook("kept", secret=SECRET, store=store)
    store.dispose()
    for _ in range(2):  # restarts: the schema is already there, the rows stay
        again = Store(postgres_url)
        with again.engine.connect() as connection:
            rows = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        assert rows == [(head_revision(),)]
        assert [h.name for h in list_hooks(store=again)] == ["kept"]
        assert again.engine.dialect.name == "postgresql"
        again.dispose()
    assert hook.token is not None


def test_instances_starting_at_once_migrate_once(postgres: PostgresServer) -> None:
    """Several workers or instances on one new database: the advisory lock makes them take
    turns, so each start succeeds and the schema is built once."""
    url = postgres.create_database("dunscan_simultaneous")
    errors: list[BaseException] = []
    stores: list[Store] = []

    def start() -> None:
        try:
            stores.append(Store(url))
        except BaseException as error:  # reported below with the others
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_LIMIT_S)
    assert not errors, errors
    assert len(stores) == 6
    with stores[0].engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 1
    for store in stores:
        store.dispose()


# --- the webhook path ---------------------------------------------------------------------------


def test_hooks_add_a_signed_post_and_the_push_work_end_to_end(
    postgres_url: str,
    analyzer: Analyzer,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DUNSCAN_DATABASE_URL", postgres_url)
    monkeypatch.setenv("DUNSCAN_PUBLIC_URL", "https://dunscan.example.org")
    target = "json+" + receiver.url()
    add = ["hooks", "add", "--name", "mum", "--secret", SECRET, "--notify", target]
    code = cli_main([*add, "--format", "json"])
    assert code == 0
    added = json.loads(capsys.readouterr().out)
    path = added["url"].removeprefix("https://dunscan.example.org")
    assert path.startswith("/hooks/sf/")

    app = webhook_app(postgres_url, analyzer, NOTIFY_POLL_S=0.1)
    try:
        timestamp = now_ms()
        response = signed_post(app, path, SCAM_TEXT, timestamp)
        assert response.status_code == 200, response.get_json()
        answer = response.get_json()
        assert answer["duplicate"] is False and answer["notified"] is True
        assert answer["level"] == "high"
        # The phone's own resend (same timestamp and sign) is a duplicate, not a second push.
        resend = signed_post(app, path, SCAM_TEXT, timestamp)
        assert resend.get_json() == {"accepted": True, "duplicate": True}

        wait_for(lambda: len(receiver.received) == 1, "the push at the receiver", WAIT_LIMIT_S)
        store = store_for(app)
        wait_for(
            lambda: count(store, Outbox) == 1 and Deliverer(store, app).pending() == 0,
            "the outbox row marked delivered",
            WAIT_LIMIT_S,
        )
    finally:
        from service.phones.notify import stop_worker

        stop_worker(app)
    push = json.loads(receiver.received[0]["body"])
    assert push["category"] == "scam" and push["source"] == "dunscan"
    assert receiver.received[0]["headers"]["Idempotency-Key"] == push["idempotency_key"]
    with store.session() as session:
        (row,) = session.scalars(select(Outbox))
        assert (row.status, row.title, row.body, row.payload) == ("delivered", "", "", "{}")
        assert session.scalar(select(func.count()).select_from(SeenKey)) == 2  # sign + record
    # A wrong signature is refused and nothing is stored for it.
    params = default_params(SCAM_SENDER, SCAM_TEXT, "not-the-secret", now_ms())
    wrong = app.test_client().post(path, data=retrofit_form_body(params), content_type=FORM)
    assert wrong.status_code == 401
    assert count(store, SeenKey) == 2


def test_simultaneous_posts_of_one_record_are_accepted_once(
    postgres_url: str, rules_only_analyzer: Analyzer
) -> None:
    """On PostgreSQL two transactions can both find the record unseen and both insert it; the
    unique key makes the later one fail, and that is answered as a duplicate, not a 500."""
    app = webhook_app(postgres_url, rules_only_analyzer, NOTIFY_WORKER=0)
    store = store_for(app)
    hook = create_hook("race", notify_url="json+http://127.0.0.1:9/x", store=store)
    body = {"from": SCAM_SENDER, "org_content": SCAM_TEXT}
    answers: list[tuple[int, Any]] = []
    start = threading.Barrier(8)

    def post() -> None:
        client = app.test_client()
        start.wait()
        response = client.post(hook.path, json=body)
        answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_LIMIT_S)
    assert [status for status, _ in answers] == [200] * 8, answers
    assert sum(not answer["duplicate"] for _, answer in answers) == 1
    assert count(store, Outbox) == 1


def test_a_nul_inside_the_evidence_is_accepted_and_pushed_without_it(
    postgres_url: str, rules_only_analyzer: Analyzer
) -> None:
    """PostgreSQL refuses NUL in a text column (SQLite stores it): a message with one inside the
    quoted evidence made the outbox insert fail, a 500 that the phone does not retry."""
    app = webhook_app(postgres_url, rules_only_analyzer, NOTIFY_WORKER=0)
    store = store_for(app)
    hook = create_hook("nul", notify_url="json+http://127.0.0.1:9/x", store=store)
    text = "【支付宝】您的借呗已逾期，请缴纳解\x00冻费后联系专员17123456789"
    response = app.test_client().post(hook.path, data={"from": SCAM_SENDER, "org_content": text})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["notified"] is True
    with store.session() as session:
        (row,) = session.scalars(select(Outbox))
    assert "\x00" not in row.body and "缴纳解冻费" in row.body


def test_no_warning_text_is_left_in_the_table_files_after_delivery(
    postgres: PostgresServer, analyzer: Analyzer, receiver: Receiver
) -> None:
    """README "Privacy" on PostgreSQL: once delivered, the warning is gone from the outbox rows
    and from the table's files on disk (the worker vacuums the outbox after emptying it, so the
    old row versions are not left in the pages)."""
    database = "dunscan_residue"
    url = postgres.create_database(database)
    app = webhook_app(url, analyzer, NOTIFY_WORKER=0)
    store, lines = queue_warning(app, "json+" + receiver.url())

    with psycopg.connect(postgres.conninfo(database), autocommit=True) as connection:
        oid = connection.execute(
            "SELECT oid FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        assert oid is not None

        def table_files() -> bytes:
            connection.execute("CHECKPOINT")  # what shared buffers hold, written to the files
            folder = postgres.data_dir / "base" / str(oid[0])
            return b"".join(path.read_bytes() for path in folder.iterdir() if path.is_file())

        assert all(line.encode() in table_files() for line in lines)  # the check can see it
        assert Deliverer(store, app).run_once().delivered == 1
        assert len(receiver.received) == 1
        left = table_files()
    for line in lines:
        assert line.encode() not in left, line


# --- faults -------------------------------------------------------------------------------------


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A server of this test's own: it is stopped and started again."""
    server = start_postgres()
    yield server
    server.destroy()


def test_the_server_gone_mid_request_is_a_503_and_nothing_accepted_is_lost(
    own_postgres: PostgresServer, rules_only_analyzer: Analyzer, receiver: Receiver
) -> None:
    """PostgreSQL stops (like a crash) while a webhook is inside its transaction: the phone gets
    503 JSON with Retry-After, nothing half-saved; what was accepted before the outage is
    delivered once the server is back, and the phone's retry is then accepted once."""
    url = own_postgres.create_database("dunscan_gone")
    app = webhook_app(url, rules_only_analyzer, NOTIFY_WORKER=0)
    store = store_for(app)
    hook = create_hook("gone", notify_url="json+" + receiver.url(), store=store)
    client = app.test_client()
    before = {"from": SCAM_SENDER, "org_content": SCAM_TEXT + "（一）"}
    assert client.post(hook.path, json=before).get_json()["notified"] is True

    stopped = threading.Event()

    @event.listens_for(store.engine, "before_cursor_execute")
    def _crash(_conn, _cursor, statement: str, *_args: Any) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT INTO HOOK_SEEN") and not stopped.is_set():
            stopped.set()
            own_postgres.stop("immediate")

    during = {"from": SCAM_SENDER, "org_content": SCAM_TEXT + "（二）"}
    response = client.post(hook.path, json=during)
    assert stopped.is_set()
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "database_unavailable"
    assert int(response.headers["Retry-After"]) > 0
    # Still gone: a plain 503 again (a new connection is refused), never a 500.
    again = client.post(hook.path, json=during)
    assert again.status_code == 503
    assert again.get_json()["error"]["code"] == "database_unavailable"
    event.remove(store.engine, "before_cursor_execute", _crash)

    own_postgres.start()
    retried = client.post(hook.path, json=during)
    assert retried.status_code == 200 and retried.get_json()["duplicate"] is False
    assert client.post(hook.path, json=during).get_json()["duplicate"] is True
    assert Deliverer(store, app).run_once().delivered == 2
    keys = {push["headers"]["Idempotency-Key"] for push in receiver.received}
    assert len(receiver.received) == 2 and len(keys) == 2  # two records, each pushed once
    assert count(store, Outbox) == 2


def test_a_table_lock_held_elsewhere_is_a_503_not_a_hang(
    postgres_url: str, rules_only_analyzer: Analyzer, postgres: PostgresServer
) -> None:
    """Another session holds a lock the webhook needs (a migration, a DBA's LOCK TABLE): the
    wait is bounded (lock_timeout, as SQLite's busy timeout), then 503 with nothing saved, and
    the phone's retry is accepted once the lock is gone. Without the bound, the request waits
    as long as the lock is held."""
    app = webhook_app(postgres_url, rules_only_analyzer, NOTIFY_WORKER=0)
    store = store_for(app)
    hook = create_hook("locked", notify_url="json+http://127.0.0.1:9/x", store=store)
    with store.engine.connect() as connection:  # the store's own bound (PostgreSQL: none)
        assert connection.exec_driver_sql("SHOW lock_timeout").scalar() == f"{LOCK_WAIT_S}s"

    @event.listens_for(store.engine, "connect")
    def _short_wait(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # After the store's own setting: wait 0.2 s for a lock instead of the default.
        dbapi_connection.execute("SET lock_timeout = 200")
        dbapi_connection.commit()

    store.engine.dispose()
    body = {"from": SCAM_SENDER, "org_content": SCAM_TEXT}
    database = postgres_url.rsplit("/", 1)[1]
    holder = psycopg.connect(postgres.conninfo(database))
    holder.execute("LOCK TABLE hook_seen IN ACCESS EXCLUSIVE MODE")
    answers: list[Any] = []
    poster = threading.Thread(
        target=lambda: answers.append(app.test_client().post(hook.path, json=body))
    )
    try:
        poster.start()
        poster.join(WAIT_LIMIT_S)  # a hang guard: without a lock timeout this would wait here
        assert answers, "the webhook was still waiting for the lock"
    finally:
        holder.rollback()
        holder.close()
        poster.join(WAIT_LIMIT_S)
    (response,) = answers
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "database_unavailable"
    assert count(store, Outbox) == 0 and count(store, SeenKey) == 0
    retried = app.test_client().post(hook.path, json=body)
    assert retried.status_code == 200 and retried.get_json()["notified"] is True
    assert app.test_client().post(hook.path, json=body).get_json()["duplicate"] is True
    assert count(store, Outbox) == 1


def test_a_server_that_never_answers_fails_the_start_instead_of_hanging() -> None:
    """A database address where something accepts the connection but never speaks (a dead
    proxy, a black-holed route): libpq waits forever by default; the store gives up after its
    connect timeout with a clear OperationalError."""
    import socket

    from sqlalchemy.exc import OperationalError

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    outcome: list[BaseException | Store] = []

    def start() -> None:
        try:
            outcome.append(Store(f"postgresql+psycopg://dunscan@127.0.0.1:{port}/dunscan"))
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=start, daemon=True)
    try:
        thread.start()
        thread.join(WAIT_LIMIT_S)  # a hang guard, far above the store's connect timeout
        assert outcome, "the store was still waiting for a server that never answers"
    finally:
        silent.close()
    assert isinstance(outcome[0], OperationalError), outcome
