"""Fixtures of the end-to-end sync tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sync_harness import Harness, small_config

from pipelines.emulator.server import EmulatorServer


@pytest.fixture(params=["duckdb", "postgres"])
def harness(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Harness]:
    """An emulator and a pipeline, once per destination: the same test runs on both."""
    dsn = request.getfixturevalue("postgres_dsn") if request.param == "postgres" else None
    with EmulatorServer(small_config()) as server:
        yield Harness(server, tmp_path, monkeypatch, postgres_dsn=dsn)


@pytest.fixture
def make_harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A harness with a custom emulator configuration."""
    servers: list[EmulatorServer] = []

    def make(**overrides: Any) -> Harness:
        server = EmulatorServer(small_config(**overrides)).start()
        servers.append(server)
        return Harness(server, tmp_path, monkeypatch)

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def duckdb_harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """An emulator and a pipeline on DuckDB only, for tests that are not about the destination
    (configuration, credentials, errors)."""
    with EmulatorServer(small_config()) as server:
        yield Harness(server, tmp_path, monkeypatch)
