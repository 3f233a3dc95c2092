"""A real, throw-away PostgreSQL server for the tests: `initdb` in a temporary folder, `pg_ctl`
on a free loopback port (and a Unix socket in that folder), stopped and deleted at the end.

The binaries are Debian's (`apt-get install postgresql`: /usr/lib/postgresql/<major>/bin, not on
PATH) or whatever `pg_ctl` on PATH points at; `.ci/run` installs them when missing. PostgreSQL
refuses to run as root, and CI runs as root: there every server command runs as an unprivileged
user (`postgres`, which Debian's package creates, else `nobody`) through `runuser`, and the data
folder belongs to that user. As a normal user the commands run as they are.

fsync is off (the data is thrown away; a test need not wait on the disk), but commits are still
synchronous: the fault tests stop the server like a crash (`immediate`), and with
synchronous_commit off a commit already answered could be lost in that crash. Authentication is
`trust`, listening on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from test_notify import free_port

START_LIMIT_S = 60  # pg_ctl -t: a guard against a hung start, not a speed assertion
SUPERUSER = "dunscan"


def find_bin_dir() -> Path | None:
    """The folder with initdb, pg_ctl and postgres, or None when PostgreSQL is not installed."""
    wanted = ("initdb", "pg_ctl", "postgres")
    candidates: list[Path] = []
    if os.environ.get("DUNSCAN_PG_BIN"):
        candidates.append(Path(os.environ["DUNSCAN_PG_BIN"]))
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    # Debian keeps each major version apart; the newest one wins.
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(debian)
    for folder in candidates:
        if all((folder / name).is_file() for name in wanted):
            return folder
    return None


def _server_user() -> str | None:
    """The user the server runs as when we are root (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root and no unprivileged user (postgres, nobody) to run as")


@dataclass
class PostgresServer:
    """One initdb'd cluster; `start()` and `stop()` may be called again (a restart keeps data)."""

    bin_dir: Path
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="dunscan-pg-")))
    port: int = field(default_factory=free_port)
    user: str | None = field(default_factory=_server_user)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        # cwd: the server's user may not be allowed into ours (a clone under /root, in CI).
        return subprocess.run(command, capture_output=True, text=True, check=False, cwd=self.root)

    def _check(self, *args: str) -> None:
        result = self._run(*args)
        if result.returncode != 0:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            raise RuntimeError(
                f"{args[0]} failed ({result.returncode}): {result.stderr.strip()}\n{log[-2000:]}"
            )

    def init(self) -> None:
        if self.user is not None:
            # The folder (mkdtemp: 0700, ours) must belong to the user the server runs as.
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._check(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off"
        )
        self._check(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-o",
            options,
            "-t",
            str(START_LIMIT_S),
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """`fast`: disconnect clients and shut down cleanly; `immediate`: like a crash."""
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data_dir), "status").returncode == 0

    def url(self, database: str = "postgres") -> str:
        """The service's URL form (SQLAlchemy with psycopg 3)."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def conninfo(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={database}"

    def create_database(self, name: str) -> str:
        """A fresh, empty database; its service URL."""
        import psycopg

        with psycopg.connect(self.conninfo(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        if self.data_dir.exists() and self.running():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
