"""Prometheus metrics: requests by endpoint and status, latency, verdicts by category.

Labels are route templates ("/v1/numbers/<number>"), never concrete paths, so no phone number or
text can reach a metric, and the number of series stays bounded.

Several gunicorn workers: each worker is its own process with its own counters, and a scrape reaches
only one of them. So under gunicorn the service runs prometheus_client's multiprocess mode:
`service/gunicorn_conf.py` sets PROMETHEUS_MULTIPROC_DIR (a fresh temporary directory unless the
operator sets one) before any worker starts, every worker writes its values there, and `/metrics`
sums all workers' files. Without that variable (tests, `flask run`) each app keeps its own registry.
"""

from __future__ import annotations

import os
import time

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from service.engine.schemas import Verdict

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
EXTENSION = "dunscan_metrics"
# Scoring takes milliseconds; the tail buckets catch a slow batch or an overloaded worker.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

blueprint = Blueprint("metrics", __name__)


class Metrics:
    """The service's metrics, registered in a registry of their own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "dunscan_http_requests",
            "HTTP requests by route template, method and status.",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "dunscan_http_request_duration_seconds",
            "Time from the start of a request to its response, by route template.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.verdicts = Counter(
            "dunscan_verdicts",
            "Verdicts given, by category, level and record kind.",
            ["category", "level", "kind"],
            registry=self.registry,
        )

    def count_verdict(self, verdict: Verdict) -> None:
        self.verdicts.labels(verdict.category, verdict.level, verdict.kind).inc()


def metrics_for(app: Flask) -> Metrics:
    return app.extensions[EXTENSION]


def count_verdict(verdict: Verdict) -> None:
    metrics_for(current_app).count_verdict(verdict)


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


# Label values must come from a fixed set: a client can send any method name, and each new value
# would be a new series kept for the life of the process (and in every scrape).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _observe(response: Response) -> Response:
    metrics = metrics_for(current_app)
    endpoint = request.url_rule.rule if request.url_rule else "<unmatched>"
    method = request.method if request.method in KNOWN_METHODS else "other"
    metrics.requests.labels(endpoint, method, str(response.status_code)).inc()
    started = g.get("metrics_started")
    if started is not None:
        metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
    return response


@blueprint.get("/metrics")
def metrics_view() -> Response:
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = metrics_for(current_app).registry
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = Metrics()
    app.before_request(_start_timer)
    app.after_request(_observe)
    app.register_blueprint(blueprint)
