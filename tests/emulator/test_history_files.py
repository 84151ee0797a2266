"""The files behind the history's records, over real HTTP: recordings and voicemail as MP3,
faxes and invoices as PDF, their sizes against the records, Range requests (ignored by
default, as the live /monitors/{id}.mp3 does; honoured when told), scope, and the faults a
download meets (a 5xx, a connection dropped mid-file, a file served short)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from pipelines.emulator.config import DEFAULT_USER_API_KEY, EmulatorConfig
from pipelines.emulator.server import EmulatorServer

from ._support import HTTP, admin_url, assert_error, configure, error_texts

Record = dict[str, Any]


def dump(server: EmulatorServer, name: str) -> list[Record]:
    response = HTTP.get(admin_url(server, f"/collections/{name}"), timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def server(make_emulator_config: Callable[..., EmulatorConfig]) -> Iterator[EmulatorServer]:
    with EmulatorServer(make_emulator_config(rows=3000)) as running:
        yield running


@pytest.fixture
def client(
    server: EmulatorServer, client_for: Callable[..., httpx.Client]
) -> Iterator[httpx.Client]:
    configure(server, faults=[], file_ranges=False)
    yield client_for(server)
    configure(server, faults=[], file_ranges=False)


def longest(records: list[Record], field: str = "duration") -> Record:
    return max(records, key=lambda r: (r[field], r["id"]))


# -- the files ------------------------------------------------------------------------------------


def test_a_recording_is_an_mp3_of_exactly_its_records_size(
    server: EmulatorServer, client: httpx.Client
) -> None:
    monitors = dump(server, "monitors")
    for monitor in [longest(monitors), *monitors[:5]]:
        response = client.get(f"/monitors/{monitor['id']}.mp3")
        assert response.status_code == 200
        assert response.headers["content-type"] == "audio/mpeg"
        assert "accept-ranges" not in response.headers  # [code]: the live route ignores Range
        assert "content-disposition" not in response.headers  # [code]: clients name the file
        body = response.content
        assert len(body) == monitor["size"] == int(response.headers["content-length"])
        assert body[:3] == b"ID3" and f"monitors {monitor['id']}".encode() in body[:200]
        assert b"\xff\xf3" in body[:200]  # an MPEG audio frame follows the tag
        assert client.get(f"/monitors/{monitor['id']}.mp3").content == body  # deterministic
    # A longer call, a bigger file (about 1 kB per second).
    big = longest(monitors)
    assert big["size"] > 1000 * big["duration"] * 0.9


def test_voicemail_audio_follows_its_duration(server: EmulatorServer, client: httpx.Client) -> None:
    messages = dump(server, "voicemessages")
    short, long = min(messages, key=lambda r: r["duration"]), longest(messages)
    sizes = [len(client.get(f"/voicemessages/{m['id']}.mp3").content) for m in (short, long)]
    assert sizes[0] < sizes[1]
    assert abs(sizes[1] - 1000 * long["duration"]) < 0.1 * 1000 * long["duration"] + 200
    head = client.head(f"/voicemessages/{long['id']}.mp3")
    assert head.status_code == 200 and int(head.headers["content-length"]) == sizes[1]
    assert head.content == b""


def test_a_fax_is_a_pdf_with_its_pages(server: EmulatorServer, client: httpx.Client) -> None:
    for fax in dump(server, "faxes")[:4]:
        response = client.get(f"/faxes/{fax['id']}.pdf")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/pdf"
        body = response.content
        assert body.startswith(b"%PDF-1.4") and body.rstrip().endswith(b"%%EOF")
        assert body.count(b"/Type /Page ") == fax["pages"]
        assert f"/Count {fax['pages']}".encode() in body
        # The cross-reference table points at the objects.
        xref = int(body.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
        assert body[xref:].startswith(b"xref")


def test_an_invoice_is_a_pdf_and_an_unfinished_one_is_an_error(
    server: EmulatorServer, client: httpx.Client
) -> None:
    transactions = dump(server, "transactions")
    done = next(t for t in transactions if t["result"] == "completed")
    response = client.get(f"/transactions/{done['id']}.pdf")
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    assert f"{done['amount']} {done['currency_iso']}".encode() in response.content
    pending = next(t for t in transactions if t["result"] == "pending")
    body = assert_error(client.get(f"/transactions/{pending['id']}.pdf"), 400)
    assert "not completed yet" in body["message"]  # [code]: the official CLI skips these


def test_files_of_unknown_or_unseen_records_and_wrong_routes(
    server: EmulatorServer, client: httpx.Client, client_for: Callable[..., httpx.Client]
) -> None:
    assert_error(client.get("/monitors/1.mp3"), 404)
    assert_error(client.get("/monitors/abc.mp3"), 404)
    monitor = dump(server, "monitors")[0]
    assert_error(client.get(f"/monitors/{monitor['id']}.pdf"), 404)
    sms = dump(server, "sms")[0]
    assert_error(client.get(f"/sms/{sms['id']}.mp3"), 404)
    response = client.post(f"/monitors/{monitor['id']}.mp3")
    assert_error(response, 405)
    assert response.headers["allow"] == "GET, HEAD"
    # A plain user's key: the files of its own records only.
    user = client_for(server, DEFAULT_USER_API_KEY)
    fax = dump(server, "faxes")[0]
    assert_error(user.get(f"/faxes/{fax['id']}.pdf"), 403)
    own = user.get("/monitors", params={"limit": 1}).json()["data"]
    assert own and user.get(f"/monitors/{own[0]['id']}.mp3").status_code == 200
    unseen = {r["id"] for r in dump(server, "monitors")} - {
        r["id"] for r in user.get("/monitors", params={"limit": 5000}).json()["data"]
    }
    assert_error(user.get(f"/monitors/{min(unseen)}.mp3"), 403)


# -- Range ----------------------------------------------------------------------------------------


def test_range_is_ignored_by_default(server: EmulatorServer, client: httpx.Client) -> None:
    monitor = longest(dump(server, "monitors"))
    response = client.get(f"/monitors/{monitor['id']}.mp3", headers={"Range": "bytes=100-"})
    assert response.status_code == 200 and len(response.content) == monitor["size"]
    assert "content-range" not in response.headers


def test_range_when_honoured_resumes_a_download(
    server: EmulatorServer, client: httpx.Client
) -> None:
    configure(server, file_ranges=True)
    monitor = longest(dump(server, "monitors"))
    path = f"/monitors/{monitor['id']}.mp3"
    whole = client.get(path)
    assert whole.headers["accept-ranges"] == "bytes" and len(whole.content) == monitor["size"]
    size = monitor["size"]
    part = client.get(path, headers={"Range": "bytes=10-99"})
    assert part.status_code == 206 and part.content == whole.content[10:100]
    assert part.headers["content-range"] == f"bytes 10-99/{size}"
    # A resume: the first half, then the rest from where it stopped.
    half = size // 2
    rest = client.get(path, headers={"Range": f"bytes={half}-"})
    assert rest.status_code == 206 and whole.content[:half] + rest.content == whole.content
    tail = client.get(path, headers={"Range": "bytes=-50"})
    assert tail.content == whole.content[-50:]
    past = client.get(path, headers={"Range": f"bytes={size}-"})
    assert_error(past, 416)
    assert past.headers["content-range"] == f"bytes */{size}"
    # Several ranges, or a malformed header: the whole file.
    for header in ("bytes=0-1,5-9", "pages=1-2", "bytes=9-2"):
        assert client.get(path, headers={"Range": header}).status_code == 200


# -- faults on files ------------------------------------------------------------------------------


def test_a_server_error_on_a_file(server: EmulatorServer, client: httpx.Client) -> None:
    monitor = dump(server, "monitors")[0]
    configure(server, faults=[{"kind": "503", "path": "/monitors/", "nth": [1]}])
    assert_error(client.get(f"/monitors/{monitor['id']}.mp3"), 503)
    assert len(client.get(f"/monitors/{monitor['id']}.mp3").content) == monitor["size"]


def test_a_connection_dropped_mid_file(server: EmulatorServer, client: httpx.Client) -> None:
    monitor = longest(dump(server, "monitors"))
    configure(server, faults=[{"kind": "drop", "path": "/monitors/", "nth": [1]}])
    received = bytearray()
    path = f"/monitors/{monitor['id']}.mp3"
    with pytest.raises(httpx.RemoteProtocolError), client.stream("GET", path) as response:
        assert int(response.headers["content-length"]) == monitor["size"]
        for chunk in response.iter_bytes():
            received += chunk
    # What arrived is the start of the real file.
    whole = client.get(f"/monitors/{monitor['id']}.mp3").content
    assert 0 < len(received) < monitor["size"] and whole.startswith(bytes(received))


def test_a_file_served_short(server: EmulatorServer, client: httpx.Client) -> None:
    monitor = longest(dump(server, "monitors"))
    configure(server, faults=[{"kind": "short_body", "path": "/monitors/", "nth": [1, 2]}])
    short = client.get(f"/monitors/{monitor['id']}.mp3")
    # A complete, well-formed answer: only the record's size tells it is short.
    assert short.status_code == 200 and len(short.content) < monitor["size"]
    assert int(short.headers["content-length"]) == len(short.content)
    # On a list request a short body does nothing.
    listed = client.get("/monitors", params={"limit": 3})
    assert listed.status_code == 200 and len(listed.json()["data"]) == 3


def test_a_drop_on_a_list_is_the_usual_dropped_answer(
    server: EmulatorServer, client: httpx.Client
) -> None:
    configure(server, faults=[{"kind": "drop", "path": "/sms", "nth": [1]}])
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/sms", params={"limit": 5})
    assert client.get("/sms", params={"limit": 5}).status_code == 200


def test_bad_file_settings_are_rejected(server: EmulatorServer) -> None:
    response = HTTP.patch(admin_url(server, "/config"), json={"file_ranges": "yes"})
    assert response.status_code == 400
    assert "file_ranges" in " ".join(error_texts(response.json()))
