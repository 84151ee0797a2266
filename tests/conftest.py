"""Shared fixtures: VoIPstudio emulators serving over real HTTP on 127.0.0.1.

Every emulator made here is small (a few thousand CDRs over a fixed fortnight) and has a fixed
clock start, so data and "now" are the same on every run.

- ``emulator``: one server for the whole session. Tests must NOT change its state (no admin
  writes, no faults, no token revocation or expiry); start a private one with
  ``emulator_factory`` instead.
- ``api``: an httpx client on ``emulator``'s API base URL, authenticated with the default key.
- ``emulator_factory``: ``emulator_factory(rows=2000, login_ttl=1)`` starts a private server
  (``make_emulator_config`` defaults plus overrides), stopped when the test ends.
- ``client_for``: ``client_for(server, token=None)`` an API client for any server.
- ``make_emulator_config``: the configuration builder behind all of them, for module-scoped
  servers a test module starts itself.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from postgres_server import DSN_VARIABLE, PostgresServer, find_binaries

from pipelines.emulator.config import EmulatorConfig
from pipelines.emulator.server import EmulatorServer

# The emulator's fixed data window and clock: `now` is the end of the data, so the generated
# history ends where live arrivals begin.
DATA_START = "2026-01-01"
DATA_END = "2026-01-15"
FIXED_NOW = "2026-01-15 00:00:00"
SMALL_ROWS = 5000
# httpx builds an SSL context (loading the CA store, ~20 ms) for every client unless given one;
# the emulator speaks plain HTTP, but clients are made per test.
_SSL_CONTEXT = ssl.create_default_context()


def _small_config(**overrides: Any) -> EmulatorConfig:
    settings: dict[str, Any] = {
        "rows": SMALL_ROWS,
        "start": DATA_START,
        "end": DATA_END,
        "now": FIXED_NOW,
    }
    settings.update(overrides)
    return EmulatorConfig(**settings)


def _client(server: EmulatorServer, token: str | None = None) -> httpx.Client:
    key = token if token is not None else server.emulator.config.api_key
    return httpx.Client(
        base_url=server.base_url,
        headers={"X-Auth-Token": key},
        timeout=30,
        verify=_SSL_CONTEXT,
    )


@pytest.fixture(scope="session")
def make_emulator_config() -> Callable[..., EmulatorConfig]:
    """``make_emulator_config(**overrides)``: a small, fixed-data ``EmulatorConfig``."""
    return _small_config


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorServer]:
    """A read-only emulator shared by the whole session (see the module docstring)."""
    with EmulatorServer(_small_config()) as server:
        yield server


@pytest.fixture
def api(emulator: EmulatorServer) -> Iterator[httpx.Client]:
    """An authenticated client on the shared emulator."""
    with _client(emulator) as client:
        yield client


@pytest.fixture
def emulator_factory() -> Iterator[Callable[..., EmulatorServer]]:
    """Start private emulators; all are stopped when the test ends."""
    servers: list[EmulatorServer] = []

    def start(**overrides: Any) -> EmulatorServer:
        server = EmulatorServer(_small_config(**overrides)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def client_for() -> Iterator[Callable[..., httpx.Client]]:
    """``client_for(server, token=None)``: an API client sending ``X-Auth-Token`` (the server's
    default key unless ``token`` is given); all are closed when the test ends."""
    clients: list[httpx.Client] = []

    def make(server: EmulatorServer, token: str | None = None) -> httpx.Client:
        client = _client(server, token)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A DSN of a PostgreSQL server for the tests that run on PostgreSQL too.

    A private throwaway cluster, or the server ``VOIPSTUDIO_TEST_POSTGRES_DSN`` names. Without
    PostgreSQL installed the tests are skipped, except in CI, where that is a failure.
    """
    configured = os.environ.get(DSN_VARIABLE)
    if configured:
        yield configured
        return
    binaries = find_binaries()
    if binaries is None:
        message = "PostgreSQL is not installed (apt-get install postgresql; .ci/run does it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    server = PostgresServer(binaries).start()
    try:
        yield server.dsn
    finally:
        server.stop()
