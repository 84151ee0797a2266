"""Progress of a sync, reported by the source to whoever listens (the CLI's progress display).

The source runs inside dlt's extract step, so it cannot hand a callback through dlt's
configuration; a listener registered here for the duration of a sync hears, per resource, when
it starts counting its range (plan), how many records it will read once that is known, and
every page as it arrives (read). What follows (dlt's normalize and load steps) reaches the
display through dlt's own progress collector.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Listener(Protocol):
    """What a progress display hears from the source; calls come from several threads."""

    def planning(self, resource: str) -> None:
        """``resource`` started finding out how much it has to read (counting requests)."""

    def planned(self, resource: str, total: int) -> None:
        """``resource`` will read ``total`` records."""

    def page(self, resource: str, rows: int) -> None:
        """A page of ``rows`` records of ``resource`` arrived."""

    def finished(self, resource: str) -> None:
        """``resource`` read everything it had to read."""


_listeners: list[Listener] = []
_lock = threading.Lock()


def _each() -> list[Listener]:
    with _lock:
        return list(_listeners)


def report_planning(resource: str) -> None:
    """Tell every listener that ``resource`` is counting its range."""
    for listener in _each():
        listener.planning(resource)


def report_planned(resource: str, total: int) -> None:
    """Tell every listener how many records ``resource`` will read."""
    for listener in _each():
        listener.planned(resource, total)


def report_page(resource: str, rows: int) -> None:
    """Tell every listener that a page with ``rows`` records of ``resource`` arrived."""
    for listener in _each():
        listener.page(resource, rows)


def report_finished(resource: str) -> None:
    """Tell every listener that ``resource`` read everything."""
    for listener in _each():
        listener.finished(resource)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Register ``listener`` for the duration of a ``with`` block."""
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)
