"""`make bench-http`: the real gunicorn, driven over loopback at fixed concurrencies.

    python -m model.bench_http [--workers 2] [--requests 2000] [--seconds 20] [--rounds 3]
                               [--rate-limited]

Starts gunicorn with service/gunicorn_conf.py on a free 127.0.0.1 port (rate limit off unless
`--rate-limited`, a throw-away SQLite store), then for each concurrency (1, 4, 16) sends at most
`--requests` POST /v1/check requests or stops after `--seconds`, whichever comes first: each client
thread keeps one HTTP/1.1 connection and sends the corpus and real messages in turn. Prints req/s,
p50/p99 latency, errors and the server's CPU time a request (master and workers, from /proc) per
concurrency, and the memory of the master and each worker (RSS, and PSS, which splits pages shared
copy-on-write between the processes). The load generator runs on the same machine as the server: on
a small machine it takes CPU from it, so it is a light client (raw sockets, prepared requests). On
a shared machine one run's rate moves by a fifth between minutes, so the concurrencies are run in
turn `--rounds` times: req/s is the median round (with the slowest and fastest beside it), p50/p99
are over every round's requests. Printed, never asserted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from model import data
from service.paths import REPO_ROOT

CONCURRENCIES = (1, 4, 16)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of a process in kB; PSS counts each shared page once across its sharers."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
            for line in rollup:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def _cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU the processes have used so far (0 for one that is gone)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _bodies() -> list[bytes]:
    bodies = []
    for example in data.load_corpus() + data.load_real():
        record = example.record.model_dump(mode="json", exclude_none=True)
        record.pop("id", None)
        if record.get("kind") == "sms" and not (record.get("text") or "").strip():
            continue
        bodies.append(json.dumps(record, ensure_ascii=False).encode("utf-8"))
    return bodies


class _Connection:
    """One keep-alive HTTP/1.1 connection that sends prepared requests and reads whole responses.

    The load generator shares the machine's CPUs with the server, so it must cost little: on 2
    CPUs http.client took ~0.7 ms of CPU a request (headers parsed into email.message objects, a
    buffered file per response), a third of what the server spends. This sends prepared bytes
    and reads the status line and Content-Length (gunicorn answers every /v1/check with one) at
    ~0.2 ms a request."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = self._connect()
        self.pending = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def reconnect(self) -> None:
        self.sock.close()
        self.sock = self._connect()
        self.pending = b""

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.pending += chunk

    def exchange(self, request: bytes) -> int:
        """Send one request, read its whole response; the HTTP status."""
        self.sock.sendall(request)
        while (end := self.pending.find(b"\r\n\r\n")) < 0:
            self._fill()
        head = self.pending[: end + 4].lower()
        marker = head.find(b"\r\ncontent-length:")
        if marker < 0:
            raise ConnectionError("a response without Content-Length")
        length = int(head[marker + 17 : head.index(b"\r\n", marker + 2)])
        while len(self.pending) < end + 4 + length:
            self._fill()
        self.pending = self.pending[end + 4 + length :]
        if b"\r\nconnection: close" in head:
            self.reconnect()
        return int(head[9:12])

    def close(self) -> None:
        self.sock.close()


