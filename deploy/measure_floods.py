"""Work floods against the real stack (gunicorn, service/gunicorn_conf.py, 2 workers, loopback):
how long an ordinary check and an ordinary webhook take while others flood.

    .venv/bin/python deploy/measure_floods.py            # prints a table; about two minutes

Scenarios (issue 12): 8 clients, each from its own address, sending maximal batches
(100 x 5,000 characters) as fast as they are answered, with the characters-per-minute budget
effectively off (before) and at its default (after); and 8 webhook posts of 1.8 MB to one hook
while another hook gets an ordinary message. Figures, not assertions: the tests assert behaviour.
"""

from __future__ import annotations

import json
import signal
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_gunicorn import _start, _wait_until_healthy

from service.phones.store import Store, create_hook

FLOODERS = 8
FLOOD_S = 40.0
ORDINARY = {"text": "【支付宝】您的借呗已逾期，请缴纳解冻费后联系专员17123456789"}


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, float]:
    started = time.perf_counter()
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError:
        status = 0
    return status, time.perf_counter() - started


def flood_batches(chars_limit: str) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="dunscan-flood-"))
    server = _start(
        tmp,
        DUNSCAN_PROXY_FIX_X_FOR="1",
        DUNSCAN_RATELIMIT="100000/minute",
        DUNSCAN_RATELIMIT_CHARS=chars_limit,
    )
    _wait_until_healthy(server)
    batch = json.dumps({"records": [{"text": "您" * 5000}] * 100}, ensure_ascii=False).encode()
    stop = threading.Event()
    statuses: list[int] = []

    def flooder(index: int) -> None:
        headers = {"Content-Type": "application/json", "X-Forwarded-For": f"10.0.0.{index + 1}"}
        while not stop.is_set():
            status, _ = post(server.url + "/v1/check/batch", batch, headers)
            statuses.append(status)

    threads = [threading.Thread(target=flooder, args=(i,), daemon=True) for i in range(FLOODERS)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    latencies = []
    deadline = time.monotonic() + FLOOD_S
    while time.monotonic() < deadline:
        headers = {"Content-Type": "application/json", "X-Forwarded-For": "10.9.9.9"}
        status, seconds = post(server.url + "/v1/check", json.dumps(ORDINARY).encode(), headers)
        latencies.append(seconds if status == 200 else float("nan"))
    stop.set()
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=120)
    return {
        "ordinary check median s": round(statistics.median(latencies), 3),
        "max s": round(max(latencies), 3),
        "batch answers by status": dict(sorted(Counter(statuses).items())),
    }


def flood_webhooks() -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="dunscan-flood-"))
    store = Store(f"sqlite:///{tmp / 'store.sqlite3'}")
    flooded = create_hook("flooded", store=store)
    other = create_hook("other", store=store)
    store.dispose()
    server = _start(tmp, DUNSCAN_PROXY_FIX_X_FOR="1")
    _wait_until_healthy(server)
    huge = json.dumps({"from": "95188", "org_content": "您" * 600_000}, ensure_ascii=False).encode()
    results: list[tuple[int, float]] = []

    def flooder(index: int) -> None:
        headers = {"Content-Type": "application/json", "X-Forwarded-For": f"10.0.1.{index + 1}"}
        results.append(post(server.url + flooded.path, huge, headers))

    threads = [threading.Thread(target=flooder, args=(i,)) for i in range(FLOODERS)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    body = json.dumps({"from": "95188", "org_content": ORDINARY["text"]}).encode()
    status, seconds = post(server.url + other.path, body, {"Content-Type": "application/json"})
    for thread in threads:
        thread.join()
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=120)
    return {
        "other hook's message s": round(seconds, 3),
        "its status": status,
        "1.8 MB posts statuses": sorted(s for s, _ in results),
        "slowest 1.8 MB post s": round(max(t for _, t in results), 3),
    }


def main() -> None:
    # Both runs have the one-large-batch-per-process slot (service.http.api.LARGE_BATCH_CHARS).
    print("8 clients flooding maximal batches, characters budget off:")
    print("  ", flood_batches("1000000000/minute"))
    print("8 clients flooding maximal batches, characters budget at its default (600000/minute):")
    print("  ", flood_batches(""))
    print("8 webhook posts of 1.8 MB to one hook, an ordinary message to another:")
    print("  ", flood_webhooks())


if __name__ == "__main__":
    main()
