"""What every end-to-end harness shares: a real emulator on loopback, the real sync into a real
destination, and the pipeline configured the way a user would, through environment variables."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipelines.emulator.config import DEFAULT_API_KEY
from pipelines.emulator.server import EmulatorServer
from pipelines.models import SQL_DIR
from pipelines.sync import SyncOptions, SyncSummary, make_pipeline, run_sync

REPO = Path(__file__).resolve().parents[1]


def edited_sql(root: Path, edits: Mapping[str, tuple[str, str]]) -> Path:
    """A copy of the project's ``sql/`` at ``root`` with ``{file: (old, new)}`` text replaced
    (files named relative to ``sql/``, e.g. ``marts/fct_calls.sql``)."""
    shutil.copytree(SQL_DIR, root)
    for name, (old, new) in edits.items():
        path = root / name
        text = path.read_text()
        assert old in text, (name, old)
        path.write_text(text.replace(old, new))
    return root


class PipelineHarness:
    """One emulator and one pipeline writing to its own DuckDB file (``db_path``) and dlt
    folder, with ``settings`` on top of the account's: every setting is in ``env``."""

    def __init__(
        self,
        server: EmulatorServer,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        settings: Mapping[str, str],
    ) -> None:
        self.server = server
        self.tmp_path = tmp_path
        self.db_path = tmp_path / "calls.duckdb"
        self.admin = httpx.Client(base_url=server.url + "/_emulator", timeout=30)
        self.env = {
            "SOURCES__VOIPSTUDIO__BASE_URL": server.base_url,
            "SOURCES__VOIPSTUDIO__API_KEY": DEFAULT_API_KEY,
            "SOURCES__VOIPSTUDIO__TIMEZONE": "UTC",
            "DESTINATION__DUCKDB__CREDENTIALS": str(self.db_path),
            "DLT_DATA_DIR": str(tmp_path / "dlt"),
            **settings,
        }
        self.monkeypatch = monkeypatch
        for key, value in self.env.items():
            monkeypatch.setenv(key, value)

    def setenv(self, key: str, value: str) -> None:
        """Change one setting, as a user would with an environment variable."""
        self.env[key] = value
        self.monkeypatch.setenv(key, value)

    def delenv(self, key: str) -> None:
        """Remove one setting."""
        self.env.pop(key, None)
        self.monkeypatch.delenv(key, raising=False)

    def add_account(self, name: str, server: EmulatorServer, **settings: str) -> None:
        """Configure a named account reading ``server`` (``[sources.voipstudio.accounts.<name>]``
        through environment variables); ``settings`` are its own keys (``start_date=...``).
        Named accounts replace the single account of [sources.voipstudio], whose other settings
        stay the accounts' shared defaults; credentials are never shared, so its key goes."""
        self.delenv("SOURCES__VOIPSTUDIO__API_KEY")
        self.delenv("SOURCES__VOIPSTUDIO__BASE_URL")
        prefix = f"SOURCES__VOIPSTUDIO__ACCOUNTS__{name.upper()}__"
        self.setenv(prefix + "BASE_URL", server.base_url)
        self.setenv(prefix + "API_KEY", DEFAULT_API_KEY)
        for key, value in settings.items():
            self.setenv(prefix + key.upper(), value)

    def use_accounts(self, servers: Mapping[str, EmulatorServer]) -> None:
        """Several named accounts at once: ``{name: its emulator}``."""
        for name, server in servers.items():
            self.add_account(name, server)

    def pipeline(self) -> Any:
        """The pipeline as the command line makes it (default name, folder under DLT_DATA_DIR)."""
        return make_pipeline()

    def sync(self, **options: Any) -> SyncSummary:
        """The real sync."""
        return run_sync(self.pipeline(), SyncOptions(**options))

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """``voipstudio ARGS`` as a scheduler runs it: a separate process from the project
        folder, with this harness's settings and ``env`` on top."""
        return subprocess.run(
            [sys.executable, "-m", "pipelines.cli", *args],
            cwd=REPO,
            env={**os.environ, **self.env, **env},
            capture_output=True,
            text=True,
            timeout=300,
        )
