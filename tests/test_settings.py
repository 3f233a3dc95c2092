"""One configuration: every setting typed and checked at start, one line per bad value."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from service.cli.main import main as cli_main
from service.phones.store import list_hooks
from service.settings import ConfigError, Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")


def _variable(field: str) -> str:
    return field if field in ("HOST", "PORT", "WEB_CONCURRENCY") else f"DUNSCAN_{field}"


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_the_readme_table_lists_every_setting(field: str) -> None:
    assert re.search(rf"^\| `{_variable(field)}`", README, re.MULTILINE), (
        f"{_variable(field)} is missing from the README's Configuration table"
    )


@pytest.mark.parametrize(
    ("variable", "value", "accepts"),
    [
        ("DUNSCAN_NOTIFY_POLL_S", "abc", "valid number"),
        ("DUNSCAN_MAX_BATCH", "abc", "valid integer"),
        ("DUNSCAN_MAX_BATCH", "0", "greater than 0"),
        ("DUNSCAN_PUBLIC_URL", "notaurl", "http:// or https:// URL"),
        ("DUNSCAN_NOTIFY_WORKER", "sometimes", "valid boolean"),
        ("DUNSCAN_LOG_LEVEL", "CHATTY", "'INFO'"),
        ("DUNSCAN_RATELIMIT", "lots", "120/minute"),
        ("PORT", "http", "valid integer"),
        ("WEB_CONCURRENCY", "four", "valid integer"),
    ],
)
def test_a_bad_value_stops_the_cli_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    accepts: str,
) -> None:
    monkeypatch.setenv(variable, value)
    assert cli_main(["check", "--no-model", "【支付宝】您的花呗本期账单已出"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert f"{variable}={value!r}" in lines[0]
    assert accepts in lines[0]


def test_the_default_rate_limit_parses() -> None:
    # The settings skip parsing their default (importing `limits` would slow every CLI start).
    import limits

    default = Settings.model_fields["RATELIMIT"].default
    assert [str(item) for item in limits.parse_many(default)] == ["120 per 1 minute"]


def test_a_bad_database_url_is_named_but_not_echoed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DUNSCAN_DATABASE_URL", "hunter2-not-a-url")
    assert cli_main(["hooks", "list"]) == 2
    err = capsys.readouterr().err
    assert "DUNSCAN_DATABASE_URL" in err and "sqlite:///" in err
    assert "hunter2" not in err


def test_a_bad_notify_setting_stops_the_app_before_any_webhook(
    monkeypatch: pytest.MonkeyPatch, make_app: Callable[..., Flask]
) -> None:
    # Before: the app started, and every webhook answered 500 when it read the value.
    monkeypatch.setenv("DUNSCAN_NOTIFY_POLL_S", "abc")
    with pytest.raises(ConfigError, match="DUNSCAN_NOTIFY_POLL_S='abc'"):
        make_app()


def test_the_environment_and_the_test_config_meet_in_one_object(
    monkeypatch: pytest.MonkeyPatch, make_app: Callable[..., Flask]
) -> None:
    monkeypatch.setenv("DUNSCAN_NOTIFY_POLL_S", "0.5")
    monkeypatch.setenv("DUNSCAN_API_KEYS", "alpha, beta")
    monkeypatch.setenv("PORT", "8123")
    app = make_app(MAX_BATCH="7")
    assert app.config["NOTIFY_POLL_S"] == 0.5
    assert app.config["API_KEYS"] == ("alpha", "beta")
    assert app.config["MAX_BATCH"] == 7
    assert load_settings().PORT == 8123


def test_a_bad_base_url_creates_no_hook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DUNSCAN_DATABASE_URL", f"sqlite:///{tmp_path / 'hooks.sqlite3'}")
    assert cli_main(["hooks", "add", "--name", "mum", "--base-url", "notaurl"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--base-url 'notaurl'" in err
    assert list_hooks() == []


def test_gunicorn_stops_with_one_line_on_a_bad_value(tmp_path: Path) -> None:
    environment = {**os.environ, "DUNSCAN_MAX_BATCH": "abc"}
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    result = subprocess.run(
        [
            *(sys.executable, "-m", "gunicorn", "--config", "python:service.gunicorn_conf"),
            *("--bind", "127.0.0.1:0", "service:create_app()"),
        ],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "gunicorn: invalid configuration: DUNSCAN_MAX_BATCH='abc': "
        "Input should be a valid integer, unable to parse string as an integer"
    ]


def test_serve_refuses_a_port_in_use_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli_main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"cannot listen on 127.0.0.1:{port}" in err


@pytest.mark.parametrize("argv", [["serve", "--port", "0"], ["serve", "--workers", "many"]])
def test_serve_refuses_bad_numbers(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert cli_main(argv) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