def _requests(port: int, bodies: list[bytes]) -> list[bytes]:
    head = (
        f"POST /v1/check HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode("ascii")
    return [head + str(len(body)).encode("ascii") + b"\r\n\r\n" + body for body in bodies]


def _drive(
    port: int, requests: list[bytes], concurrency: int, total: int, seconds: float
) -> tuple[float, list[float], int]:
    """(elapsed s, latencies s, errors) of one bounded run."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(total))
    deadline = time.monotonic() + seconds

    def client() -> None:
        nonlocal errors
        connection = _Connection(port)
        while time.monotonic() < deadline:
            with lock:
                number = next(counter, None)
            if number is None:
                break
            started = time.perf_counter()
            try:
                ok = connection.exchange(requests[number % len(requests)]) == 200
            except (OSError, ValueError):
                ok = False
                connection.reconnect()
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                errors += not ok
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies, errors


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.bench_http", description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--requests", type=int, default=2000, help="per concurrency, at most")
    parser.add_argument("--seconds", type=float, default=20.0, help="per concurrency, at most")
    parser.add_argument("--rounds", type=int, default=3, help="runs of every concurrency, in turn")
    parser.add_argument(
        "--rate-limited",
        action="store_true",
        help="keep the rate limiter on, as a deployment does, with budgets too high to refuse "
        "anything: what counting costs a request",
    )
    args = parser.parse_args(argv)

    bodies = _bodies()
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="dunscan-bench-") as tmp:
        env = {
            **os.environ,
            "DUNSCAN_RATELIMIT_ENABLED": "false",
            "DUNSCAN_DATABASE_URL": f"sqlite:///{Path(tmp) / 'store.sqlite3'}",
        }
        if args.rate_limited:
            # Every client thread comes from 127.0.0.1, one budget: high enough for any run.
            env |= {
                "DUNSCAN_RATELIMIT_ENABLED": "true",
                "DUNSCAN_RATELIMIT": "100000000/minute",
                "DUNSCAN_RATELIMIT_CHARS": "100000000000/minute",
            }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        gunicorn = Path(sys.executable).parent / "gunicorn"
        command = [
            str(gunicorn),
            "--config",
            "service/gunicorn_conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--access-logfile",
            "/dev/null",
            "--log-level",
            "warning",
            "service:create_app()",
        ]
        started = time.perf_counter()
        server = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            while True:
                if server.poll() is not None:
                    print(f"gunicorn exited with {server.returncode}", file=sys.stderr)
                    return 1
                try:
                    probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    probe.request("GET", "/healthz")
                    if probe.getresponse().status == 200:
                        break
                except OSError:
                    pass
                if time.perf_counter() - started > 90:
                    print("gunicorn did not answer /healthz within 90 s", file=sys.stderr)
                    return 1
                time.sleep(0.1)
            ready = time.perf_counter() - started
            time.sleep(1.0)  # every worker forked and booted
            workers = _children(server.pid)
            memory_idle = {pid: _memory_kb(pid) for pid in [server.pid, *workers]}
            requests = _requests(port, bodies)
            _drive(port, requests, 2, 200, 10.0)  # warm every worker's caches
            runs: dict[int, list[tuple[float, list[float], int]]] = {c: [] for c in CONCURRENCIES}
            server_cpu = dict.fromkeys(CONCURRENCIES, 0.0)
            for _ in range(max(args.rounds, 1)):
                # In turn, so that a slow minute of the machine falls on every concurrency alike.
                for concurrency in CONCURRENCIES:
                    cpu_before = _cpu_seconds([server.pid, *workers])
                    runs[concurrency].append(
                        _drive(port, requests, concurrency, args.requests, args.seconds)
                    )
                    server_cpu[concurrency] += _cpu_seconds([server.pid, *workers]) - cpu_before
            rows = []
            for concurrency, done in runs.items():
                rates = sorted(len(latencies) / elapsed for elapsed, latencies, _ in done)
                values = np.array([value for _, latencies, _ in done for value in latencies]) * 1000
                rows.append(
                    (
                        concurrency,
                        len(values),
                        rates,
                        float(np.percentile(values, 50)),
                        float(np.percentile(values, 99)),
                        sum(errors for _, _, errors in done),
                        server_cpu[concurrency] / max(len(values), 1) * 1000,
                    )
                )
            memory_loaded = {pid: _memory_kb(pid) for pid in [server.pid, *workers]}
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()

    print(
        f"gunicorn, {args.workers} workers (gthread), POST /v1/check over loopback, "
        f"rate limiter {'on (budgets too high to refuse)' if args.rate_limited else 'off'}, "
        f"{len(bodies)} messages in turn; ready in {ready:.1f} s; "
        f"{os.cpu_count()} CPUs shared with the load generator, load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    print(
        f"| concurrency | requests ({args.rounds} rounds) | req/s, median round (slowest–fastest) "
        "| p50 | p99 | errors | server CPU a request |\n|---|---|---|---|---|---|---|"
    )
    for concurrency, count, rates, p50, p99, errors, cpu_ms in rows:
        rate = f"{rates[len(rates) // 2]:,.0f} ({rates[0]:,.0f}–{rates[-1]:,.0f})"
        print(
            f"| {concurrency} | {count} | {rate} | {p50:.1f} ms | {p99:.1f} ms | {errors} "
            f"| {cpu_ms:.2f} ms |"
        )
    print("\n| process | RSS idle | PSS idle | RSS after load | PSS after load |")
    print("|---|---|---|---|---|")
    for pid in [server.pid, *workers]:
        name = "master" if pid == server.pid else f"worker {pid}"
        (rss0, pss0), (rss1, pss1) = memory_idle[pid], memory_loaded[pid]
        print(
            f"| {name} | {rss0 / 1024:.0f} MB | {pss0 / 1024:.0f} MB | {rss1 / 1024:.0f} MB | "
            f"{pss1 / 1024:.0f} MB |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
