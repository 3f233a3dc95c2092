"""gunicorn settings: `gunicorn --config service/gunicorn_conf.py 'service:create_app()'`.

Used by `make run` and the Dockerfile. Command-line flags override what is set here
(`--workers 3`, `--bind 0.0.0.0:8000`), and so does GUNICORN_CMD_ARGS.

- Workers: scoring is CPU-bound (regular expressions, a linear model), so one worker per CPU the
  process may really use (affinity, capped by a container's CPU quota: service/cpus.py) uses the
  machine; two threads per worker keep one free for an ordinary check while the other scores a
  large batch or waits on the database, and keep-alive connections wait in the poller.
  WEB_CONCURRENCY or `--workers` overrides the count.
- preload_app: the master loads the app (rules, lists, model) once and forks the workers, which
  share those pages copy-on-write instead of each loading its own copy; a bad rule file or a
  tampered model stops the master before any worker starts. After the fork each worker drops the
  database connections it inherited (post_fork), and the push worker thread starts per process.
- Shutdown: SIGTERM stops accepting connections and gives requests in flight `graceful_timeout`
  seconds to finish; a worker silent for `timeout` seconds is killed and replaced.
- Logs: JSON lines (access log on stdout, the rest on stderr). The access log holds method,
  path (phone numbers masked), status, bytes, duration and request id: never a body, a query
  string, a client address or a user agent.
- Metrics: prometheus_client's multiprocess mode, so /metrics sums every worker (see
  service/http/metrics.py). The directory must be known before any worker imports prometheus_client,
  hence it is set here.
"""

from __future__ import annotations

import atexit
import ctypes
import gc
import glob
import os
import shutil
import tempfile
from typing import Any

_OWN_METRICS_DIR: str | None = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _OWN_METRICS_DIR = tempfile.mkdtemp(prefix="dunscan-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _OWN_METRICS_DIR

from gunicorn.glogging import Logger  # noqa: E402
from prometheus_client import multiprocess  # noqa: E402  (after the directory is set)

from service.cpus import worker_count  # noqa: E402
from service.logs import JsonFormatter, lean_records  # noqa: E402
from service.phones.store import migrate_in_child  # noqa: E402
from service.settings import settings_or_exit  # noqa: E402

# A bad DUNSCAN_* value stops gunicorn here with one line, before any worker boots.
settings_or_exit("gunicorn")


def _limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread that allocates its own malloc arena (up to 8 per CPU): the
    gthread workers' threads (4 then) each grew and kept one, ~8 MB more RSS per worker after the
    bench-http load than with 2 arenas, at the same speed. An operator's MALLOC_ARENA_MAX wins;
    without glibc (musl) there is nothing to set."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_arena_max = -8  # <malloc.h>
    mallopt(m_arena_max, arenas)


# Here, in the master before it starts any thread: the workers it forks inherit the setting.
_limit_malloc_arenas()
# Every line this server writes is JsonFormatter's (two per request): no caller lookup per record.
lean_records()

# Before the app is preloaded: a database that needs migrating is migrated in a child process,
# so neither the master nor the workers it forks import Alembic (~11 MB of RSS in each).
migrate_in_child()

bind = ["127.0.0.1:8000"]
workers = worker_count()
preload_app = True
worker_class = "gthread"
# Two threads, not more: scoring holds the GIL, so a third request in a worker only slows the two
# already running (p99 at 4 clients: model/HISTORY.md, stop 46). Not one: the second thread
# answers ordinary checks while the first scores a large batch or waits on a database lock.
threads = 2
timeout = 30
graceful_timeout = 20
keepalive = 5
# The heartbeat file lives in memory: a container's disk-backed /tmp can stall it.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
proc_name = "dunscan"
# gunicorn's runtime control socket is unused here, and its default path (~/.gunicorn) would be
# shared by every instance on the machine (tests, make run).
control_socket_disable = True
loglevel = "info"
errorlog = "-"
accesslog = "-"


class JsonLogger(Logger):
    """gunicorn's logger, writing JSON lines and an access log without personal data."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers + self.access_log.handlers:
            handler.setFormatter(JsonFormatter())

    def access(self, resp: Any, req: Any, environ: dict, request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        request_id = next(
            (value for name, value in resp.headers if name.lower() == "x-request-id"), None
        )
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        self.access_log.info(
            "request",
            extra={
                "method": environ.get("REQUEST_METHOD"),
                # The path only (a number in /v1/numbers/... is masked by the formatter).
                "path": environ.get("PATH_INFO"),
                "status": int(status),
                "bytes": getattr(resp, "sent", None),
                "ms": round(request_time.total_seconds() * 1000, 2),
                "request_id": request_id,
            },
        )


logger_class = JsonLogger


def on_starting(server: Any) -> None:
    # Files left by an earlier run in an operator-chosen directory would be summed into ours.
    for stale in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(stale)


def pre_fork(server: Any, worker: Any) -> None:
    # What the master loaded (rules, lists, model) moves to the garbage collector's permanent
    # generation: the workers' collections never walk it, so its pages stay shared.
    gc.freeze()


def post_fork(server: Any, worker: Any) -> None:
    # Pooled database connections opened by the master (tables created at load) must not be
    # shared by two processes: drop them in the worker without closing the master's.
    from service.phones.store import dispose_after_fork

    dispose_after_fork()


def child_exit(server: Any, worker: Any) -> None:
    multiprocess.mark_process_dead(worker.pid)


_MASTER_PID = os.getpid()


def _remove_own_metrics_dir() -> None:
    # Workers are forks of the master and inherit this hook: only the master may remove the dir.
    if _OWN_METRICS_DIR and os.getpid() == _MASTER_PID:
        shutil.rmtree(_OWN_METRICS_DIR, ignore_errors=True)


def on_exit(server: Any) -> None:
    _remove_own_metrics_dir()


# Also at interpreter exit: when every worker fails to boot, gunicorn can leave halt() by an
# exception before it calls on_exit.
atexit.register(_remove_own_metrics_dir)
