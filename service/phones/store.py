"""The project's database: webhook hooks, seen-request keys and the notification outbox.

SQLAlchemy 2.x. A SQLite file by default (`instance/dunscan.sqlite3` in a checkout, created on
first use, no setup); `DUNSCAN_DATABASE_URL=postgresql+psycopg://...` when several instances share
one database. The schema is Alembic's (service/migrations), brought up to date on start. Nothing
here ever stores a message text: the outbox holds only the short notification, cleared once
delivered.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import (
    Float,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from service.paths import DEFAULT_DATABASE_PATH
from service.phones.push import check_apprise_url, is_apprise_url
from service.settings import check_public_url, settings

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
NOTIFY_KINDS = ("ntfy", "bark", "json")
BASELINE_REVISION = "0001"  # service/phones/migrations/versions/0001_baseline.py
# The newest revision (tests/test_store.py holds it to Alembic's own head): a database already
# there starts without importing Alembic, ~11 MB less in the server and in every worker.
HEAD_REVISION = "0001"
MAX_NAME_CHARS = 64
MAX_SECRET_CHARS = 200
MAX_URL_CHARS = 2000
# How long a request waits for a lock another connection holds before it is answered 503
# (database_unavailable): SQLite's busy timeout, PostgreSQL's lock_timeout.
LOCK_WAIT_S = 30
# How long opening a PostgreSQL connection may take: libpq's default is to wait forever for a
# server that accepted the TCP connection but never answers.
CONNECT_TIMEOUT_S = 10
# PostgreSQL: how long the outbox rewrite after a delivery (Store.forget_deleted) may wait for
# the table; webhooks queue behind a waiting rewrite, so this stays short.
FORGET_LOCK_WAIT_MS = 500


def database_url() -> str:
    """DUNSCAN_DATABASE_URL, else the SQLite file (see `service.paths.DEFAULT_DATABASE_PATH`)."""
    return settings().DATABASE_URL or f"sqlite:///{DEFAULT_DATABASE_PATH}"


def public_base_url(explicit: str | None = None) -> str:
    """`explicit` (hooks add --base-url) or DUNSCAN_PUBLIC_URL; HookError on a URL phones
    could not use."""
    if explicit is None:
        return settings().PUBLIC_URL or DEFAULT_PUBLIC_URL
    try:
        return check_public_url(explicit)
    except ValueError as error:
        raise HookError(f"--base-url {explicit!r}: {error}") from None


class Base(DeclarativeBase):
    pass


class Hook(Base):
    """One person's webhook. Only a hash of the URL token is kept: the URL is shown once."""

    __tablename__ = "hooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME_CHARS), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_hint: Mapped[str] = mapped_column(String(8))
    # Kept as given: verifying SmsForwarder's HMAC needs the secret itself.
    secret: Mapped[str | None] = mapped_column(String(MAX_SECRET_CHARS))
    notify_url: Mapped[str | None] = mapped_column(String(MAX_URL_CHARS))
    notify_kind: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[float] = mapped_column(Float)


