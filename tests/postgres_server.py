"""A throwaway PostgreSQL server for the tests: a fresh cluster in a temporary folder, listening
on a free loopback port, removed at the end of the session.

It uses the server binaries of the machine (Debian's ``postgresql`` package, which ``.ci/run``
installs). ``VOIPSTUDIO_TEST_POSTGRES_DSN`` points the tests at an existing server instead.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

DSN_VARIABLE = "VOIPSTUDIO_TEST_POSTGRES_DSN"


def find_binaries() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: the newest Debian version, else the PATH."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """A private cluster; ``dsn`` connects as the superuser ``postgres`` (trust auth: dlt insists
    on a password, any is accepted)."""

    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.folder = Path(tempfile.mkdtemp(prefix="voipstudio-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.dsn = f"postgresql://postgres:postgres@127.0.0.1:{self.port}/postgres"
        # initdb refuses to run as root: run the server as the package's `postgres` user.
        self._user = "postgres" if os.geteuid() == 0 else None

    def _run(self, *args: str) -> None:
        command = [str(self.binaries / args[0]), *args[1:]]
        # Output goes to files, never to pipes: the server pg_ctl starts would inherit a pipe
        # and keep it open, and waiting for its end would never return.
        with (self.folder / "commands.log").open("ab") as log:
            subprocess.run(
                command, check=True, stdout=log, stderr=log, timeout=120, user=self._user
            )

    def start(self) -> PostgresServer:
        """Create the cluster and start it; returns once it accepts connections."""
        if self._user is not None:
            account = pwd.getpwnam(self._user)
            os.chown(self.folder, account.pw_uid, account.pw_gid)
            (self.folder / "commands.log").touch()
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = str(self.folder / "server.log")
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "-t", "60", "start"
        )
        return self

    def stop(self) -> None:
        """Stop the server and remove its files."""
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
