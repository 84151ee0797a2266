"""The state dlt keeps for each resource of the source, typed.

dlt stores a resource's state as a JSON-like dict in the pipeline state (and, with every load,
in the destination's ``_dlt_pipeline_state``): the source writes it while it reads
(``dlt.current.resource_state()``), the sync reads it between the parts of a run, ``voipstudio
status`` and ``reconcile`` read it afterwards. :class:`ResourceState` is the one place that
knows its keys; it is a view of dlt's dict (reads and writes go straight to it), and a read-only
``Mapping`` of it too.

Keys:

- ``cursor``: every record with a cursor value up to it has been loaded; the text of the
  cursor's clock (``"YYYY-MM-DD HH:MM:SS"``, see ``collection.Cursor``). Dated collections only.
- ``more``: the last run stopped after ``max_rows`` records (a run committed in parts); the next
  part goes on from the cursor.
- ``error``: why the account's last run of the resource failed, ``{"message", "exit_code"}``
  (named accounts; their failures are kept to themselves).
- ``synced_at``: when the resource was last read to the end (ISO 8601, UTC).
- ``digest``: a digest of what the resource last handed to dlt (dimensions only: a dimension
  read unchanged is not loaded again, see ``reader.AccountReader.when_changed``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dlt

from pipelines.voipstudio import settings

CURSOR, MORE, ERROR, SYNCED_AT, DIGEST = "cursor", "more", "error", "synced_at", "digest"


@dataclass(frozen=True)
class ResourceError:
    """Why a resource's last run failed: the message and the exit code it would end with."""

    message: str
    exit_code: int


class ResourceState(Mapping[str, Any]):
    """One resource's state (see the module docstring)."""

    def __init__(self, values: MutableMapping[str, Any] | None = None) -> None:
        self._values: MutableMapping[str, Any] = {} if values is None else values

    @classmethod
    def current(cls) -> ResourceState:
        """The state of the resource dlt is extracting now."""
        return cls(dlt.current.resource_state())

    # -- reading -----------------------------------------------------------------------------

    @property
    def cursor(self) -> str | None:
        """The stored cursor, None before the first complete window."""
        value = self._values.get(CURSOR)
        return None if value is None else str(value)

    @property
    def more(self) -> bool:
        """The last run stopped before the end of its range (see ``max_rows``)."""
        return bool(self._values.get(MORE))

    @property
    def error(self) -> ResourceError | None:
        """Why the last run failed, if it did."""
        value = self._values.get(ERROR)
        if not value:
            return None
        return ResourceError(str(value.get("message")), int(value.get("exit_code", 1)))

    @property
    def synced_at(self) -> datetime | None:
        """When the resource was last read to the end."""
        value = self._values.get(SYNCED_AT)
        return datetime.fromisoformat(value) if value else None

    @property
    def digest(self) -> str | None:
        """The digest of what the resource last handed on (dimensions)."""
        value = self._values.get(DIGEST)
        return None if value is None else str(value)

    # -- writing -----------------------------------------------------------------------------

    def advance(self, value: str) -> None:
        """Move the cursor forward, never back (texts of one format compare as times)."""
        current = self._values.get(CURSOR)
        if current is None or value > current:
            self._values[CURSOR] = value

    def resume_at(self, value: str) -> None:
        """Set the cursor where a run cut into parts stopped reading, also back: the next part
        goes on from there (its range may have begun below the cursor of the run before it,
        which then must not be where the next part resumes)."""
        self._values[CURSOR] = value

    def snapshot(self) -> dict[str, Any]:
        """The state as it is now, for :meth:`restore`."""
        return dict(self._values)

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        """Put the state back as :meth:`snapshot` found it (a collection skipped because the
        API refused it leaves its state untouched)."""
        self._values.clear()
        self._values.update(snapshot)

    def start_run(self) -> None:
        """A run begins: the last one's error and ``more`` no longer hold."""
        self._values.pop(ERROR, None)
        self._values.pop(MORE, None)

    def set_more(self) -> None:
        """The run stops before the end of its range; the next part goes on."""
        self._values[MORE] = True

    def fail(self, message: str, exit_code: int) -> None:
        """The run failed."""
        self._values[ERROR] = {"message": message, "exit_code": exit_code}

    def set_digest(self, digest: str) -> None:
        """What the resource hands on in this run has this digest."""
        self._values[DIGEST] = digest

    def mark_synced(self, when: datetime | None = None) -> None:
        """The resource was read to the end now (or ``when``)."""
        moment = when or datetime.now(UTC)
        self._values[SYNCED_AT] = moment.isoformat(timespec="seconds")

    # -- Mapping -----------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"ResourceState({dict(self._values)!r})"


def resource_states(pipeline: dlt.Pipeline) -> dict[str, ResourceState]:
    """The state of every resource of the source, by resource name (copies: reading them
    changes nothing)."""
    state: Any = pipeline.state
    resources = state.get("sources", {}).get(settings.SOURCE_NAME, {}).get("resources", {})
    return {str(name): ResourceState(dict(value)) for name, value in resources.items()}
