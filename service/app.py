"""The Flask application factory: `gunicorn 'service:create_app()'`.

Configuration comes from defaults, then `DUNSCAN_*` environment variables (DUNSCAN_MAX_BATCH=50
sets MAX_BATCH; values are parsed as JSON where they can be), then the test config. It is validated
before anything starts, and the analyzer (rules, official lists, model) is loaded once per process
here, never per request: a bad rule file, list or model stops the app with a message saying what.
"""

from __future__ import annotations

import importlib
from typing import Any, Literal

import limits
from flask import Flask, Response
from flask_limiter import Limiter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from werkzeug.middleware.proxy_fix import ProxyFix

from service import api, errors, logs, metrics, openapi
from service.pipeline import Analyzer

# Each entry: the DUNSCAN_* suffix, its default, and what it does (README "Configuration").
DEFAULTS: dict[str, Any] = {
    "MAX_BODY_BYTES": 2 * 1024 * 1024,  # whole request body; a full batch of long texts fits
    "MAX_TEXT_CHARS": 5000,  # one message's text; real SMS are far shorter
    "MAX_BATCH": 100,  # records in one /v1/check/batch request
    "API_KEYS": "",  # comma-separated; when set, /v1/* requires one in X-API-Key
    # One budget per API key (or per client IP without one), shared by every rate-limited route:
    # "120/minute;2000/hour". Health, readiness, metrics and docs are exempt.
    "RATELIMIT": "120/minute",
    "RATELIMIT_STORAGE_URI": "memory://",  # redis://host:6379 when several instances share limits
    "RATELIMIT_HEADERS_ENABLED": True,  # X-RateLimit-* on responses, Retry-After on a 429
    "RATELIMIT_ENABLED": True,
    # A shared store (Redis) that goes away must not take the API down with it: count in memory.
    "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
    "PROXY_FIX_X_FOR": 0,  # number of trusted reverse proxies in front (for the client IP)
    "REQUIRE_MODEL": False,  # /readyz answers 503 while no trained model is loaded
    "LOG_LEVEL": "INFO",
}

# Other surfaces, registered when their module exists, after the API, the limiter and the analyzer:
# each exposes `init_app(app)`, which registers its blueprints and hooks.
SURFACES = ("service.webhooks", "service.web")


class Settings(BaseModel):
    """The configuration values the service itself reads, checked before it starts."""

    model_config = ConfigDict(extra="ignore")

    MAX_BODY_BYTES: int = Field(gt=0)
    MAX_TEXT_CHARS: int = Field(gt=0)
    MAX_BATCH: int = Field(gt=0)
    API_KEYS: tuple[str, ...]
    RATELIMIT: str
    PROXY_FIX_X_FOR: int = Field(ge=0)
    REQUIRE_MODEL: bool
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

    @field_validator("API_KEYS", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str | int):  # "k1,k2" (or a key that happens to parse as a number)
            value = str(value).split(",")
        if isinstance(value, list | tuple):
            return tuple(str(key).strip() for key in value if str(key).strip())
        return value

    @field_validator("RATELIMIT")
    @classmethod
    def _parse_limits(cls, value: str) -> str:
        limits.parse_many(value)  # "120/minute;2000/hour"; raises ValueError on a typo
        return value

    @field_validator("LOG_LEVEL", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


def _validated_settings(app: Flask) -> Settings:
    try:
        return Settings.model_validate(dict(app.config))
    except ValidationError as error:
        problems = "; ".join(
            f"DUNSCAN_{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors()
        )
        raise ValueError(f"invalid configuration: {problems}") from None


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
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("DUNSCAN")
    if test_config:
        app.config.from_mapping(test_config)

    settings = _validated_settings(app)
    app.config["API_KEYS"] = settings.API_KEYS
    app.config["LOG_LEVEL"] = settings.LOG_LEVEL
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
