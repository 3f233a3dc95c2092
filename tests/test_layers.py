"""The layers of the package hold: the import-linter contracts of pyproject.toml, and what they
stand for at run time.

service/engine (record -> verdict) imports nothing from the HTTP surface, the phone intake or the
command line; service/http never imports service/phones; no two sibling modules or packages of
service/ or model/ import each other, not even inside a function.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(root: Path) -> tuple[int, str]:
    """`lint-imports` over the sources under `root`, in its own process: run inside the test
    process it left something behind that stalled a later test's push delivery
    (test_notify.py::test_a_refusing_target_is_abandoned_not_hammered; not traced further)."""
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


def test_import_contracts_hold() -> None:
    exit_code, report = _lint_imports(REPO)
    assert exit_code == 0, report
    assert "3 kept, 0 broken" in report


def _copy_sources(destination: Path) -> None:
    for package in ("service", "model"):
        shutil.copytree(
            REPO / package,
            destination / package,
            # the code only: no data files, no bytecode
            ignore=lambda folder, names: [
                name
                for name in names
                if name == "__pycache__"
                or (not name.endswith(".py") and not (Path(folder) / name).is_dir())
            ],
        )
    shutil.copy(REPO / "pyproject.toml", destination / "pyproject.toml")


def _append(path: Path, line: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


def test_contracts_catch_the_imports_they_forbid(tmp_path: Path) -> None:
    """The contracts are not vacuous: the same configuration over a copy of the sources with three
    forbidden imports added (the engine reaching into the HTTP surface, the HTTP surface into the
    phone intake, and the trainer's circle back) reports each of them."""
    _copy_sources(tmp_path)
    _append(tmp_path / "service/engine/summary.py", "from service.http import errors  # noqa")
    _append(tmp_path / "service/http/metrics.py", "from service.phones import store  # noqa")
    # function-local, the way the old train <-> evaluate circle hid
    _append(tmp_path / "model/fit.py", "def _card():\n    from model import train  # noqa")
    exit_code, report = _lint_imports(tmp_path)
    assert exit_code == 1, report
    assert "0 kept, 3 broken" in report, report
    assert "service.engine.summary -> service.http.errors" in report
    assert "service.http.metrics -> service.phones.store" in report
    assert "No cycles are allowed in model." in report


def test_the_engine_loads_and_judges_without_web_database_or_push_code() -> None:
    """What the engine contract is for: `dunscan check` and a Spark executor load the engine and
    nothing of Flask, SQLAlchemy, apprise or the service's own HTTP and phone code."""
    program = (
        "import sys\n"
        "from service.engine.pipeline import Analyzer\n"
        "from service.engine.schemas import parse_record\n"
        "verdict = Analyzer.load().check(parse_record({'sender': '95188', 'text': "
        "'【支付宝】您的花呗已逾期，请缴纳解冻费后联系专员'}))\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'flask', 'werkzeug', 'sqlalchemy', 'alembic', 'apprise', 'gunicorn'} "
        "or m.startswith(('service.http', 'service.phones', 'service.cli')))\n"
        "print(verdict.category, loaded)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DUNSCAN_DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.strip() == "scam []", result.stdout + result.stderr
