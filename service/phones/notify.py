"""Push a short warning to the person when a forwarded record is high risk.

Targets: any push service apprise speaks that a hook names (企业微信, 钉钉, 飞书, PushPlus,
Server酱, ntfy, Bark, Telegram, e-mail; service/phones/push.py), or a generic JSON webhook.

The phone that forwarded the SMS shows no answer, so the verdict has to reach its owner another
way. The notification is written to the outbox in the same transaction that accepts the record;
delivery happens later, off the request:

- one worker thread per process delivers due rows: started by the app when the outbox has
  work (at start-up, on an enqueue, or found by a check at most once a minute), and again after
  a fork;
- rows are claimed with a single conditional UPDATE (a lease with an owner and an expiry), so
  several gunicorn workers or instances never send the same row twice at once, and a row whose
  claimer died is picked up again when its lease runs out;
- a failure is retried with exponential backoff until the row is older than NOTIFY_MAX_AGE_S;
- `dunscan notify run-once` delivers due rows from the command line.

Retention: a delivered or abandoned row loses its text at once and is deleted after
NOTIFY_RETENTION_S; expired seen-request keys are purged on the same pass.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from service.engine.schemas import CallRecord, SmsRecord, Verdict
from service.phones import push
from service.phones.push import DeliveryError
from service.phones.store import Outbox, SeenKey, Store, store_for
from service.settings import settings

log = logging.getLogger(__name__)

CATEGORY_TITLES = {
    "scam": "疑似诈骗",
    "abusive": "违规催收",
    "legit": "正规通知",
    "other": "其他",
}
MAX_EVIDENCE_CHARS = 40


def setting(app: Any, name: str) -> float:
    """A notify setting (NOTIFY_*, validated in service/settings.py): the app's config, or the
    environment's settings when there is no app (`dunscan notify run-once`)."""
    value = app.config.get(name) if app is not None else None
    if value is None:
        value = getattr(settings(), name)
    return float(value)


# --- composing --------------------------------------------------------------------------------


def _masked(number: str | None) -> str:
    digits = "".join(ch for ch in (number or "") if ch.isdigit() or ch == "+")
    if len(digits) >= 11:
        return f"{digits[:-8]}****{digits[-4:]}"
    return digits or "未知号码"


def _without_controls(text: str) -> str:
    """The quoted evidence without control characters: they mean nothing in a push, and
    PostgreSQL refuses NUL in a text column (SQLite stores it), so a message with a NUL inside
    its evidence could not be accepted there."""
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cc")


def compose(record: SmsRecord | CallRecord, verdict: Verdict) -> tuple[str, str, dict[str, Any]]:
    """(title, body, payload) of the short Chinese warning; no full message text goes in."""
    what = "来电" if record.kind == "call" else "短信"
    title = f"dunscan：{CATEGORY_TITLES.get(verdict.category, verdict.category)}{what}"
    lines = [f"{_masked(record.sender)} 的{what}，风险 {round(verdict.risk * 100)}%。"]
    evidence = next(
        (s for s in verdict.signals if s.id != "model" and (s.evidence or s.explanation)),
        None,
    )
    if evidence is not None:
        if evidence.evidence:
            quoted = _without_controls(evidence.evidence)[:MAX_EVIDENCE_CHARS]
            why = f"—{evidence.explanation}" if evidence.explanation else ""
            lines.append(f"证据：「{quoted}」{why}")
        else:
            lines.append(f"原因：{evidence.explanation}")
    official = [
        f"{brand.name} {'/'.join(brand.official_numbers[:2])}"
        for brand in verdict.claimed_brands
        if brand.official_numbers
    ]
    if official:
        lines.append("请只通过官方渠道核实：" + "；".join(official[:2]))
    else:
        lines.append("不要转账，不要提供验证码；如已转账请拨打 110 或 96110。")
    payload = {
        "category": verdict.category,
        "level": verdict.level,
        "risk": verdict.risk,
        "kind": record.kind,
        "signals": [s.id for s in verdict.signals if s.id != "model"][:5],
        "official_numbers": {b.brand: b.official_numbers for b in verdict.claimed_brands},
    }
    return title, "\n".join(lines), payload


def should_notify(verdict: Verdict) -> bool:
    # Abusive collection is harm done to the person: pushed like a high-risk scam.
    return verdict.level == "high" or verdict.category == "abusive"


