"""``voipstudio download``: the emulator's files (recordings, voicemail, faxes, invoices) fetched
whole, each checked against its record, resumable after a kill, never fetched twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pipeline_harness import REPO
from sync_harness import Harness

from pipelines.emulator.config import DEFAULT_API_KEY
from pipelines.voipstudio.download import KINDS, PART_SUFFIX

SINCE = "2026-02-26"


def in_range(harness: Harness, kind: str) -> list[dict[str, Any]]:
    """The records of ``kind``'s collection from SINCE on, as served."""
    collection = KINDS[kind].collection
    cursor = collection.cursor.path
    data = harness.admin.get(f"/collections/{collection.name}").json()["data"]
    return [r for r in data if r[cursor] >= f"{SINCE} 00:00:00"]


def files(folder: Path) -> dict[str, Path]:
    """The complete files under ``folder`` by name (``20000001.mp3``)."""
    return {p.name: p for p in folder.rglob("*") if p.is_file() and p.suffix != PART_SUFFIX}


def file_requests(harness: Harness, kind: str) -> dict[str, int]:
    """How many times the emulator was asked for each file of ``kind``."""
    prefix = KINDS[kind].collection.path + "/"
    requests: dict[str, int] = harness.state()["requests"]
    return {path: n for path, n in requests.items() if path.startswith(prefix)}


def served_file(harness: Harness, route: str) -> bytes:
    response = httpx.get(
        harness.server.base_url + route, headers={"X-Auth-Token": DEFAULT_API_KEY}, timeout=30
    )
    assert response.status_code == 200
    return response.content


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_file_of_the_range_is_fetched_whole_once(
    duckdb_harness: Harness, tmp_path: Path, kind: str
) -> None:
    harness = duckdb_harness
    target = tmp_path / "files"
    records = in_range(harness, kind)
    assert records, f"no {kind} in the range"
    spec = KINDS[kind]
    with_file = [r for r in records if not spec.pending or r.get(spec.pending[0]) != "pending"]
    done = harness.cli("download", kind, "--since", SINCE, "--to", str(target))
    assert done.returncode == 0, done.stderr
    got = files(target)
    assert sorted(got) == sorted(f"{r['id']}.{spec.extension}" for r in with_file)
    if len(with_file) < len(records):
        assert "without a file yet" in done.stdout
    assert f"{len(with_file):,} fetched" in done.stdout
    assert all(n == 1 for n in file_requests(harness, kind).values())
    # Again: nothing is fetched twice.
    again = harness.cli("download", kind, "--since", SINCE, "--to", str(target))
    assert again.returncode == 0, again.stderr
    assert "0 fetched" in again.stdout and f"{len(with_file):,} already complete" in again.stdout
    assert all(n == 1 for n in file_requests(harness, kind).values())
    assert not [p for p in target.rglob(f"*{PART_SUFFIX}")]
    # The bytes the API serves (asked last: these requests count too).
    for record in with_file[:5]:
        body = got[f"{record['id']}.{spec.extension}"].read_bytes()
        assert body == served_file(harness, spec.route(record["id"]))
        if spec.size_field:
            assert len(body) == record[spec.size_field]


def test_a_short_body_is_retried_and_never_kept(duckdb_harness: Harness, tmp_path: Path) -> None:
    harness = duckdb_harness
    target = tmp_path / "files"
    records = in_range(harness, "recordings")
    broken, flaky = records[0]["id"], records[1]["id"]
    harness.configure(
        faults=[
            # One recording is always served short (a truncated stored file), one only twice.
            {"kind": "short_body", "path": f"/monitors/{broken}.mp3", "every": 1},
            {"kind": "short_body", "path": f"/monitors/{flaky}.mp3", "nth": [1, 2]},
        ]
    )
    done = harness.cli(
        "download", "recordings", "--since", SINCE, "--to", str(target),
        SOURCES__VOIPSTUDIO__MAX_ATTEMPTS="4",
    )  # fmt: skip
    assert done.returncode == 5, (done.stdout, done.stderr)
    assert f"/monitors/{broken}.mp3 was not downloaded" in done.stderr
    assert "where the record says" in done.stderr
    assert "1 NOT downloaded" in done.stderr + done.stdout
    assert DEFAULT_API_KEY not in done.stderr + done.stdout
    got = files(target)
    assert f"{broken}.mp3" not in got
    assert got[f"{flaky}.mp3"].stat().st_size == records[1]["size"]
    assert len(got) == len(records) - 1
    # Fixed on the server: the rerun fetches that one file only.
    harness.configure(faults=[])
    again = harness.cli("download", "recordings", "--since", SINCE, "--to", str(target))
    assert again.returncode == 0, again.stderr
    assert "1 fetched" in again.stdout
    assert files(target)[f"{broken}.mp3"].stat().st_size == records[0]["size"]


def test_a_download_killed_midway_resumes_without_fetching_a_file_twice(
    duckdb_harness: Harness, tmp_path: Path
) -> None:
    harness = duckdb_harness
    target = tmp_path / "files"
    records = in_range(harness, "recordings")
    assert len(records) > 10
    # Each file takes a while, so that the kill lands in the middle of the download.
    harness.configure(faults=[{"kind": "stall", "path": "/monitors/", "every": 1, "seconds": 0.3}])
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "download", "recordings", "--since", SINCE,
         "--to", str(target)],
        cwd=REPO,
        env={**os.environ, **harness.env, "SOURCES__VOIPSTUDIO__MAX_CONCURRENCY": "2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while len(files(target)) < 4 and process.poll() is None:
            assert time.monotonic() < deadline, "the download never got going"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL, "the download ended before the kill"
    complete_before = set(files(target))
    assert 4 <= len(complete_before) < len(records)
    for path in complete_before:  # a final name holds a whole file
        record = next(r for r in records if f"{r['id']}.mp3" == path)
        assert files(target)[path].stat().st_size == record["size"]
    harness.configure(faults=[])
    done = harness.cli("download", "recordings", "--since", SINCE, "--to", str(target))
    assert done.returncode == 0, done.stderr
    got = files(target)
    assert len(got) == len(records)
    for record in records:
        assert got[f"{record['id']}.mp3"].stat().st_size == record["size"]
    requests = file_requests(harness, "recordings")
    for name in complete_before:
        assert requests[f"/monitors/{name}"] == 1, f"{name} was fetched twice"
    # Those in flight at the kill were fetched again, nothing else.
    assert all(n <= 2 for n in requests.values())
    assert f"{len(complete_before):,} already complete" in done.stdout
    assert not [p for p in target.rglob(f"*{PART_SUFFIX}")]


def test_bad_arguments_exit_2(duckdb_harness: Harness, tmp_path: Path) -> None:
    done = duckdb_harness.cli("download", "recordings", "--since", "soon", "--to", str(tmp_path))
    assert done.returncode == 2 and "--since" in done.stderr
    done = duckdb_harness.cli(
        "download", "recordings", "--since", "7d", "--to", str(tmp_path), "--account", "nope"
    )
    assert done.returncode == 2 and "nope" in done.stderr
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    done = duckdb_harness.cli("download", "faxes", "--since", SINCE, "--to", str(blocked))
    assert done.returncode == 2 and "--to" in done.stderr, done.stderr
