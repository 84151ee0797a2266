"""Bad settings, as a user writes them: each stops the command with exit 2 and one line that
names the key, the value and the fix, before anything is read or written; a key no setting has
is ignored with a warning naming the closest known key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sync_harness import Harness

from pipelines.voipstudio.configuration import section_keys, warn_unknown_keys

REPO = Path(__file__).resolve().parents[2]


def run(
    harness: Harness,
    project: Path,
    config: str = "",
    secrets: str = "",
    *args: str,
    drop: tuple[str, ...] = (),
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """``voipstudio ARGS`` (``sync --no-models`` by default) run from a project folder whose
    ``.dlt/`` holds ``config`` and ``secrets``, with the harness's variables but ``drop``."""
    (project / ".dlt").mkdir(parents=True, exist_ok=True)
    (project / ".dlt" / "config.toml").write_text(config)
    (project / ".dlt" / "secrets.toml").write_text(secrets)
    base = {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__")}
    settings = {k: v for k, v in harness.env.items() if k not in drop}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *(args or ("sync", "--no-models"))],
        cwd=project,
        env={**base, **settings, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one error line of a failed command (and that there is only that)."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, result.stderr
    return lines[0]


def nothing_touched(harness: Harness) -> None:
    assert harness.state()["requests"].get("/cdrs", 0) == 0
    assert not harness.db_path.exists() or harness.loaded() == []


@pytest.mark.parametrize(
    ("config", "drop", "words"),
    [
        (
            '[sources.voipstudio]\npage_size = "abc"\n',
            ("SOURCES__VOIPSTUDIO__PAGE_SIZE",),
            ["page_size", '"abc"', "whole number", "config.toml", "SOURCES__VOIPSTUDIO__PAGE_SIZE"],
        ),
        (
            '[sources.voipstudio]\nrequest_timeout = "abc"\n',
            (),
            ["request_timeout", '"abc"', "is not a number", "60.0"],
        ),
        (
            '[sources.voipstudio]\nbase_url = "http://[::1"\n',
            ("SOURCES__VOIPSTUDIO__BASE_URL",),
            ["base_url", "'http://[::1'", "not an http(s) URL", "SOURCES__VOIPSTUDIO__BASE_URL"],
        ),
        (
            "[sources.voipstudio]\nmax_concurrency = 4.5\n",
            ("SOURCES__VOIPSTUDIO__MAX_CONCURRENCY",),
            ["max_concurrency", "4.5", "whole number"],
        ),
        (
            '[pipelines.voipstudio]\nkeep_load_packages = "some"\n',
            (),
            ["keep_load_packages", '"some"', "PIPELINES__VOIPSTUDIO__KEEP_LOAD_PACKAGES"],
        ),
        (
            '[sources.voipstudio]\nresources = "cdrs,voicemails"\n',
            (),
            ["resources", "voicemails", "voicemessages"],
        ),
    ],
    ids=["page_size", "request_timeout", "base_url", "concurrency", "packages", "resources"],
)
def test_a_value_of_the_wrong_kind_is_named_with_its_fix(
    duckdb_harness: Harness, tmp_path: Path, config: str, drop: tuple[str, ...], words: list[str]
) -> None:
    line = error_line(run(duckdb_harness, tmp_path / "project", config, drop=drop))
    for word in words:
        assert word in line, (word, line)
    nothing_touched(duckdb_harness)


def test_the_same_value_from_an_environment_variable_says_so(
    duckdb_harness: Harness, tmp_path: Path
) -> None:
    line = error_line(
        run(duckdb_harness, tmp_path / "p", SOURCES__VOIPSTUDIO__REQUEST_TIMEOUT="abc")
    )
    assert "(environment variable SOURCES__VOIPSTUDIO__REQUEST_TIMEOUT)" in line
    nothing_touched(duckdb_harness)


@pytest.mark.parametrize("where", ["missing folder", "under a file", "under /proc", "a folder"])
def test_a_duckdb_file_that_cannot_be_written_there_is_a_configuration_error(
    duckdb_harness: Harness, tmp_path: Path, where: str
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "a-folder").mkdir()
    path = {
        "missing folder": tmp_path / "nowhere" / "calls.duckdb",
        "under a file": tmp_path / "a-file" / "calls.duckdb",
        "under /proc": Path("/proc/calls.duckdb"),
        "a folder": tmp_path / "a-folder",
    }[where]
    result = run(duckdb_harness, tmp_path / "p", DESTINATION__DUCKDB__CREDENTIALS=str(path))
    line = error_line(result)
    assert str(path) in line and "DESTINATION__DUCKDB__CREDENTIALS" in line, line
    assert duckdb_harness.state()["requests"].get("/cdrs", 0) == 0
    assert not (tmp_path / "nowhere").exists(), "a folder was made for a configured path"


@pytest.mark.parametrize(
    ("config", "section"),
    [
        ('[sources.voipstudio]\napi_key = "pasted-in-config"\n', "[sources.voipstudio]"),
        (
            '[sources.voipstudio.accounts.acme]\npassword = "pasted-in-config"\n'
            'email = "me@example.com"\n',
            "[sources.voipstudio.accounts.acme]",
        ),
    ],
    ids=["single account", "named account"],
)
def test_a_secret_in_config_toml_is_refused_and_told_where_it_belongs(
    duckdb_harness: Harness, tmp_path: Path, config: str, section: str
) -> None:
    result = run(duckdb_harness, tmp_path / "p", config, drop=("SOURCES__VOIPSTUDIO__API_KEY",))
    line = error_line(result)
    assert "config.toml" in line and section in line and ".dlt/secrets.toml" in line, line
    assert "pasted-in-config" not in result.stderr + result.stdout
    nothing_touched(duckdb_harness)


def test_unknown_keys_are_warned_about_with_the_closest_known_key(
    duckdb_harness: Harness, tmp_path: Path
) -> None:
    config = (
        "[sources.voipstudio]\n"
        'lagg = "1h"\npage_sise = 100\n'
        "[sources.voipstudio.acounts.x]\n"
        'lag = "1h"\n'
        "[models]\nservice_level_second = 30\n"
        "[pipelines.voipstudio]\nkeep_load_package = 1\n"
    )
    result = run(
        duckdb_harness,
        tmp_path / "p",
        config,
        '[sources.voipstudio]\napi_keyy = "x"\n',
        "sync",
        SOURCES__VOIPSTUDIO__TIMEZONEE="UTC",
    )
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "unknown" in line]
    expected = {
        "'lagg'": "lag",
        "'page_sise'": "page_size",
        "'api_keyy'": "api_key",
        "'acounts'": "accounts",
        "'timezonee'": "timezone",
        "'service_level_second'": "service_level_seconds",
        "'keep_load_package'": "keep_load_packages",
    }
    for key, closest in expected.items():
        found = [line for line in warnings if key in line]
        assert len(found) == 1, (key, result.stderr)
        assert f"did you mean {closest}?" in found[0], found[0]
    assert duckdb_harness.loaded(), "the sync did not run"


