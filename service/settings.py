"""Every setting dunscan reads from the environment, in one typed object (pydantic-settings).

`DUNSCAN_<NAME>` sets field `<NAME>` (`DUNSCAN_MAX_BATCH=50`), except `HOST`, `PORT` and
`WEB_CONCURRENCY`, which follow the usual unprefixed convention (`DUNSCAN_HOST` / `DUNSCAN_PORT`
work too). The service
(`create_app`, the gunicorn config), the CLI and `dunscan serve` build it before they do anything
else, so a bad value stops them at once with one line that names the variable and what it
accepts, instead of a 500 on the first webhook or a stack trace inside a JSON log line.

The README's configuration tables list every field here; a test keeps them in step.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "DUNSCAN_"
# Values never repeated in an error message: they may carry keys or passwords.
SECRET_FIELDS = frozenset({"API_KEYS", "DATABASE_URL", "RATELIMIT_STORAGE_URI"})
Seconds = Annotated[float, Field(gt=0)]


class ConfigError(ValueError):
    """A setting has a value dunscan cannot use; the message is one line naming the variable."""


def check_public_url(value: str) -> str:
    """An http(s) URL with a host and nothing after the path: the base phones are sent to."""
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(
            "expected an http:// or https:// URL with a host, e.g. https://example.org"
        )
    return value.rstrip("/")


def _check_database_url(value: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(value)
    except ArgumentError:
        raise ValueError(
            "expected a database URL such as sqlite:///path/to/file.sqlite3 "
            "or postgresql+psycopg://user@host/db"
        ) from None
    return value


class PathSettings(BaseSettings):
    """Where the data lives: read by `service.paths` at import, so kept apart and failure-free."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, populate_by_name=True
    )

    RULES_DIR: Path | None = Field(
        None, description="rule files (patterns/) and official-number lists (numbers/)"
    )
    MODEL_DIR: Path | None = Field(None, description="folder holding artifact/dunscan-model.npz")
    MODEL_PATH: Path | None = Field(None, description="the model artifact itself")
    DATA_DIR: Path | None = Field(None, description="public datasets for training and evaluation")
    CACHE_DIR: Path | None = Field(
        None, description="derived files: the unpacked sentence encoder, training embeddings"
    )


