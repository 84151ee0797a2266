"""Serving ``calldate`` as the wall clock of a time zone instead of UTC.

VoIPstudio documents ``calldate`` without an offset, and it is almost certainly UTC; an account
whose API answered in its own local time would send wall-clock texts that repeat an hour each
autumn and skip one each spring. The emulator can serve such texts (``calldate_timezone``), so
that the client's ``timezone`` setting is tested against them.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

_FORMAT = "%Y-%m-%d %H:%M:%S"


def to_wall_clock(texts: Sequence[str | None], zone: str) -> list[str | None]:
    """UTC ``YYYY-MM-DD HH:MM:SS`` texts as the wall clock of ``zone`` (null stays null)."""
    if zone == "UTC" or not texts:
        return list(texts)
    instants = pc.strptime(pa.array(texts, type=pa.string()), format=_FORMAT, unit="s")
    local = pc.assume_timezone(instants, timezone="UTC").cast(pa.timestamp("s", tz=zone))
    return pc.strftime(local, format=_FORMAT).to_pylist()  # type: ignore[no-any-return]
