"""The allocators a sync runs with (``memory.sync_memory``): pyarrow's system allocator, put
back afterwards, and glibc's thresholds fixed unless the user tuned them."""

from __future__ import annotations

import os
import subprocess
import sys

import pyarrow as pa
import pytest

from pipelines.voipstudio import memory


def test_importing_the_project_makes_pyarrow_use_the_system_allocator() -> None:
    # A fresh interpreter: pyarrow reads the variable once, when it is first imported.
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    code = "import pipelines, pyarrow; print(pyarrow.default_memory_pool().backend_name)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "system"
    # A choice of the user's wins.
    env["ARROW_DEFAULT_MEMORY_POOL"] = "mimalloc"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "mimalloc"


def test_a_sync_switches_a_pool_chosen_before_and_puts_it_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    before = pa.mimalloc_memory_pool()
    pa.set_memory_pool(before)
    try:
        with memory.sync_memory():
            assert pa.default_memory_pool().backend_name == "system"
            table = pa.table({"id": list(range(1000))})
            assert table.num_rows == 1000
        assert pa.default_memory_pool().backend_name == before.backend_name
        # Another pool named by the user is left alone.
        monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "mimalloc")
        with memory.sync_memory():
            assert pa.default_memory_pool().backend_name == "mimalloc"
    finally:
        pa.set_memory_pool(pa.system_memory_pool())


def test_glibc_thresholds_are_set_once_and_not_over_the_users(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[int, int]] = []

    class FakeLibc:
        def __init__(self) -> None:
            self.mallopt = self

        def __call__(self, option: int, value: int) -> int:
            calls.append((option, value))
            return 1

    monkeypatch.setattr(memory.ctypes, "CDLL", lambda _: FakeLibc())
    for name in memory._MALLOC_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(memory, "_bounded", False)
    memory.bound_heap_retention()
    memory.bound_heap_retention()
    assert calls == [
        (memory._M_TRIM_THRESHOLD, memory.TRIM_THRESHOLD),
        (memory._M_MMAP_THRESHOLD, memory.MMAP_THRESHOLD),
    ]
    calls.clear()
    monkeypatch.setattr(memory, "_bounded", False)
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    memory.bound_heap_retention()
    assert calls == []
