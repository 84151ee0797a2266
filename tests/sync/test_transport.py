"""A hostile transport, end to end (real HTTP to the emulator, real DuckDB): an answer trickled
one byte at a time, a server that never answers, one that keeps failing, throttles answered
with 400, redirects, odd headers and final 4xx answers."""

from __future__ import annotations

import logging

import pytest
from sync_harness import Harness, assert_cdrs_equal, small_config

from pipelines.console import describe, root_cause
from pipelines.emulator.server import EmulatorServer
from pipelines.voipstudio.errors import ApiRequestError, ApiUnavailableError


def failure(harness: Harness) -> tuple[str, int, BaseException]:
    """The sync's one-line error and exit code, and the error itself."""
    with pytest.raises(Exception) as raised:
        harness.sync()
    message, code = describe(raised.value)
    return message, code, root_cause(raised.value)


def fired(harness: Harness) -> list[int]:
    return [rule["fired"] for rule in harness.state()["faults"]]


# -- never hang ------------------------------------------------------------------------------


def test_an_answer_trickled_byte_by_byte_is_cut_at_the_deadline_and_read_again(
    duckdb_harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness = duckdb_harness
    expected = harness.emulator_cdrs()
    harness.setenv("SOURCES__VOIPSTUDIO__REQUEST_TIMEOUT", "1")
    # A byte every 50 ms: no single read ever waits a second, so only a deadline for the whole
    # answer stops it (a 100-row page would take half an hour).
    harness.configure(faults=[{"kind": "trickle", "path": "/cdrs", "nth": [2, 5], "seconds": 0.05}])
    caplog.set_level(logging.WARNING)
    harness.sync()
    assert_cdrs_equal(harness, expected)
    assert fired(harness) == [2]
    assert caplog.text.count("no complete answer within 1s") == 2


def test_a_server_that_never_answers_fails_the_sync_within_the_request_budget(
    duckdb_harness: Harness,
) -> None:
    harness = duckdb_harness
    harness.configure(faults=[{"kind": "hang", "every": 1, "seconds": 120}])
    result = harness.cli(
        "sync",
        SOURCES__VOIPSTUDIO__REQUEST_TIMEOUT="0.5",
        SOURCES__VOIPSTUDIO__REQUEST_BUDGET="2",
        SOURCES__VOIPSTUDIO__MAX_ATTEMPTS="50",
    )
    assert result.returncode == 4, result.stderr
    error = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(error) == 1
    assert (
        "of the 2s one request may take (request_budget)" in error[0]
        and "no complete answer within" in error[0]
    )
    # It let go of its lock: the next run, the API back, loads everything.
    harness.configure(faults=[])
    assert harness.cli("sync").returncode == 0
    assert_cdrs_equal(harness, harness.emulator_cdrs())


def test_an_api_that_keeps_failing_stops_the_sync_at_the_failure_budget(
    duckdb_harness: Harness,
) -> None:
    harness = duckdb_harness
    harness.setenv("SOURCES__VOIPSTUDIO__MAX_ATTEMPTS", "100")
    harness.setenv("SOURCES__VOIPSTUDIO__FAILURE_BUDGET", "0.3")
    harness.configure(faults=[{"kind": "500", "path": "/cdrs", "every": 1}])
    message, code, error = failure(harness)
    assert code == 4 and isinstance(error, ApiUnavailableError)
    assert "failure_budget = 0.3s" in message and "HTTP 500" in message
    # Far fewer than the 100 attempts one request was allowed.
    assert harness.state()["requests"]["/cdrs"] < 100
    assert harness.loaded() == []


# -- be liberal: throttles, redirects, odd headers ------------------------------------------


def test_a_throttle_answered_with_400_is_retried_and_is_no_failure(
    duckdb_harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness = duckdb_harness
    expected = harness.emulator_cdrs()
    # Any failure would end this sync at once: throttling must not count as one.
    harness.setenv("SOURCES__VOIPSTUDIO__FAILURE_BUDGET", "0.001")
    harness.configure(
        faults=[
            {"kind": "throttle_400", "path": "/cdrs", "nth": [1, 2, 4, 7]},
            {"kind": "429", "path": "/users", "nth": [1], "retry_after": "0"},
        ]
    )
    caplog.set_level(logging.WARNING)
    harness.sync()
    assert_cdrs_equal(harness, expected)
    assert fired(harness) == [4, 1]
    assert "throttled: Maximum per minute call rate exceeded" in caplog.text


@pytest.mark.parametrize(("status", "code"), [(400, 4), (403, 3), (404, 4)])
def test_a_client_error_that_is_no_throttle_is_final(
    duckdb_harness: Harness, status: int, code: int
) -> None:
    harness = duckdb_harness
    harness.configure(faults=[{"kind": "echo", "path": "/cdrs", "nth": [1], "status": status}])
    message, exit_code, _ = failure(harness)
    assert exit_code == code
    assert f"HTTP {status}" in message
    # Not retried: one request to /cdrs, and the token it echoed is not shown.
    assert harness.state()["requests"]["/cdrs"] == 1
    assert harness.env["SOURCES__VOIPSTUDIO__API_KEY"] not in message


def test_redirects_on_the_same_host_are_followed(
    duckdb_harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness = duckdb_harness
    expected = harness.emulator_cdrs()
    harness.configure(
        faults=[{"kind": "redirect", "nth": [1, 3, 6, 10], "location": "/v1.1/voipstudio"}]
    )
    caplog.set_level(logging.WARNING)
    harness.sync()
    assert_cdrs_equal(harness, expected)
    assert fired(harness) == [4]
    assert "is redirected (HTTP 307)" in caplog.text


def test_a_redirect_to_another_host_is_refused_and_sends_it_nothing(
    duckdb_harness: Harness,
) -> None:
    harness = duckdb_harness
    with EmulatorServer(small_config(rows=10)) as other:
        location = f"http://localhost:{other.port}/v1.2/voipstudio"
        harness.configure(faults=[{"kind": "redirect", "every": 1, "location": location}])
        message, code, error = failure(harness)
        assert code == 4 and isinstance(error, ApiRequestError)
        assert f"redirected (HTTP 307) to http://localhost:{other.port}" in message
        assert "the credentials were not" in message and "base_url" in message
        assert other.emulator.requests == {}
    assert harness.loaded() == []


def test_a_redirect_loop_ends_with_a_clear_error(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    harness.configure(faults=[{"kind": "redirect", "every": 1, "location": "/v1.2/voipstudio"}])
    message, code, _ = failure(harness)
    assert code == 4
    assert "redirect loop" in message and "base_url" in message


def test_odd_headers_and_a_body_that_lies_about_its_encoding(duckdb_harness: Harness) -> None:
    harness = duckdb_harness
    expected = harness.emulator_cdrs()
    harness.configure(
        faults=[
            {"kind": "bad_encoding", "nth": [2, 9]},
            {"kind": "odd_headers", "every": 1},
        ]
    )
    harness.sync()
    assert_cdrs_equal(harness, expected)
    bad_encoding, odd_headers = fired(harness)
    assert bad_encoding == 2 and odd_headers > 10
