"""Progress of a sync, reported page by page to whoever listens (the CLI's progress bar).

The source runs inside dlt's extract step, so it cannot hand a callback through dlt's
configuration; a listener registered here for the duration of a sync receives every page.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Listener = Callable[[int, int], None]

_listeners: list[Listener] = []
_lock = threading.Lock()


def report_page(pages: int, rows: int) -> None:
    """Tell every listener that ``pages`` pages with ``rows`` records arrived."""
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener(pages, rows)


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