def test_a_named_account_section_is_checked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCES__VOIPSTUDIO__ACCOUNTS__ACME__MAX_CONCURENCY", "2")
    keys = section_keys(("sources", "voipstudio", "accounts", "acme"))
    assert "max_concurency" in keys
    given = warn_unknown_keys(
        ("sources", "voipstudio", "accounts", "acme"), ["max_concurrency", "lag"], ()
    )
    assert len(given) == 1 and "did you mean max_concurrency?" in given[0]
    # Once per process: a sync committed in parts does not say it again.
    assert warn_unknown_keys(("sources", "voipstudio", "accounts", "acme"), ["lag"], ()) == []


@pytest.mark.parametrize(
    ("variable", "load", "closest"),
    [
        ("RECONCILE__DAYZ", "pipelines.reconcile.settings:load_reconcile_settings", "days"),
        ("PUBLISH__PARQET", "pipelines.report.publish:load_publish_settings", "parquet"),
        ("MODELS__TRUNK_PREFX", "pipelines.models.settings:load_settings", "trunk_prefix"),
    ],
)
def test_every_section_warns_about_keys_it_does_not_have(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    variable: str,
    load: str,
    closest: str,
) -> None:
    import importlib

    module, function = load.split(":")
    monkeypatch.setenv(variable, "3")
    caplog.set_level("WARNING", logger="pipelines.voipstudio.configuration")
    loaded = getattr(importlib.import_module(module), function)()
    assert loaded == type(loaded)(), "an unknown key changed a setting"
    warned = [r.getMessage() for r in caplog.records if "unknown key" in r.getMessage()]
    assert len(warned) == 1 and f"did you mean {closest}?" in warned[0], warned
    assert f"environment variable {variable}" in warned[0]