class SeenKey(Base):
    """A signature or record fingerprint already accepted for a hook, until it expires."""

    __tablename__ = "hook_seen"
    __table_args__ = (UniqueConstraint("hook_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hook_id: Mapped[int] = mapped_column(Integer, index=True)
    key: Mapped[str] = mapped_column(String(200))
    # For a signature: the record it came with, so an identical resend is told from a replay.
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class Outbox(Base):
    """A push notification waiting for (or done with) delivery."""

    __tablename__ = "notify_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hook_id: Mapped[int | None] = mapped_column(Integer, index=True)
    url: Mapped[str] = mapped_column(String(MAX_URL_CHARS))
    kind: Mapped[str] = mapped_column(String(8))
    # The short notification only (category, key evidence, official number); emptied on delivery.
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text, default="{}")
    status: Mapped[str] = mapped_column(String(12), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float, index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[float | None] = mapped_column(Float)
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


def _prepare_sqlite(engine: Engine, url: str) -> None:
    path = engine.url.database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy's documented pysqlite recipe: let the "begin" hook below open transactions.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # Several gunicorn workers share the file: WAL lets readers run beside one writer, and
        # writers wait for each other instead of failing at once.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={LOCK_WAIT_S * 1000}")
        # A delivered push is emptied by an UPDATE; without this the old text stays in the page's
        # free space. With it, SQLite overwrites deleted content with zeros.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Take the write lock up front: a transaction that reads, then writes (check a key, then
        # insert it) would otherwise fail at once when another worker wrote in between.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _connect_args(url: str) -> dict[str, Any]:
    """Bounded waits, whatever the database: a lock held elsewhere or a server that does not
    answer ends in an OperationalError (a 503 for the request) instead of a hung worker."""
    if url.startswith("sqlite"):
        return {"timeout": LOCK_WAIT_S}
    if url.startswith("postgresql+psycopg"):
        # PostgreSQL waits for a lock forever by default (SQLite's equivalent is set above and
        # in _prepare_sqlite); lock_timeout also bounds the advisory lock migrate() takes.
        return {
            "connect_timeout": CONNECT_TIMEOUT_S,
            "options": f"-c lock_timeout={LOCK_WAIT_S * 1000}",
        }
    return {}


# Any fixed number: PostgreSQL's transaction-scoped advisory lock that serialises start-ups.
_MIGRATION_LOCK = 0x64756E73


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (service/migrations), in one transaction.

    A database that `create_all` made before migrations existed (tables, no alembic_version) is
    stamped at the baseline, its rows untouched. Several workers or instances starting at once
    take turns: SQLite's BEGIN IMMEDIATE (see _prepare_sqlite) or a PostgreSQL advisory lock.
    """
    if _schema_is_current(engine):
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "service.phones:migrations")
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        config.attributes["connection"] = connection
        tables = set(inspect(connection).get_table_names())
        if "alembic_version" not in tables and Hook.__tablename__ in tables:
            command.stamp(config, BASELINE_REVISION)
        command.upgrade(config, "head")


def migrate_in_child(url: str | None = None) -> None:
    """Bring the database's schema up to date in a short-lived child process, so that the
    caller never imports Alembic: gunicorn's master runs this before it preloads the app, and
    the workers it forks do not each carry Alembic's ~11 MB. A database already current costs one
    query. If the child fails, the app's own `Store` migrates in process on load and reports
    the error the usual way."""
    url = url or database_url()
    engine = create_engine(url, connect_args=_connect_args(url))
    try:
        if _schema_is_current(engine):
            return
    except OperationalError:
        if engine.dialect.name != "sqlite":
            # The server does not answer: the app's own Store says so, after one connect
            # timeout rather than two. (A SQLite file that does not exist yet is the child's
            # to create.)
            return
    finally:
        engine.dispose()
    # The URL travels in the environment: it may hold a password, which argv would show to `ps`.
    subprocess.run(
        [sys.executable, "-m", "service.phones.store"],
        env={**os.environ, "DUNSCAN_DATABASE_URL": url},
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _schema_is_current(engine: Engine) -> bool:
    with engine.connect() as connection:
        if "alembic_version" not in inspect(connection).get_table_names():
            return False
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
        return list(versions) == [HEAD_REVISION]


class Store:
    """An engine and a session factory over one database; its schema is migrated to the newest
    revision once it is built."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or database_url()
        is_sqlite = self.url.startswith("sqlite")
        self.engine = create_engine(
            self.url, pool_pre_ping=not is_sqlite, connect_args=_connect_args(self.url)
        )
        if is_sqlite:
            _prepare_sqlite(self.engine, self.url)
        migrate(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on any error."""
        with self._sessions() as session, session.begin():
            yield session

    def forget_deleted(self) -> bool:
        """Make deleted or overwritten rows unreadable in the database files, as far as the
        database allows; True when nothing is left to do.

        SQLite: secure_delete zeroes them in the main file, but the write-ahead log still holds
        the page images that carried them until a checkpoint copies it back and truncates it.
        The checkpoint does not wait for readers; one that is blocked is retried on the next
        call.

        PostgreSQL: an UPDATE or DELETE leaves the old row version (with the text) in the
        table's pages, and a plain VACUUM only marks its space free: the bytes stay until a new
        row happens to land there. VACUUM FULL rewrites the table into a new file without them
        (the outbox is small: emptied rows, kept for NOTIFY_RETENTION_S). It needs the table to
        itself for that moment, so it waits at most FORGET_LOCK_WAIT_MS for a webhook or another
        worker to finish; when it cannot, the next call tries again. A row version an older open
        transaction can still see is copied along and goes on a later pass. The write-ahead log
        keeps what it recorded until PostgreSQL recycles that segment: nothing from here can
        reach it (README "Privacy").
        """
        if self.engine.dialect.name == "postgresql":
            return self._rewrite_outbox()
        if not self.url.startswith("sqlite"):
            return True
        raw = self.engine.raw_connection()
        try:
            # Autocommit (isolation_level None, set on connect): a checkpoint cannot run inside
            # the BEGIN IMMEDIATE a session would open.
            busy, _log_frames, _done = raw.driver_connection.execute(  # type: ignore[union-attr]
                "PRAGMA wal_checkpoint(TRUNCATE)"
            ).fetchone()
        finally:
            raw.close()
        return not busy

    def _rewrite_outbox(self) -> bool:
        # VACUUM cannot run inside a transaction block: autocommit, and the lock wait set for
        # this statement only (SET LOCAL needs a transaction; RESET puts the pooled connection
        # back as it was).
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"SET lock_timeout = {FORGET_LOCK_WAIT_MS}")
            try:
                conn.exec_driver_sql(f"VACUUM FULL {Outbox.__tablename__}")
            except OperationalError:  # the lock was not free in time (LockNotAvailable)
                return False
            finally:
                conn.exec_driver_sql("RESET lock_timeout")
        return True

    def dispose(self) -> None:
        self.engine.dispose()


_default_stores: dict[str, Store] = {}
_default_lock = threading.Lock()


def default_store(url: str | None = None) -> Store:
    """The process-wide store for `url` (default: DUNSCAN_DATABASE_URL or the SQLite file)."""
    key = url or database_url()
    with _default_lock:
        if key not in _default_stores:
            _default_stores[key] = Store(key)
        return _default_stores[key]


def dispose_after_fork() -> None:
    """In a forked child (gunicorn preload): forget the pooled connections inherited from the
    parent, leaving the parent's open (SQLAlchemy's `dispose(close=False)`)."""
    with _default_lock:
        for store in _default_stores.values():
            store.engine.dispose(close=False)


def store_for(app: Any) -> Store:
    """The store an app was configured with (DUNSCAN_DATABASE_URL → app.config DATABASE_URL)."""
    store = app.extensions.get("dunscan_store")
    if store is None:
        store = default_store(app.config.get("DATABASE_URL") or None)
        app.extensions["dunscan_store"] = store
    return store


# --- hooks -------------------------------------------------------------------------------


class HookError(ValueError):
    """A hook cannot be created or found as asked; the message says why, in one line."""


@dataclass(frozen=True)
class HookInfo:
    id: int
    name: str
    token_hint: str
    has_secret: bool
    notify_url: str | None
    notify_kind: str | None
    created_at: float
    # Only set by create_hook: the token exists in clear nowhere else.
    token: str | None = None
    secret: str | None = None

    @property
    def path(self) -> str:
        if self.token is None:
            raise HookError("the full URL is only known when the hook is created")
        return hook_path(self.token)

    def url(self, base_url: str | None = None) -> str:
        return public_base_url(base_url) + self.path

    def public(self) -> dict[str, Any]:
        """Safe to print or show: no token, no secret, and the notify URL shortened."""
        return {
            "id": self.id,
            "name": self.name,
            "token": f"{self.token_hint}…",
            "secret": "set" if self.has_secret else "none",
            "notify": mask_url(self.notify_url) if self.notify_url else None,
            "notify_kind": self.notify_kind,
            "created_at": self.created_at,
        }


def hook_path(token: str) -> str:
    return f"/hooks/sf/{token}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def generate_secret() -> str:
    return secrets.token_urlsafe(18)


def mask_url(url: str) -> str:
    """Scheme and host only: ntfy topics and Bark keys in the path are secrets too; for a push
    service URL (wecombot://KEY, pushplus://TOKEN) the "host" is the key, so the scheme only."""
    parts = urlsplit(url.split("+", 1)[1] if url.split("+", 1)[0] in NOTIFY_KINDS else url)
    if parts.scheme not in ("http", "https"):
        return f"{parts.scheme}://…"
    return f"{parts.scheme}://{parts.hostname or ''}/…"


def notify_target(url: str) -> tuple[str, str]:
    """Validate a notification URL and tell its kind: (kind, url to call).

    A push service's own URL (`wecombot://KEY`, `dingtalk://TOKEN`, `feishu://TOKEN`,
    `pushplus://TOKEN`, `schan://SENDKEY`, `ntfys://host/topic`, `barks://host/KEY`, …) is kind
    `apprise`, checked by apprise itself. For http(s) URLs, as before: `ntfy+https://…`,
    `bark+https://…` or `json+https://…` name the kind; otherwise ntfy.sh and hosts starting
    with "ntfy." are ntfy, api.day.app and hosts starting with "bark." are Bark, anything else
    gets a generic JSON POST.
    """
    url = url.strip()
    if len(url) > MAX_URL_CHARS:
        raise HookError(f"notify URL is longer than {MAX_URL_CHARS} characters")
    if is_apprise_url(url):
        try:
            return "apprise", check_apprise_url(url)
        except ValueError as error:
            raise HookError(f"notify URL: {error}") from None
    kind: str | None = None
    prefix, _, rest = url.partition("+")
    if rest and prefix.lower() in NOTIFY_KINDS:
        kind, url = prefix.lower(), rest
    if len(url) > MAX_URL_CHARS:
        raise HookError(f"notify URL is longer than {MAX_URL_CHARS} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HookError(
            "notify URL must be http(s)://HOST/… or a push service URL "
            "(wecombot://, dingtalk://, feishu://, pushplus://, schan://, ntfys://, barks://, …)"
        )
    if any(ch.isspace() for ch in url):
        raise HookError("notify URL must not contain spaces")
    host = parts.hostname.lower()
    path = parts.path.strip("/")
    if kind is None:
        if host == "ntfy.sh" or host.startswith("ntfy."):
            kind = "ntfy"
        elif host == "api.day.app" or host.startswith("bark."):
            kind = "bark"
        else:
            kind = "json"
    if kind in ("ntfy", "bark") and not path:
        what = "topic" if kind == "ntfy" else "device key"
        raise HookError(f"a {kind} URL needs the {what} in its path, e.g. https://{host}/KEY")
    if kind == "ntfy" and "/" in path:
        raise HookError(f"an ntfy URL is https://{host}/TOPIC: one topic, at the server's root")
    return kind, url


def _info(hook: Hook, token: str | None = None) -> HookInfo:
    return HookInfo(
        id=hook.id,
        name=hook.name,
        token_hint=hook.token_hint,
        has_secret=bool(hook.secret),
        notify_url=hook.notify_url,
        notify_kind=hook.notify_kind,
        created_at=hook.created_at,
        token=token,
        secret=hook.secret if token else None,
    )


def create_hook(
    name: str,
    secret: str | None = None,
    notify_url: str | None = None,
    *,
    store: Store | None = None,
) -> HookInfo:
    """Create a hook and return it with its token (the only time the token is known in clear).

    Raises HookError on a bad name, secret or notify URL, or a name already taken.
    """
    store = store or default_store()
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME_CHARS:
        raise HookError(f"name must be 1 to {MAX_NAME_CHARS} characters")
    if secret is not None:
        if not secret or secret != secret.strip() or len(secret) > MAX_SECRET_CHARS:
            raise HookError(
                f"secret must be 1 to {MAX_SECRET_CHARS} characters without surrounding spaces"
            )
    kind = url = None
    if notify_url:
        kind, url = notify_target(notify_url)
    token = secrets.token_urlsafe(24)
    hook = Hook(
        name=name,
        token_hash=hash_token(token),
        token_hint=token[:6],
        secret=secret,
        notify_url=url,
        notify_kind=kind,
        created_at=time.time(),
    )
    try:
        with store.session() as session:
            if session.scalar(select(Hook.id).where(Hook.name == name)) is not None:
                raise HookError(f"a hook named {name!r} already exists")
            session.add(hook)
            session.flush()
            return _info(hook, token)
    except IntegrityError as error:  # a concurrent create with the same name won the race
        raise HookError(f"a hook named {name!r} already exists") from error


def list_hooks(*, store: Store | None = None) -> list[HookInfo]:
    store = store or default_store()
    with store.session() as session:
        return [_info(hook) for hook in session.scalars(select(Hook).order_by(Hook.id))]


def find_hook(token: str, *, store: Store | None = None) -> Hook | None:
    """The hook a URL token belongs to (detached, read-only), or None."""
    store = store or default_store()
    with store.session() as session:
        return session.scalar(select(Hook).where(Hook.token_hash == hash_token(token)))


def remove_hook(token_or_name: str, *, store: Store | None = None) -> HookInfo:
    """Remove by full token or by name; its seen keys go, its pending pushes are still sent."""
    store = store or default_store()
    with store.session() as session:
        hook = session.scalar(
            select(Hook).where(
                (Hook.token_hash == hash_token(token_or_name)) | (Hook.name == token_or_name)
            )
        )
        if hook is None:
            raise HookError(f"no hook with that token or name: {token_or_name!r}")
        info = _info(hook)
        session.execute(delete(SeenKey).where(SeenKey.hook_id == hook.id))
        session.delete(hook)
        return info


if __name__ == "__main__":
    # migrate_in_child's child: one line on failure, never a traceback (the app, migrating again
    # in process, reports the error with its context).
    try:
        Store().dispose()
    except Exception as error:
        print(
            f"dunscan: database migration in a child process failed: {type(error).__name__}",
            file=sys.stderr,
        )
        sys.exit(1)
