"""Fixtures of the end-to-end sync tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sync_harness import Harness, small_config

from pipelines.emulator.server import EmulatorServer


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    with EmulatorServer(small_config()) as server:
        yield Harness(server, tmp_path, monkeypatch)


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
