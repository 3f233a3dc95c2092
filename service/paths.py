"""Where dunscan finds its data. Every path can be overridden by an environment variable."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


RULES_DIR = _env_path("DUNSCAN_RULES_DIR", REPO_ROOT / "rules")
PATTERNS_DIR = RULES_DIR / "patterns"
NUMBERS_DIR = RULES_DIR / "numbers"
MODEL_DIR = _env_path("DUNSCAN_MODEL_DIR", REPO_ROOT / "model")
MODEL_PATH = _env_path("DUNSCAN_MODEL_PATH", MODEL_DIR / "artifact" / "dunscan-model.npz")
CORPUS_DIR = REPO_ROOT / "model" / "corpus"
REAL_DIR = REPO_ROOT / "model" / "real"
# Public datasets live beside the repository and are never copied into it.
DATA_DIR = _env_path("DUNSCAN_DATA_DIR", REPO_ROOT.parent / "shared" / "data")
