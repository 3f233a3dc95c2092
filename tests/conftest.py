"""Shared fixtures. Loading rules, lists and the model once per session keeps the suite fast."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pg_server import PostgresServer, find_bin_dir

from service import create_app
from service.engine.pipeline import Analyzer


@pytest.fixture(scope="session")
def analyzer() -> Analyzer:
    """The real analyzer with the shipped rules, lists and model."""
    return Analyzer.load()


@pytest.fixture(scope="session")
def rules_only_analyzer() -> Analyzer:
    """The analyzer without the model: what numbers and rules alone conclude."""
    return Analyzer.load(use_model=False)


@pytest.fixture(scope="session")
def quoted_dataset(rules_only_analyzer: Analyzer) -> Any:
    """real_quoted alone (~400 real rows from many publishers) as a training Dataset: small
    enough for the n-gram candidates to fit in seconds."""
    from model import data
    from model.fit import Dataset
    from service.engine.model import model_input

    examples, stats = data.deduplicate(data.load_real_quoted())
    if len(examples) < 100:
        pytest.skip("real_quoted not available")
    analyses = [rules_only_analyzer.analyze(e.record) for e in examples]
    inputs = [model_input(analysis) for analysis in analyses]
    texts = [analysis.norm.text if analysis.norm is not None else "" for analysis in analyses]
    return Dataset(examples, inputs, stats, texts)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A throw-away SQLite file for the store, so tests never touch the developer's database."""
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'dunscan.sqlite3'}"


@pytest.fixture
def make_app(analyzer: Analyzer, database_url: str) -> Callable[..., Flask]:
    """Build an app on the shared analyzer, with extra config for one test (MAX_BATCH=2, ...)."""

    def build(**config: Any) -> Flask:
        base = {"TESTING": True, "DATABASE_URL": database_url}
        return create_app({**base, **config}, analyzer=analyzer)

    return build


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def start_postgres() -> PostgresServer:
    """A new throw-away PostgreSQL server, started; skips the test when none is installed."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        reason = "PostgreSQL is not installed (apt-get install postgresql; .ci/run does)"
        if os.environ.get("CI", "").lower() in ("1", "true"):  # CI installs it: never a skip
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    server = PostgresServer(bin_dir)
    try:
        server.init()
        server.start()
    except BaseException:
        server.destroy()
        raise
    return server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session (tests that stop it start their own)."""
    server = start_postgres()
    yield server
    server.destroy()


_database_numbers = itertools.count(1)


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """A new empty database on the session's server: its postgresql+psycopg:// URL."""
    return postgres.create_database(f"dunscan_test_{next(_database_numbers)}")
