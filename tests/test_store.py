"""Hooks in the database, and the `dunscan hooks` commands a phone owner's helper runs."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from service.cli.main import main as cli_main
from service.phones.smsforwarder import hook_setup
from service.phones.store import (
    HEAD_REVISION,
    Base,
    Hook,
    HookError,
    Store,
    create_hook,
    find_hook,
    hash_token,
    list_hooks,
    migrate_in_child,
    notify_target,
    remove_hook,
)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "dunscan.sqlite3"


@pytest.fixture
def store(db_path: Path) -> Store:
    return Store(f"sqlite:///{db_path}")


@pytest.fixture
def cli_db(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DUNSCAN_DATABASE_URL", f"sqlite:///{db_path}")
    monkeypatch.setenv("DUNSCAN_PUBLIC_URL", "https://dunscan.example.org/")
    return db_path


def test_the_database_file_and_tables_are_created_on_first_use(store: Store, db_path: Path) -> None:
    assert db_path.is_file()
    tables = {
        row[0]
        for row in sqlite3.connect(db_path).execute(
            "SELECT name FROM sqlite_master WHERE type='table'"
        )
    }
    assert {"hooks", "hook_seen", "notify_outbox"} <= tables


def test_a_hook_is_found_by_its_token_which_is_not_stored(store: Store, db_path: Path) -> None:
    hook = create_hook("mum", secret="s", store=store)
    assert hook.token and len(hook.token) >= 32
    found = find_hook(hook.token, store=store)
    assert found is not None and found.name == "mum"
    assert find_hook(hook.token + "x", store=store) is None
    dump = b"".join(line.encode() for line in sqlite3.connect(db_path).iterdump())
    assert hook.token.encode() not in dump


def test_list_never_shows_token_or_secret(store: Store) -> None:
    created = create_hook("mum", secret="top-secret-value", store=store)
    listed = [hook.public() for hook in list_hooks(store=store)]
    text = json.dumps(listed, ensure_ascii=False)
    assert "top-secret-value" not in text and created.token not in text
    assert listed[0]["secret"] == "set"


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://ntfy.sh/dunscan-mum-x7", "ntfy"),
        ("https://ntfy.example.org/alerts", "ntfy"),
        ("https://api.day.app/AbCdEf123/", "bark"),
        ("bark+https://push.example.org/KEY", "bark"),
        ("ntfy+http://127.0.0.1:8080/t", "ntfy"),
        ("https://hooks.example.org/dunscan", "json"),
        ("json+https://ntfy.sh/not-really", "json"),
    ],
)
def test_the_notify_kind_is_told_from_the_url(url: str, kind: str) -> None:
    assert notify_target(url)[0] == kind


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/x",
        "ntfy.sh/topic",
        "https://ntfy.sh/",
        "https://api.day.app",
        "http:///x",
        "https://example.org/a b",
    ],
)
def test_bad_notify_urls_are_refused(url: str) -> None:
    with pytest.raises(HookError):
        notify_target(url)


def test_names_are_unique_and_secrets_trimmed(store: Store) -> None:
    create_hook("mum", store=store)
    with pytest.raises(HookError, match="already exists"):
        create_hook("mum", store=store)
    with pytest.raises(HookError, match="secret"):
        create_hook("dad", secret=" padded ", store=store)
    with pytest.raises(HookError, match="name"):
        create_hook("   ", store=store)


def test_remove_by_name_or_token(store: Store) -> None:
    by_name = create_hook("mum", store=store)
    by_token = create_hook("dad", store=store)
    assert remove_hook("mum", store=store).id == by_name.id
    assert by_token.token is not None
    assert remove_hook(by_token.token, store=store).id == by_token.id
    assert list_hooks(store=store) == []
    with pytest.raises(HookError):
        remove_hook("mum", store=store)


# --- the CLI --------------------------------------------------------------------------------


def test_cli_add_prints_the_url_and_the_app_settings(
    cli_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        cli_main(
            [
                "hooks",
                "add",
                "--name",
                "mum",
                "--secret",
                "abc123",
                "--notify",
                "https://ntfy.sh/dunscan-mum",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    url_line = next(line for line in out.splitlines() if "Webhook Server" in line)
    url = url_line.split(":", 1)[1].strip()
    assert url.startswith("https://dunscan.example.org/hooks/sf/")
    token = url.rsplit("/", 1)[1]
    assert find_hook(token, store=Store(f"sqlite:///{cli_db}")) is not None
    assert "POST" in out and "[org_content]" in out and "[sign]" in out and "abc123" in out


def test_cli_add_json_and_base_url(cli_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        cli_main(
            [
                "hooks",
                "add",
                "--name",
                "dad",
                "--random-secret",
                "--format",
                "json",
                "--base-url",
                "http://192.168.1.5:8000",
            ]
        )
        == 0
    )
    answer = json.loads(capsys.readouterr().out)
    assert answer["url"].startswith("http://192.168.1.5:8000/hooks/sf/")
    assert answer["secret"] and answer["smsforwarder"]["method"] == "POST"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["hooks", "add", "--name", "mum", "--notify", "not a url"], "notify URL"),
        (["hooks", "add", "--name", "mum", "--secret", "a", "--random-secret"], "not both"),
        (["hooks", "add"], "--name"),
        (["hooks", "remove", "nobody"], "no hook"),
        (["hooks"], "COMMAND"),
    ],
)
def test_cli_bad_arguments_exit_2_with_one_line(
    cli_db: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_cli_duplicate_name_exits_2(cli_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["hooks", "add", "--name", "mum"]) == 0
    assert cli_main(["hooks", "add", "--name", "mum"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_cli_list_and_remove(cli_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli_main(["hooks", "add", "--name", "mum", "--secret", "hush-hush-99"])
    capsys.readouterr()
    assert cli_main(["hooks", "list"]) == 0
    listed = capsys.readouterr().out
    assert "mum" in listed and "hush-hush-99" not in listed and "secret set" in listed
    assert cli_main(["hooks", "remove", "mum"]) == 0
    assert cli_main(["hooks", "list", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1]) == []


def test_the_hook_table_holds_a_hash_not_the_token(store: Store) -> None:
    hook = create_hook("mum", store=store)
    with store.session() as session:
        row = session.get(Hook, hook.id)
        assert row is not None and row.token_hash != hook.token and len(row.token_hash) == 64


def test_hook_setup_gives_the_setup_page_what_to_show(store: Store) -> None:
    hook = create_hook("mum", secret="abc", store=store)
    setup = hook_setup(hook, "https://dunscan.example.org")
    assert setup["url"] == f"https://dunscan.example.org/hooks/sf/{hook.token}"
    assert setup["secret"] == "abc" and setup["settings"]["method"] == "POST"
    assert "[org_content]" in setup["settings"]["webParams"] and setup["steps"]


# --- migrations --------------------------------------------------------------------------------


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", "service.phones:migrations")
    return str(ScriptDirectory.from_config(config).get_current_head())


def _revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def test_a_new_database_is_migrated_to_exactly_the_models(db_path: Path) -> None:
    url = f"sqlite:///{db_path}"
    Store(url).dispose()
    assert _revision(url) == _head()
    engine = create_engine(url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    # A model changed without a migration shows up here: write one (see service/migrations).
    assert differences == []


def test_head_revision_is_alembics_head() -> None:
    assert HEAD_REVISION == _head()


def _alembic_imported_after(statements: str) -> bool:
    """Whether a fresh interpreter (this one imported Alembic for the tests above) has Alembic
    loaded after running `statements` with Store and migrate_in_child imported."""
    probe = (
        "import sys; from service.phones.store import Store, migrate_in_child; "
        f"{statements}; print('alembic' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    return {"True": True, "False": False}[result.stdout.strip()]  # anything else fails


def test_a_database_at_head_starts_without_importing_alembic(db_path: Path) -> None:
    url = f"sqlite:///{db_path}"
    Store(url).dispose()
    assert not _alembic_imported_after(f"Store({url!r}).dispose()")
    assert _revision(url) == _head()


def test_a_new_database_migrated_in_a_child_leaves_alembic_out_of_the_caller(
    db_path: Path,
) -> None:
    # gunicorn's master does this before it preloads the app (service/gunicorn_conf.py).
    url = f"sqlite:///{db_path}"
    assert not _alembic_imported_after(f"migrate_in_child({url!r}); Store({url!r}).dispose()")
    assert _revision(url) == _head()


def test_a_failed_migration_in_a_child_says_one_line_and_leaves_it_to_the_app(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    url = f"sqlite:///{blocked}/dunscan.sqlite3"
    migrate_in_child(url)  # returns: the app's own Store reports the error on load
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dunscan: database migration in a child process")
    assert "Traceback" not in err[0]
    with pytest.raises(OSError):
        Store(url)


def test_an_unreachable_server_is_left_to_the_app_not_migrated_in_a_child(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+psycopg://dunscan:secret@127.0.0.1:{port}/dunscan"
    migrate_in_child(url)
    # No child ran (it would have failed and said so); the app's Store reports the server.
    assert "migration in a child process" not in capfd.readouterr().err
    with pytest.raises(OperationalError):
        Store(url)


def test_a_database_made_before_migrations_is_stamped_and_keeps_its_rows(db_path: Path) -> None:
    url = f"sqlite:///{db_path}"
    db_path.parent.mkdir(parents=True)
    legacy = create_engine(url)
    Base.metadata.create_all(legacy)  # what Store did before Alembic
    with legacy.begin() as connection:
        connection.execute(
            Hook.__table__.insert().values(
                name="legacy",
                token_hash=hash_token("old-token"),
                token_hint="old-to",
                notify_url="https://ntfy.sh/t",
                notify_kind="ntfy",
                created_at=1.0,
            )
        )
    legacy.dispose()

    store = Store(url)
    assert _revision(url) == _head()
    assert [hook.name for hook in list_hooks(store=store)] == ["legacy"]
    assert find_hook("old-token", store=store) is not None
    store.dispose()
    Store(url).dispose()  # the next start changes nothing
    assert _revision(url) == _head()
