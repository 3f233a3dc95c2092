"""Shared fixtures. Loading rules, lists and the model once per session keeps the suite fast."""

from __future__ import annotations

import pytest

from service.pipeline import Analyzer


@pytest.fixture(scope="session")
def analyzer() -> Analyzer:
    """The real analyzer with the shipped rules, lists and model."""
    return Analyzer.load()


@pytest.fixture(scope="session")
def rules_only_analyzer() -> Analyzer:
    """The analyzer without the model: what numbers and rules alone conclude."""
    return Analyzer.load(use_model=False)
