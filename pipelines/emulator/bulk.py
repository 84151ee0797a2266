"""Helpers for building millions of Python objects at once (the generator and the store)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a ``with`` block.

    Building millions of lists, ints and byte strings triggers the cyclic GC over and over
    although nothing created is cyclic: pausing it divides the time of generating and encoding a
    large dataset several-fold.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
