"""``voipstudio download``: the files behind the records (call recordings, voicemail audio, fax
PDFs, invoices), fetched on request only: a sync loads the records' metadata, never the files.

For each account the records of the range (``--since``, ``--until``) are listed by the shared
reader (``windows.WindowScanner``: both bounds, the completion rule), and each record's file is
fetched with the account's client (``Account.client``: the same retries, backoff, budgets,
concurrency and redaction as a sync). Files are written as::

    DIR/<account>/<kind>/<YYYY-MM-DD>/<id>.<ext>     (the record's date in the account's zone)

**Resumable, never twice**: a file is written to ``<name>.part``, flushed to disk and only then
renamed to its final name, so a final name always holds a complete file; a rerun skips every
file already there (with the right size, where the record gives one) and starts ``.part``
leftovers again from the first byte (the live API ignores ``Range`` [code], so nothing can be
appended to a partial file safely).

**Checked**: a recording's bytes must be exactly its record's ``size`` [code: the official CLI
checks the same]; a PDF must start with ``%PDF-`` and end with its ``%%EOF`` trailer; every body
must match its ``Content-Length`` (the HTTP library refuses one cut short). A file that does
not pass is fetched again (the client's retries), then reported and never kept as complete:
the command then exits 5 (a data check), after fetching every other file. A file the API
refuses (403, 404: the key cannot see it, the record was deleted) is reported and exits 4.
Invoices of pending transactions have no file yet [code]: they are skipped and counted.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pipelines.voipstudio import catalog
from pipelines.voipstudio.accounts import Account, parse_duration, parse_start
from pipelines.voipstudio.collection import DatedCollection
from pipelines.voipstudio.errors import (
    AccessDeniedError,
    ApiRequestError,
    ConfigError,
    DataCheckError,
    NotFoundError,
    VoipstudioError,
)
from pipelines.voipstudio.plan import RunPlan
from pipelines.voipstudio.redaction import redact
from pipelines.voipstudio.state import ResourceState
from pipelines.voipstudio.windows import Page

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"


@dataclass(frozen=True)
class FileKind:
    """A kind of file the command downloads.

    Attributes:
        name: the command's word for it (``recordings``).
        collection: the collection whose records have the files.
        extension: the file route's extension (``/monitors/{id}.mp3``).
        size_field: the record's field holding the file's exact size, if it has one.
        pending: ``(field, value)`` of a record that has no file yet.
    """

    name: str
    collection: DatedCollection
    extension: str
    size_field: str | None = None
    pending: tuple[str, str] | None = None

    def route(self, record_id: int) -> str:
        """The API path of a record's file."""
        return f"{self.collection.path}/{record_id}.{self.extension}"


KINDS: dict[str, FileKind] = {
    kind.name: kind
    for kind in (
        FileKind("recordings", catalog.MONITORS, "mp3", size_field="size"),
        FileKind("voicemail", catalog.VOICEMESSAGES, "mp3"),
        FileKind("faxes", catalog.FAXES, "pdf"),
        FileKind("invoices", catalog.TRANSACTIONS, "pdf", pending=("result", "pending")),
    )
}


@dataclass
class DownloadSummary:
    """What a download did, over every account.

    Attributes:
        fetched: files fetched and written now.
        present: files already complete, not fetched again.
        pending: records without a file yet (an unfinished transaction's invoice).
        failed: ``path -> why`` of files that could not be fetched (refused, never complete).
        short: the paths among ``failed`` whose body never matched its record.
        nbytes: bytes written now.
    """

    fetched: int = 0
    present: int = 0
    pending: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    short: set[str] = field(default_factory=set)
    nbytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def exit_code(self) -> int:
        """0; 5 if a file never matched its record (a data check); 4 if one was refused."""
        if self.short:
            return DataCheckError.exit_code
        return ApiRequestError.exit_code if self.failed else 0


def since_start(since: str, account: Account, now: datetime) -> datetime:
    """The wall-clock start (in the account's zone) ``--since`` names: a duration back from
    ``now`` (``7d``, ``12h``) or a date (``YYYY-MM-DD[ HH:MM:SS]``).

    Raises:
        ConfigError: neither.
    """
    try:
        back = parse_duration(since, "--since")
    except ConfigError:
        try:
            return parse_start(since, "--since")
        except ConfigError:
            raise ConfigError(
                f"--since {since!r} is neither a duration ('7d', '12h') nor a date (YYYY-MM-DD)"
            ) from None
    local = now.astimezone(ZoneInfo(account.timezone)).replace(tzinfo=None)
    return local - back


