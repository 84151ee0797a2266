"""Credentials never appear in log lines, errors or dlt's trace."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sync_harness import Harness

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