def enqueue(
    session: Session,
    *,
    hook_id: int,
    url: str,
    kind: str,
    title: str,
    body: str,
    payload: dict[str, Any],
    now: float | None = None,
) -> Outbox:
    """Add a pending push in the caller's transaction (the one accepting the record)."""
    now = time.time() if now is None else now
    row = Outbox(
        hook_id=hook_id,
        url=url,
        kind=kind,
        title=title,
        body=body,
        payload=json.dumps(payload, ensure_ascii=False),
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    return row


# --- sending ----------------------------------------------------------------------------------


IDEMPOTENCY_HEADER = "Idempotency-Key"


def idempotency_key(row: Outbox) -> str:
    """The same for every attempt at one push, different for every push.

    Delivery is at least once: a worker killed after the receiver answered 2xx but before the row
    was marked delivered leaves the row to be sent again when its lease runs out. A receiver that
    must show each warning once keeps the keys it has seen (for NOTIFY_MAX_AGE_S) and drops a
    repeat. Derived from the row (id, hook, creation time), so no schema change is needed."""
    identity = f"dunscan-outbox:{row.id}:{row.hook_id}:{row.created_at!r}"
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


def send(row: Outbox, timeout_s: float) -> None:
    """One delivery attempt; raises DeliveryError (permanent or not) unless it was delivered.

    Push services (ntfy, Bark, 企业微信, 钉钉, 飞书, PushPlus, Server酱, …) go through apprise;
    the generic JSON webhook keeps its documented body (service/phones/push.py says why).
    """
    if row.kind == "json":
        payload = json.loads(row.payload or "{}")
        key = idempotency_key(row)
        document = {
            "title": row.title,
            "body": row.body,
            "source": "dunscan",
            **payload,
            "idempotency_key": key,
        }
        push.send_json(row.url, document, timeout_s, headers={IDEMPOTENCY_HEADER: key})
        return
    # Push services take no custom header through apprise (and ntfy and Bark ignored it anyway):
    # there a repeat after a worker death shows twice, as the README says.
    push.send_apprise(push.apprise_url(row.kind, row.url), row.title, row.body, timeout_s)


@dataclass
class PassResult:
    delivered: int = 0
    retried: int = 0
    abandoned: int = 0
    purged: int = 0


class Deliverer:
    """Claims due rows and delivers them; shared by the worker thread and the CLI."""

    def __init__(self, store: Store, app: Any = None) -> None:
        self.store = store
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.backoff_s = setting(app, "NOTIFY_BACKOFF_S")
        self.backoff_max_s = setting(app, "NOTIFY_BACKOFF_MAX_S")
        self.max_age_s = setting(app, "NOTIFY_MAX_AGE_S")
        self.retention_s = setting(app, "NOTIFY_RETENTION_S")
        self.lease_s = setting(app, "NOTIFY_LEASE_S")
        self.timeout_s = setting(app, "NOTIFY_TIMEOUT_S")

    def claim(self, limit: int = 20, now: float | None = None) -> list[Outbox]:
        """Lease up to `limit` due rows to this deliverer, atomically."""
        now = time.time() if now is None else now
        free = and_(
            Outbox.status == "pending",
            Outbox.next_attempt_at <= now,
            or_(Outbox.lease_until.is_(None), Outbox.lease_until < now),
        )
        with self.store.session() as session:
            due = select(Outbox.id).where(free).order_by(Outbox.next_attempt_at).limit(limit)
            # The conditions are repeated on the UPDATE itself: a row another worker claimed
            # between the sub-select and the write no longer matches and is left alone.
            session.execute(
                update(Outbox)
                .where(Outbox.id.in_(due.scalar_subquery()), free)
                .values(lease_owner=self.owner, lease_until=now + self.lease_s)
                .execution_options(synchronize_session=False)
            )
        with self.store.session() as session:
            return list(
                session.scalars(
                    select(Outbox).where(
                        Outbox.lease_owner == self.owner,
                        Outbox.status == "pending",
                        Outbox.lease_until > now,
                    )
                )
            )

    def _finish(self, row: Outbox, error: DeliveryError | None, now: float) -> str:
        values: dict[str, Any] = {"lease_owner": None, "lease_until": None, "updated_at": now}
        if error is None:
            outcome = "delivered"
            values.update(status="delivered", title="", body="", payload="{}", last_error=None)
        else:
            attempts = row.attempts + 1
            delay = min(self.backoff_s * (2 ** (attempts - 1)), self.backoff_max_s)
            too_old = now + delay - row.created_at > self.max_age_s
            values.update(attempts=attempts, last_error=error.reason[:200])
            if error.permanent or too_old:
                outcome = "abandoned"
                values.update(status="failed", title="", body="", payload="{}")
            else:
                outcome = "retry"
                values.update(next_attempt_at=now + delay)
        with self.store.session() as session:
            session.execute(
                update(Outbox)
                .where(Outbox.id == row.id, Outbox.lease_owner == self.owner)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        return outcome

    def run_once(self, now: float | None = None) -> PassResult:
        """Deliver every due row once, then purge what retention allows."""
        result = PassResult()
        for row in self.claim(now=now):
            started = time.perf_counter()
            error: DeliveryError | None = None
            try:
                send(row, self.timeout_s)
            except DeliveryError as failure:
                error = failure
            outcome = self._finish(row, error, time.time())
            log.info(
                "notification attempt",
                extra={
                    "outbox_id": row.id,
                    "hook_id": row.hook_id,
                    "notify_kind": row.kind,
                    "outcome": outcome,
                    "attempt": row.attempts + 1,
                    "error": error.reason if error else None,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
            if outcome == "delivered":
                result.delivered += 1
            elif outcome == "retry":
                result.retried += 1
            else:
                result.abandoned += 1
        result.purged = self.purge(now)
        if result.delivered or result.abandoned or result.purged:
            # The warnings just emptied still sit in SQLite's write-ahead log until a checkpoint.
            self.store.forget_deleted()
        return result

    def purge(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        with self.store.session() as session:
            rows = session.execute(
                delete(Outbox).where(
                    Outbox.status.in_(("delivered", "failed")),
                    Outbox.updated_at < now - self.retention_s,
                )
            ).rowcount
            keys = session.execute(delete(SeenKey).where(SeenKey.expires_at < now)).rowcount
        return int(rows or 0) + int(keys or 0)

    def pending(self) -> int:
        with self.store.session() as session:
            count = select(func.count()).select_from(Outbox).where(Outbox.status == "pending")
            return int(session.scalar(count) or 0)


class Worker:
    """The per-process delivery thread; `wake()` makes it look at the outbox right away."""

    def __init__(self, deliverer: Deliverer, poll_s: float) -> None:
        self.deliverer = deliverer
        self.poll_s = poll_s
        self.pid = os.getpid()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dunscan-notify", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        return self.pid == os.getpid() and self._thread.is_alive()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliverer.run_once()
            except Exception:  # a database hiccup must not kill the thread; log and carry on
                log.exception("notification pass failed")
            self._wake.wait(self.poll_s)
            self._wake.clear()


def ensure_worker(app: Any) -> Worker | None:
    """Start this process's worker if it is not running (first start, or after a fork)."""
    if not setting(app, "NOTIFY_WORKER"):
        return None
    worker: Worker | None = app.extensions.get("dunscan_notify_worker")
    if worker is not None and worker.alive():
        return worker
    with _start_lock:
        worker = app.extensions.get("dunscan_notify_worker")
        if worker is None or not worker.alive():
            worker = Worker(Deliverer(store_for(app), app), setting(app, "NOTIFY_POLL_S"))
            app.extensions["dunscan_notify_worker"] = worker
            worker.start()
    return worker


def wake(app: Any) -> None:
    worker = ensure_worker(app)
    if worker is not None:
        worker.wake()


def stop_worker(app: Any) -> None:
    worker: Worker | None = app.extensions.pop("dunscan_notify_worker", None)
    if worker is not None:
        worker.stop()


_start_lock = threading.Lock()
# How often a process without a worker looks for pending rows another process left behind.
PENDING_CHECK_S = 60.0


def start_if_needed(app: Any) -> None:
    """Start the worker when there is work: at start-up, then at most every PENDING_CHECK_S.

    A process that never has a push to send (most test apps, a CLI) runs no thread; one that had
    a worker before a fork (gunicorn --preload) gets a new one; an enqueue wakes one at once.
    """
    if not setting(app, "NOTIFY_WORKER"):
        return
    worker: Worker | None = app.extensions.get("dunscan_notify_worker")
    if worker is not None:
        if not worker.alive():
            ensure_worker(app)
        return
    now = time.monotonic()
    last = app.extensions.get("dunscan_notify_checked")
    if last is not None and now - last < PENDING_CHECK_S:
        return
    app.extensions["dunscan_notify_checked"] = now
    if Deliverer(store_for(app), app).pending():
        ensure_worker(app)


def init_app(app: Any) -> None:
    start_if_needed(app)
    app.before_request(lambda: start_if_needed(app))
