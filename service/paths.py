"""Where dunscan finds its data. Every path can be overridden by an environment variable.

The rules, official-number lists and the shipped model are package data: the wheel carries them
as `service.data.rules` and `service.data.model` (pyproject.toml maps the top-level `rules/` and
`model/artifact/` there at build time), found with importlib.resources wherever the package is
installed. In a checkout (an editable install, or running from the source tree) those names do
not import, and the top-level folders themselves are used: they are the source of truth.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from service.settings import PathSettings

REPO_ROOT = Path(__file__).resolve().parent.parent
# True when running from a source checkout rather than an installed wheel.
IN_CHECKOUT = (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "service").is_dir()


def _shipped(name: str, checkout_dir: Path) -> Path:
    """A data folder of the installed wheel (`service/data/<name>`), else the checkout's own.

    Looked up under the regular package `service.data`: the data folders themselves have no
    `__init__.py`, and importlib.resources gives namespace packages no plain path.
    """
    folder = Path(str(resources.files("service.data"))) / name
    return folder if folder.is_dir() else checkout_dir


def _resolved(value: Path | None, default: Path) -> Path:
    return value.expanduser().resolve() if value else default


_env = PathSettings()
ARTIFACT_NAME = "dunscan-model.npz"  # with its manifest, dunscan-model.json, beside it
RULES_DIR = _resolved(_env.RULES_DIR, _shipped("rules", REPO_ROOT / "rules"))
PATTERNS_DIR = RULES_DIR / "patterns"
NUMBERS_DIR = RULES_DIR / "numbers"
MODEL_DIR = _resolved(_env.MODEL_DIR, REPO_ROOT / "model")
_SHIPPED_ARTIFACT = _shipped("model", MODEL_DIR / "artifact")
MODEL_PATH = _resolved(
    _env.MODEL_PATH,
    (MODEL_DIR / "artifact" if _env.MODEL_DIR else _SHIPPED_ARTIFACT) / ARTIFACT_NAME,
)
# phonenumbers' 归属地/carrier prefixes in zh and en: built by service/engine/numbers/phone_facts.py
# into the `service.data` package itself, so a checkout and a wheel keep it in the same place.
PHONE_PREFIXES_PATH = Path(__file__).resolve().parent / "data" / "phone_prefixes.npz"
# The literal strings each shipped rule pattern needs (service/engine/prefilter.py), read ahead.
RULE_LITERALS_PATH = Path(__file__).resolve().parent / "data" / "rule_literals.json"
CORPUS_DIR = REPO_ROOT / "model" / "corpus"
REAL_DIR = REPO_ROOT / "model" / "real"
# Public datasets live beside the repository and are never copied into it.
DATA_DIR = _resolved(_env.DATA_DIR, REPO_ROOT.parent / "shared" / "data")
# Derived files, rebuilt when missing (service/engine/sentence.py): the XDG cache by default.
CACHE_DIR = _resolved(
    _env.CACHE_DIR,
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dunscan",
)
# Hooks and the push outbox (DUNSCAN_DATABASE_URL overrides): instance/ in a checkout, as it
# always was; an installed package has no checkout, so the user's data folder instead, the same
# from any working directory (`dunscan hooks add` and `dunscan serve` must find one database).
if IN_CHECKOUT:
    DEFAULT_DATABASE_PATH = REPO_ROOT / "instance" / "dunscan.sqlite3"
else:
    from platformdirs import user_data_path

    DEFAULT_DATABASE_PATH = user_data_path("dunscan", appauthor=False) / "dunscan.sqlite3"