class Settings(PathSettings):
    """The whole configuration of the service and the CLI."""

    # --- HTTP API --------------------------------------------------------------------------
    MAX_BODY_BYTES: int = Field(2 * 1024 * 1024, gt=0, description="largest request body")
    MAX_TEXT_CHARS: int = Field(5000, gt=0, description="longest message text")
    MAX_BATCH: int = Field(100, gt=0, description="most records in one batch")
    API_KEYS: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="comma-separated keys; when set, /v1/* requires one in X-API-Key"
    )
    RATELIMIT: str = Field(
        "120/minute", description="limits per API key or client IP, ';' joins several"
    )
    # None: service/http/api.py's default (600000/minute, one maximal batch per minute).
    RATELIMIT_CHARS: str | None = Field(
        None, description="characters of message text per minute per API key or client IP"
    )
    RATELIMIT_STORAGE_URI: str = Field(
        "memory://", description="where limits are counted; redis://host:6379 to share them"
    )
    RATELIMIT_ENABLED: bool = True
    RATELIMIT_HEADERS_ENABLED: bool = True
    # A shared store (Redis) that goes away must not take the API down with it: count in memory.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED: bool = True
    PROXY_FIX_X_FOR: int = Field(0, ge=0, description="trusted reverse proxies in front")
    REQUIRE_MODEL: bool = Field(False, description="/readyz is 503 without a trained model")
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    # --- where it runs ---------------------------------------------------------------------
    HOST: str = Field(
        "127.0.0.1",
        validation_alias=AliasChoices("DUNSCAN_HOST", "HOST"),
        description="address `dunscan serve` and `make run` bind",
    )
    PORT: int = Field(
        8000,
        ge=1,
        le=65535,
        validation_alias=AliasChoices("DUNSCAN_PORT", "PORT"),
        description="port `dunscan serve` and `make run` bind",
    )
    # Read by service/gunicorn_conf.py itself (gunicorn's convention); checked here so a typo
    # stops the start-up in one line instead of a traceback from the config file.
    WEB_CONCURRENCY: int | None = Field(
        None,
        ge=1,
        validation_alias=AliasChoices("WEB_CONCURRENCY"),
        description="gunicorn workers (unset: service/cpus.py counts the usable CPUs)",
    )
    DATABASE_URL: str | None = Field(
        None, description="hooks, seen requests, outbox (default: a SQLite file)"
    )
    PUBLIC_URL: str | None = Field(None, description="how phones reach this service")
    PUBLIC_HOSTS: str = Field(
        "", description="without PUBLIC_URL: comma-separated Host names that may build links"
    )

    # --- SmsForwarder hooks and the push outbox ------------------------------------------------
    HOOK_MAX_SKEW_S: Seconds = 3600.0
    HOOK_DEDUP_S: Seconds = 3600.0
    NOTIFY_BACKOFF_S: Seconds = 5.0
    NOTIFY_BACKOFF_MAX_S: Seconds = 900.0
    NOTIFY_MAX_AGE_S: Seconds = 86400.0
    # 0 is allowed: finished rows (already emptied of text) are then deleted on the next pass.
    NOTIFY_RETENTION_S: float = Field(7 * 86400.0, ge=0)
    NOTIFY_POLL_S: Seconds = 2.0
    NOTIFY_LEASE_S: Seconds = 60.0
    NOTIFY_TIMEOUT_S: Seconds = 10.0
    NOTIFY_WORKER: bool = Field(True, description="0 turns the in-process push worker off")

    @field_validator("API_KEYS", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str | int):  # "k1,k2" (or a key that happens to look like a number)
            value = str(value).split(",")
        if isinstance(value, list | tuple):
            return tuple(str(key).strip() for key in value if str(key).strip())
        return value

    @field_validator("RATELIMIT", "RATELIMIT_CHARS")
    @classmethod
    def _parse_limits(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or value == cls.model_fields[str(info.field_name)].default:
            # BaseSettings validates defaults too; the default parses (tests/test_settings.py),
            # and importing `limits` costs a CLI start ~45 ms.
            return value
        import limits  # here, not at the top: only a configured value needs it

        try:
            limits.parse_many(value)  # "120/minute;2000/hour"
        except ValueError:
            raise ValueError("expected limits such as 120/minute or 120/minute;2000/hour") from None
        return value

    @field_validator("LOG_LEVEL", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("PUBLIC_URL")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        return check_public_url(value) if value else None

    @field_validator("DATABASE_URL")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        return _check_database_url(value) if value else None

    def flask_config(self) -> dict[str, Any]:
        """The values as Flask config keys (the same names, without the prefix)."""
        return self.model_dump()


UNPREFIXED = frozenset({"HOST", "PORT", "WEB_CONCURRENCY"})


def _variable(field: str) -> str:
    return field if field in UNPREFIXED else f"{ENV_PREFIX}{field}"


def _problem(item: dict[str, Any]) -> str:
    field = str(item["loc"][0]) if item["loc"] else "?"
    name = field if field.startswith(ENV_PREFIX) else _variable(field)
    message = str(item["msg"]).removeprefix("Value error, ")
    value = item.get("input")
    if field in SECRET_FIELDS or isinstance(value, dict | list | tuple) or value is None:
        return f"{name}: {message}"
    return f"{name}={value!r}: {message}"


def load_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """The environment's settings, `overrides` (a test config) winning; ConfigError if invalid."""
    known = {key: value for key, value in (overrides or {}).items() if key in Settings.model_fields}
    try:
        return Settings(**known)
    except ValidationError as error:
        problems = "; ".join(_problem(item) for item in error.errors())  # type: ignore[arg-type]
        raise ConfigError(f"invalid configuration: {problems}") from None


def settings() -> Settings:
    """The settings from the environment as it is now (cheap: read where needed, not cached,
    so a changed environment, as in tests, is seen)."""
    return load_settings()


def settings_or_exit(program: str = "dunscan") -> Settings:
    """The settings, or one line on stderr and exit status 2: for entry points."""
    try:
        return settings()
    except ConfigError as error:
        _exit(program, error)


def _exit(program: str, error: ConfigError) -> NoReturn:
    print(f"{program}: {error}", file=sys.stderr)
    raise SystemExit(2)
