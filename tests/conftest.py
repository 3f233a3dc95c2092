"""Shared fixtures. Loading rules, lists and the model once per session keeps the suite fast."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

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
