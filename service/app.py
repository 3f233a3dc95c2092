"""The Flask application factory: `gunicorn 'service:create_app()'`.

Configuration is one typed object (service/settings.py): defaults, then `DUNSCAN_*` environment
variables (DUNSCAN_MAX_BATCH=50 sets MAX_BATCH), then the test config. It is validated before
anything starts, and the analyzer (rules, official lists, model) is loaded once per process
here, never per request: a bad rule file, list or model stops the app with a message saying what.
"""

from __future__ import annotations

import importlib
from typing import Any

from flask import Flask, Response
from flask_limiter import Limiter
from werkzeug.middleware.proxy_fix import ProxyFix

from service import logs
from service.engine.pipeline import Analyzer
from service.http import api, errors, metrics, openapi
from service.settings import Settings, load_settings

# Other surfaces, registered when their module exists, after the API, the limiter and the analyzer:
# each exposes `init_app(app)`, which registers its blueprints and hooks.
SURFACES = ("service.phones.webhooks", "service.http.web")


def _retry_after_only_when_limited(response: Response) -> Response:
    # flask-limiter puts Retry-After on every response; on a 200 or a 422 it would tell a client
    # to back off for no reason.
    if response.status_code not in (429, 503):
        response.headers.pop("Retry-After", None)
    return response


def _register_surfaces(app: Flask) -> None:
    for name in SURFACES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name == name:  # that surface is not part of this build
                continue
            raise
        module.init_app(app)


def create_app(
    test_config: dict[str, Any] | None = None, *, analyzer: Analyzer | None = None
) -> Flask:
    """Build the app. `analyzer` lets tests share one loaded analyzer across many apps."""
    # The web blueprint serves its assets with security headers; no bare /static route beside it.
    app = Flask("service", static_folder=None)
    # One validated settings object (service/settings.py): the environment, then the test
    # config; a bad value raises ConfigError naming the variable before anything starts.
    settings = load_settings(test_config)
    app.config.from_mapping(settings.flask_config())
    if test_config:  # keys that are not settings (TESTING, ...) go in as given
        app.config.from_mapping(
            {key: value for key, value in test_config.items() if key not in Settings.model_fields}
        )
    app.config["RATELIMIT_APPLICATION"] = settings.RATELIMIT
    app.config["MAX_CONTENT_LENGTH"] = settings.MAX_BODY_BYTES
    app.config["MAX_FORM_MEMORY_SIZE"] = settings.MAX_BODY_BYTES
    # Chinese stays readable in responses, and fields keep the contract's order.
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if settings.PROXY_FIX_X_FOR:
        hops = settings.PROXY_FIX_X_FOR
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    # Order matters: the request id exists before anything can refuse the request, and the
    # timer starts before the rate limiter (whose check runs in its own before_request hook).
    logs.init_app(app)
    errors.init_app(app)
    metrics.init_app(app)
    app.after_request(_retry_after_only_when_limited)  # runs after the limiter's own hook
    limiter = Limiter(api.rate_limit_key, app=app)

    app.extensions["dunscan"] = analyzer if analyzer is not None else Analyzer.load().warm()

    api.init_app(app)
    openapi.init_app(app)
    for open_blueprint in (api.health, metrics.blueprint, openapi.blueprint):
        limiter.exempt(open_blueprint)
    _register_surfaces(app)
    return app
