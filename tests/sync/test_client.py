"""The HTTP client's retry policy and settings parsing (no network needed for these)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from pipelines.voipstudio import parse_duration, parse_start
from pipelines.voipstudio.client import Credentials, RetryPolicy, parse_retry_after
from pipelines.voipstudio.errors import ConfigError


def test_retry_after_zero_never_becomes_a_hot_loop() -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_max=30)
    rng = random.Random(1)
    delays = [policy.delay(attempt, 0.0, rng) for attempt in range(1, 6)]
    # Never below half the exponential step: 0.25, 0.5, 1, 2, 4.
    for attempt, delay in enumerate(delays, start=1):
        assert delay >= 0.5 * 2 ** (attempt - 1) / 2


def test_retry_after_is_honoured_and_capped() -> None:
    policy = RetryPolicy(backoff_base=0.1, retry_after_max=60)
    rng = random.Random(1)
    assert policy.delay(1, 7.0, rng) == 7.0
    assert policy.delay(1, 3600.0, rng) == 60.0


def test_backoff_grows_and_is_bounded() -> None:
    policy = RetryPolicy(backoff_base=1, backoff_max=8)
    rng = random.Random(2)
    delays = [policy.delay(attempt, None, rng) for attempt in range(1, 10)]
    assert all(0.5 <= d <= 8 for d in delays)
    assert delays[-1] >= 4


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = datetime(2026, 1, 1, tzinfo=UTC)
    http_date = (now + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(http_date, now=lambda: now) == pytest.approx(30)


def test_credentials_need_a_key_or_a_login() -> None:
    with pytest.raises(ConfigError, match="api_key"):
        Credentials()
    with pytest.raises(ConfigError):
        Credentials(email="a@b.c")
    assert "secret" not in repr(Credentials(api_key="secret"))
    assert "pw" not in repr(Credentials(email="a@b.c", password="pw"))


def test_durations_and_dates() -> None:
    assert parse_duration("6h") == timedelta(hours=6)
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration(45) == timedelta(seconds=45)
    assert parse_duration("2d") == timedelta(days=2)
    with pytest.raises(ConfigError, match="lag"):
        parse_duration("six hours")
    assert parse_start("2026-01-02") == datetime(2026, 1, 2)
    assert parse_start("2026-01-02T03:04:05") == datetime(2026, 1, 2, 3, 4, 5)
    with pytest.raises(ConfigError, match="start_date"):
        parse_start("02/01/2026")
