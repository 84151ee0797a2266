"""Credentials never appear in log lines, errors or dlt's trace."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path
from typing import Any

import dlt
import duckdb
import httpx
import pytest
from dlt.common.versioned_state import decompress_state
from sync_harness import Harness, small_config

from pipelines.console import describe
from pipelines.emulator.server import EmulatorServer
from pipelines.voipstudio import redaction
from pipelines.voipstudio.client import Credentials, VoipstudioClient
from pipelines.voipstudio.errors import ApiRequestError

SECRET_KEY = "sk-live-0d1e2a3d4b5e6e7f"
SECRET_PASSWORD = "pa55-very-secret-word"


def test_no_secret_in_logs_errors_or_trace(
    make_harness: Any, caplog: pytest.LogCaptureFixture
) -> None:
    harness: Harness = make_harness(api_key=SECRET_KEY, password=SECRET_PASSWORD)
    harness.setenv("SOURCES__VOIPSTUDIO__API_KEY", SECRET_KEY)
    harness.configure(faults=[{"kind": "503", "rate": 0.2}, {"kind": "drop", "rate": 0.1}])
    caplog.set_level(logging.DEBUG)
    harness.sync()
    pipeline = harness.pipeline()
    texts = [caplog.text, str(pipeline.last_trace)]

    # A failing login (wrong password) and a revoked key: their errors must not echo secrets.
    harness.delenv("SOURCES__VOIPSTUDIO__API_KEY")
    harness.setenv("SOURCES__VOIPSTUDIO__EMAIL", "demo@example.com")
    harness.setenv("SOURCES__VOIPSTUDIO__PASSWORD", SECRET_PASSWORD + "-typo")
    with pytest.raises(Exception) as wrong_password:
        harness.sync()
    harness.admin.post("/tokens/revoke", json={"token": SECRET_KEY})
    harness.delenv("SOURCES__VOIPSTUDIO__EMAIL")
    harness.setenv("SOURCES__VOIPSTUDIO__API_KEY", SECRET_KEY)
    with pytest.raises(Exception) as revoked:
        harness.sync()
    texts += [caplog.text, repr(wrong_password.value), str(wrong_password.value)]
    texts += [repr(revoked.value), str(revoked.value), str(harness.pipeline().last_trace)]
    assert "Login failed" in str(wrong_password.value)
    assert "refused the API key" in str(revoked.value)
    for text in texts:
        assert SECRET_KEY not in text
        assert SECRET_PASSWORD not in text


# -- keys as users paste them, and an API that echoes secrets --------------------------------


def test_a_key_pasted_with_a_trailing_newline_works(make_harness: Any) -> None:
    harness: Harness = make_harness(api_key=SECRET_KEY)
    harness.setenv("SOURCES__VOIPSTUDIO__API_KEY", f"  {SECRET_KEY}\n")
    harness.sync()
    assert len(harness.loaded()) == len(harness.emulator_cdrs())


@pytest.mark.parametrize(
    ("variable", "named"),
    [
        ("SOURCES__VOIPSTUDIO__API_KEY", "api_key (SOURCES__VOIPSTUDIO__API_KEY)"),
        (
            "SOURCES__VOIPSTUDIO__ACCOUNTS__ACME__API_KEY",
            "sources.voipstudio.accounts.acme.api_key "
            "(SOURCES__VOIPSTUDIO__ACCOUNTS__ACME__API_KEY)",
        ),
    ],
)
def test_a_key_a_header_cannot_carry_is_a_configuration_error_that_never_shows_it(
    duckdb_harness: Harness, variable: str, named: str
) -> None:
    harness = duckdb_harness
    broken = SECRET_KEY[:8] + "\n" + SECRET_KEY[8:]
    result = harness.cli("-v", "sync", **{variable: broken})
    assert result.returncode == 2, result.stderr
    error = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(error) == 1 and named in error[0] and "line break" in error[0]
    for part in (SECRET_KEY, SECRET_KEY[:8], SECRET_KEY[8:]):
        assert part not in result.stdout + result.stderr
    assert harness.state()["requests"] == {}


def _texts_under(folder: Path) -> list[tuple[str, bytes]]:
    """Every file under ``folder`` (gzip files unpacked), with its path."""
    files = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            files.append((str(path), data))
    return files


def test_an_api_that_echoes_secrets_leaks_none_of_them(make_harness: Any) -> None:
    """Four accounts: one healthy; one whose API echoes its key, in 503 headers and in a 400's
    message; one logging in whose API echoes the login token; one whose login echoes the
    password. Every secret is looked for in stdout, stderr (debug logging on: httpcore's lines
    show response headers), every file of dlt's folder (trace.pickle, state.json, load
    packages) and the pipeline state in the destination."""
    harness: Harness = make_harness()
    keyed = EmulatorServer(small_config(rows=300, api_key=SECRET_KEY)).start()
    login = EmulatorServer(small_config(rows=300, password=SECRET_PASSWORD)).start()
    echoed_password = EmulatorServer(small_config(rows=300, password=SECRET_PASSWORD)).start()
    try:
        harness.add_account("good", harness.server)
        harness.add_account("keyed", keyed)
        harness.setenv("SOURCES__VOIPSTUDIO__ACCOUNTS__KEYED__API_KEY", SECRET_KEY)
        for name, server in (("login", login), ("password", echoed_password)):
            harness.add_account(name, server)
            prefix = f"SOURCES__VOIPSTUDIO__ACCOUNTS__{name.upper()}__"
            harness.delenv(prefix + "API_KEY")
            harness.setenv(prefix + "EMAIL", "demo@example.com")
            harness.setenv(prefix + "PASSWORD", SECRET_PASSWORD)
        rules = {
            keyed: [
                {"kind": "echo", "path": "/cdrs", "nth": [1, 2], "status": 503},
                {"kind": "echo", "path": "/users", "nth": [1], "status": 400},
            ],
            login: [{"kind": "echo", "path": "/cdrs", "nth": [1], "status": 400}],
            echoed_password: [{"kind": "echo", "path": "/login", "nth": [1], "status": 400}],
        }
        for server, faults in rules.items():
            response = httpx.patch(f"{server.url}/_emulator/config", json={"faults": faults})
            assert response.status_code == 200, response.text

        result = harness.cli("-v", "sync", SOURCES__VOIPSTUDIO__BACKOFF_BASE="0.01")

        assert result.returncode == 4, result.stderr
        # The echoes happened, and what they said is shown with the secrets masked.
        for server, faults in rules.items():
            state = httpx.get(f"{server.url}/_emulator/state").json()
            assert [rule["fired"] for rule in state["faults"]] == [
                len(rule["nth"]) for rule in faults
            ]
        assert "account 'keyed' failed" in result.stderr
        assert "Invalid request for token *** on /users" in result.stderr
        assert "Invalid request for token *** on /cdrs" in result.stderr  # the login token
        assert '"password":"***"' in result.stderr
        # The emulator's login tokens are the ones it issued to the sync.
        login_tokens = [str(token) for token in login.emulator.tokens._tokens if len(token) > 20]
        assert login_tokens
        secrets = [SECRET_KEY, SECRET_PASSWORD, *login_tokens]

        pipeline = harness.pipeline()
        with duckdb.connect(str(harness.db_path), read_only=True) as db:
            states = db.sql("select state from voipstudio._dlt_pipeline_state").fetchall()
        texts: list[tuple[str, bytes]] = [
            ("stdout", result.stdout.encode()),
            ("stderr", result.stderr.encode()),
            ("pipeline.state", json.dumps(pipeline.state, default=str).encode()),
            ("last_trace", str(pipeline.last_trace).encode()),
            ("duckdb file", harness.db_path.read_bytes()),
            *[
                ("destination state", json.dumps(decompress_state(s), default=str).encode())
                for (s,) in states
            ],
            *_texts_under(Path(harness.env["DLT_DATA_DIR"])),
        ]
        assert any(name.endswith("trace.pickle") for name, _ in texts)
        assert "Invalid request for token ***" in json.dumps(pipeline.state, default=str)
        for secret in secrets:
            for name, data in texts:
                assert secret.encode() not in data, f"a secret in {name}"
    finally:
        for server in (keyed, login, echoed_password):
            server.stop()


def test_a_key_that_reaches_the_wire_unchecked_is_not_retried_nor_shown(
    duckdb_harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Past configuration (a program building the client itself): the HTTP library refuses the
    header and quotes it; the error is final, and its text redacted."""
    harness = duckdb_harness
    caplog.set_level(logging.DEBUG)
    with (
        VoipstudioClient(harness.server.base_url, Credentials(api_key=SECRET_KEY + "\n")) as client,
        pytest.raises(ApiRequestError) as raised,
    ):
        client.get_page("/cdrs", page=1, limit=1)
    assert "could not be sent" in str(raised.value) and "***" in str(raised.value)
    assert SECRET_KEY not in str(raised.value) + caplog.text
    assert harness.state()["requests"] == {}


def test_dlt_trace_of_any_error_is_redacted(tmp_path: Path) -> None:
    """Not only the project's own errors: an error of any kind that carries a registered
    secret is redacted in the trace dlt keeps and pickles."""
    secret = "tok-" + "5f1e9c0d7a3b2e4f6a8c"
    redaction.register(secret)

    @dlt.resource(name="leaky")
    def leaky() -> Any:
        yield {"id": 1}
        raise RuntimeError(f"the server said: token {secret} is invalid")

    pipeline = dlt.pipeline(
        "redaction_check",
        destination=dlt.destinations.duckdb(str(tmp_path / "check.duckdb")),
        pipelines_dir=str(tmp_path / "dlt"),
    )
    with pytest.raises(Exception, match="token") as raised:
        pipeline.run(leaky())
    # What the command line prints of it is redacted too.
    assert "token *** is invalid" in describe(raised.value)[0]
    pickled = Path(pipeline.working_dir, "trace.pickle").read_bytes()
    assert b"token *** is invalid" in pickled
    assert secret.encode() not in pickled
    assert secret not in str(pipeline.last_trace)