def download(
    kind: FileKind,
    accounts: list[Account],
    target: Path,
    *,
    since: str,
    until: str | None = None,
) -> DownloadSummary:
    """Fetch the files of ``kind`` of the records in ``[since, until)`` of every account into
    ``target`` (see the module docstring).

    Args:
        kind: what to download.
        accounts: the accounts.
        target: the folder (created if missing).
        since: a duration back from now (``7d``) or a date.
        until: a date, excluded; None: up to now.

    Raises:
        ConfigError: a bad range or folder.
        VoipstudioError: the records could not be listed.
    """
    now = datetime.now(UTC)
    summary = DownloadSummary()
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"--to {target} cannot be made a folder: {error.strerror}") from None
    if not os.access(target, os.W_OK):
        raise ConfigError(f"--to {target} cannot be written to")
    for account in accounts:
        start = since_start(since, account, now)
        end = parse_start(until, "--until") if until else None
        plan = RunPlan(run_at=now, start=start, end=end)
        folder = target / account.name / kind.name
        with account.client() as client:
            records = list(_records(kind, account, plan, client))
            log.info(
                "account '%s': %d %s with a file in the range",
                account.name,
                len(records),
                kind.name,
            )
            zone = ZoneInfo(account.timezone)

            def fetch(
                record: dict[str, Any],
                client: Any = client,
                folder: Path = folder,
                zone: ZoneInfo = zone,
            ) -> None:
                _fetch_one(kind, client, record, folder, zone, summary)

            with ThreadPoolExecutor(max_workers=account.max_concurrency) as pool:
                # list(): an error of a worker is raised here, not lost.
                list(pool.map(fetch, records))
    return summary


def _records(
    kind: FileKind, account: Account, plan: RunPlan, client: Any
) -> Iterator[dict[str, Any]]:
    """The records of the range with a file (those pending counted by the caller)."""
    collection = kind.collection
    start, end = plan.bounds(collection, account, ResourceState())
    if start >= end:
        return
    scanner = account.scanner(client, collection)
    seen: set[int] = set()
    for event in scanner.scan(start, end):
        if not isinstance(event, Page):
            continue
        for row in event.parsed.table.to_pylist():
            if row["id"] not in seen:
                seen.add(row["id"])
                yield row


def _fetch_one(
    kind: FileKind,
    client: Any,
    record: dict[str, Any],
    folder: Path,
    zone: ZoneInfo,
    summary: DownloadSummary,
) -> None:
    record_id = int(record["id"])
    route = kind.route(record_id)
    if kind.pending is not None and record.get(kind.pending[0]) == kind.pending[1]:
        with summary._lock:
            summary.pending += 1
        return
    when = record.get(kind.collection.cursor.path)
    day = when.astimezone(zone).strftime("%Y-%m-%d") if isinstance(when, datetime) else "undated"
    final = folder / day / f"{record_id}.{kind.extension}"
    expected = record.get(kind.size_field) if kind.size_field else None
    size = expected if isinstance(expected, int) and not isinstance(expected, bool) else None
    if _complete(final, size):
        with summary._lock:
            summary.present += 1
        return
    try:
        body: bytes = client.request(
            "GET", route, decode=lambda data: _checked(data, kind.extension, size)
        )
    except AccessDeniedError:
        _failed(summary, route, "HTTP 403 Access denied: the key may not read this file")
        return
    except NotFoundError:
        _failed(summary, route, "HTTP 404: the API has no such file (the record deleted?)")
        return
    except ApiRequestError as error:
        if "not completed" in str(error).lower():  # an invoice not issued yet [code]
            with summary._lock:
                summary.pending += 1
            return
        _failed(summary, route, str(error))
        return
    except VoipstudioError as error:
        # Retries ran out; a body that never passed its check is a short file.
        _failed(summary, route, str(error), short="unreadable body" in str(error))
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    part = final.with_name(final.name + PART_SUFFIX)
    with part.open("wb") as out:
        out.write(body)
        out.flush()
        os.fsync(out.fileno())
    part.replace(final)
    with summary._lock:
        summary.fetched += 1
        summary.nbytes += len(body)


def _complete(path: Path, size: int | None) -> bool:
    """Whether ``path`` holds a complete file already: it exists under its final name (only
    complete files are renamed to it) with the record's size, when the record has one."""
    try:
        found = path.stat().st_size
    except FileNotFoundError:
        return False
    return size is None or found == size


def _checked(body: bytes, extension: str, size: int | None) -> bytes:
    """``body`` if it is a whole file: ``size`` bytes when the record says, a PDF's header and
    trailer.

    Raises:
        ValueError: it is not (the client retries it like an unreadable answer).
    """
    if size is not None and len(body) != size:
        raise ValueError(f"{len(body)} bytes where the record says {size}")
    if extension == "pdf" and not (body.startswith(b"%PDF-") and b"%%EOF" in body[-64:]):
        raise ValueError(f"{len(body)} bytes that are not a whole PDF (no %%EOF trailer)")
    return body


def _failed(summary: DownloadSummary, route: str, why: str, *, short: bool = False) -> None:
    message = redact(why)
    log.error("%s was not downloaded: %s", route, message)
    with summary._lock:
        summary.failed[route] = message
        if short:
            summary.short.add(route)
