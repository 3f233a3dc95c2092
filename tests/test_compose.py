"""docker-compose.yml wires the parts the way the tests run them.

No Docker engine (and no compose plugin) runs where the tests run, so compose itself cannot be
started here. tests/test_proxy.py runs the same three parts on loopback (the nginx template,
gunicorn with the shipped config, a real PostgreSQL); this checks that the compose file gives
them the settings those tests use, so the two cannot drift apart unseen. Where `docker compose`
is installed it also validates the file (it needs no engine for `config`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from service.settings import Settings

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def _substitute(value: str, variables: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?message} with the given variables."""

    def one(match: re.Match[str]) -> str:
        name, _, rest = match.group(1).partition(":")
        if name in variables:
            return variables[name]
        return rest[1:] if rest.startswith("-") else ""

    return re.sub(r"\$\{([^}]+)\}", one, value)


def test_the_app_reaches_the_db_service_with_the_tested_driver(compose: dict[str, Any]) -> None:
    db = compose["services"]["db"]
    app = compose["services"]["app"]
    variables = {"POSTGRES_PASSWORD": "pw", "DUNSCAN_PUBLIC_URL": "https://dunscan.example.org"}
    url = make_url(_substitute(app["environment"]["DUNSCAN_DATABASE_URL"], variables))
    # The driver tests/test_postgres.py runs the store on (psycopg 3 through SQLAlchemy).
    assert url.drivername == "postgresql+psycopg"
    assert url.host == "db"
    assert url.username == db["environment"]["POSTGRES_USER"]
    assert url.database == db["environment"]["POSTGRES_DB"]
    assert url.password == "pw"
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    # The image gets the driver; pip installs it under constraints.txt, i.e. the tested version.
    extra = app["build"]["args"]["EXTRA_PACKAGES"]
    assert extra.startswith("psycopg[binary]")
    pinned = (REPO / "constraints.txt").read_text().splitlines()
    assert any(line.startswith("psycopg-binary==") for line in pinned)


def test_the_app_settings_are_valid_and_behind_one_proxy(compose: dict[str, Any]) -> None:
    environment = compose["services"]["app"]["environment"]
    variables = {"POSTGRES_PASSWORD": "pw", "DUNSCAN_PUBLIC_URL": "https://dunscan.example.org"}
    values = {
        name.removeprefix("DUNSCAN_"): _substitute(str(value), variables)
        for name, value in environment.items()
        if name.startswith("DUNSCAN_")
    }
    unknown = set(values) - set(Settings.model_fields)
    assert not unknown, f"not a dunscan setting: {unknown}"
    settings = Settings(**{name: value for name, value in values.items() if value != ""})
    # Limits count per client behind nginx: tests/test_proxy.py starts gunicorn the same way.
    assert int(settings.PROXY_FIX_X_FOR) == 1
    assert settings.PUBLIC_URL


def test_nginx_gets_the_shipped_template_pointed_at_the_app(compose: dict[str, Any]) -> None:
    proxy = compose["services"]["proxy"]
    app = compose["services"]["app"]
    mounts = [volume.split(":") for volume in proxy["volumes"]]
    (source, target, *_mode) = next(m for m in mounts if m[1].endswith(".template"))
    assert (REPO / source).resolve() == REPO / "deploy" / "nginx" / "dunscan.conf.template"
    assert target.startswith("/etc/nginx/templates/")
    host, _, port = proxy["environment"]["DUNSCAN_UPSTREAM"].partition(":")
    assert host == "app" and port in {str(p) for p in app["expose"]}
    # Every ${VARIABLE} of the template is given (the image's envsubst leaves others alone).
    template = (REPO / source).read_text()
    wanted = set(re.findall(r"\$\{(DUNSCAN_[A-Z_]+)\}", template))
    assert wanted and wanted <= set(proxy["environment"])


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="the docker compose plugin is not installed",
)
def test_docker_compose_accepts_the_file() -> None:
    environment = {
        **os.environ,
        "POSTGRES_PASSWORD": "pw",
        "DUNSCAN_PUBLIC_URL": "https://dunscan.example.org",
    }
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
