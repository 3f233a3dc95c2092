"""The whole OpenAPI document, exercised against the app by schemathesis: every operation, every
media type, valid and invalid input generated from the schema, and every response checked
against it (status documented, body matching its schema, no 5xx, invalid input refused, valid
input accepted).

Seeded (derandomized) so CI sees the same cases every run, and bounded: a fixed number of
examples per operation, no deadline per example (the machine is shared). The number of cases
run is asserted, so a change that quietly stops generating cases fails here.
"""

from __future__ import annotations

import functools
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings

from service.app import create_app
from service.engine.pipeline import Analyzer

EXAMPLES_PER_OPERATION = 400
MIN_CASES = 1000
CASES: Counter[str] = Counter()


def _app() -> Flask:
    # Built at import: schemathesis reads the document when the module is collected (its
    # fixture-based loader does not work with this pytest). Rules, lists and model load once.
    database = Path(tempfile.mkdtemp(prefix="dunscan-st-")) / "st.sqlite3"
    config = {
        "TESTING": True,
        "DATABASE_URL": f"sqlite:///{database}",
        "RATELIMIT_ENABLED": False,
        "NOTIFY_WORKER": 0,
    }
    return create_app(config, analyzer=_analyzer())


@functools.cache
def _analyzer() -> Analyzer:
    return Analyzer.load()


schema = schemathesis.openapi.from_wsgi("/openapi.json", _app())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_matches_its_openapi_document(case: Any) -> None:
    CASES[case.operation.label] += 1
    case.call_and_validate()


def test_enough_cases_ran() -> None:
    # Runs after the parametrized test in file order; on its own (-k) there is nothing to count.
    if not CASES:
        pytest.skip("the schemathesis run was not part of this session")
    print(f"schemathesis: {sum(CASES.values())} cases over {len(CASES)} operations", dict(CASES))
    assert sum(CASES.values()) >= MIN_CASES, dict(CASES)
