"""The files behind the records: call recordings and voicemail (MP3), faxes and invoices (PDF).

Every file is synthesised on request from its record, so that the same record always gives the
same bytes and nothing is stored: silent MP3 audio as long as the record's ``duration``, a PDF
with a fax's ``pages`` or an invoice's lines. Where the record has a ``size`` field (recordings
[code: the official CLI checks the delivered bytes against it]) the file has exactly that many
bytes.

Range requests: the official CLI found that the live ``/monitors/{id}.mp3`` ignores ``Range``
and always sends the whole body, without ``Accept-Ranges`` [code]; the emulator does the same by
default and honours ranges when told to (``file_ranges``), so that a client's resume can be
tested both ways. See :func:`byte_range`.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import numpy.typing as npt

from pipelines.emulator.fields import FileRoute

MEDIA_TYPES = {"mp3": "audio/mpeg", "pdf": "application/pdf"}

# One MPEG-2 Layer III frame of silence: 8 kbit/s, 16 kHz, mono, no CRC; 36 bytes of which the
# side information and main data are all zero (nothing to decode: silence). 576 samples, 36 ms.
_MP3_FRAME = b"\xff\xf3\x18\xc0" + bytes(32)


def _id3_tag(title: str) -> bytes:
    """An ID3v2.3 tag holding one title frame (TIT2), so that each file says what it is."""
    text = b"\x00" + title.encode("latin-1", "replace")
    frame = b"TIT2" + len(text).to_bytes(4, "big") + b"\x00\x00" + text
    size = len(frame)
    syncsafe = bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))
    return b"ID3\x03\x00\x00" + syncsafe + frame


def _frames(seconds: int) -> int:
    # ceil(seconds * 16000 / 576) in integers: one frame at least.
    return max(1, (max(seconds, 0) * 16_000 + 575) // 576)


def audio_size(title: str, seconds: int) -> int:
    """The size in bytes of the MP3 file :func:`audio_bytes` makes for ``seconds`` of audio."""
    return len(_id3_tag(title)) + _frames(seconds) * len(_MP3_FRAME)


def audio_sizes(
    collection: str, ids: npt.NDArray[np.int64], seconds: npt.NDArray[np.int64]
) -> list[int]:
    """:func:`audio_size` of the files of many records of ``collection`` at once."""
    tag = len(_id3_tag(file_title(collection, 0))) - 1  # the title without its id's digits
    digits = np.char.str_len(ids.astype(str)).astype(np.int64)
    frames = np.maximum(1, (np.maximum(seconds, 0) * 16_000 + 575) // 576)
    sizes: list[int] = (tag + digits + frames * len(_MP3_FRAME)).tolist()
    return sizes


def audio_bytes(title: str, seconds: int, size: int | None = None) -> bytes:
    """Silent MP3 audio of about ``seconds``, titled ``title``, exactly ``size`` bytes if given
    (whole frames, then zero padding a decoder skips; cut short if ``size`` is smaller)."""
    target = audio_size(title, seconds) if size is None else max(size, 0)
    tag = _id3_tag(title)
    frames = max(0, (target - len(tag)) // len(_MP3_FRAME))
    body = tag + _MP3_FRAME * frames
    return body[:target] + bytes(max(0, target - len(body)))


def _pdf_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf_bytes(pages: list[list[str]]) -> bytes:
    """A minimal, valid PDF (A4, Helvetica) with one page per entry, each a list of lines."""
    pages = pages or [[]]
    count = len(pages)
    # Objects: 1 catalog, 2 page tree, 3 font, then a page and its content stream per page.
    kids = " ".join(f"{4 + 2 * index} 0 R" for index in range(count))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for index, lines in enumerate(pages):
        ops = ["BT", "/F1 12 Tf", "72 770 Td", "16 TL"]
        ops += [f"({_pdf_text(line)}) '" for line in lines]
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1", "replace")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * index} 0 R >>".encode()
        )
        objects.append(
            b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream
            + b"\nendstream"
        )  # fmt: skip
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n".encode()
    out += f"startxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def file_title(collection: str, record_id: int) -> str:
    """The title a file carries (in its ID3 tag or first line): its collection and id."""
    return f"VoIPstudio emulator {collection} {record_id}"


def file_bytes(collection: str, route: FileRoute, record: dict[str, Any]) -> bytes:
    """The file of ``record`` (a record of ``collection``, served at ``route``)."""
    title = file_title(collection, record["id"])
    if route.kind == "audio":
        size = record.get(route.size_field) if route.size_field else None
        seconds = record.get("duration")
        return audio_bytes(
            title,
            seconds if isinstance(seconds, int) else 0,
            size if isinstance(size, int) and not isinstance(size, bool) else None,
        )
    if route.kind == "fax":
        pages = record.get("pages")
        count = pages if isinstance(pages, int) and 0 < pages <= 200 else 1
        head = [title, f"From {record.get('from')} to {record.get('to')}"]
        head.append(f"Date {record.get('created_at')}")
        return pdf_bytes(
            [[*head, f"Page {page} of {count}"] for page in range(1, count + 1)]
        )  # fmt: skip
    lines = [
        title,
        f"Invoice for transaction {record['id']} ({record.get('type')})",
        f"Date {record.get('created_at')}",
        f"Amount {record.get('amount')} {record.get('currency_iso')}",
    ]
    return pdf_bytes([lines])


_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class RangeNotSatisfiableError(Exception):
    """A ``Range`` that selects no byte of the file (HTTP 416)."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The ``(first, last)`` byte positions (inclusive) a ``Range`` header asks for, or None to
    send the whole file (no header, a malformed one, or several ranges: RFC 9110 lets a server
    ignore those).

    Raises:
        RangeNotSatisfiableError: a well-formed single range that starts past the end.
    """
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or (not match.group(1) and not match.group(2)):
        return None
    first_text, last_text = match.groups()
    if not first_text:  # a suffix: the last N bytes
        length = int(last_text)
        if length == 0 or size == 0:
            raise RangeNotSatisfiableError(header)
        return max(0, size - length), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None
    if first >= size:
        raise RangeNotSatisfiableError(header)
    return first, min(last, size - 1)
