"""A deadline for a whole HTTP request, from connecting to the last byte of the answer.

httpx's ``Timeout`` bounds each network operation, not the request: a server that sends its
answer one byte a second never times out. Here every socket operation of a request (connect,
TLS handshake, each write, each read of headers and body) is given the time that is left
before the request's deadline, or its own timeout if that is shorter, and fails as a timeout
once the deadline has passed. The fast path is untouched: the body is read by httpx as usual,
and each read costs one clock reading more.

It works at the level of httpcore's network backend, the layer httpx's transports open their
sockets through. The deadline of the request a thread is making is kept per thread: a
connection is used by one request, on one thread, at a time.
"""

from __future__ import annotations

import ssl
import threading
import time
import typing
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import httpcore
import httpx

_current = threading.local()

SocketOption = typing.Any


@contextmanager
def deadline(at: float) -> Iterator[None]:
    """Requests this thread makes inside the block end by ``at`` (``time.monotonic()``)."""
    previous = getattr(_current, "at", None)
    _current.at = at
    try:
        yield
    finally:
        _current.at = previous


def _left(timeout: float | None, error: type[Exception]) -> float | None:
    """The timeout of one socket operation: its own, or the time left if that is shorter."""
    at: float | None = getattr(_current, "at", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise error("the request's deadline passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    """A connection whose every operation respects the current request's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    """Opens connections as the wrapped backend does, as :class:`_Stream`."""

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(
            self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        )

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._backend.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def enforce_deadlines(client: httpx.Client) -> bool:
    """Make every transport of ``client`` (proxies from the environment included) respect
    :func:`deadline`. Call it before the first request.

    httpx does not expose its transports' network backend: this reaches the connection pool
    of each ``httpx.HTTPTransport`` (``_pool``, httpcore's ``ConnectionPool`` or a proxy pool,
    which takes a ``network_backend``). The test suite checks that it still does.

    Returns:
        False when a transport could not be reached (an httpx whose internals changed): its
        requests are then bounded by the timeout of each operation only.
    """
    transports = [client._transport, *client._mounts.values()]
    reached = True
    for transport in transports:
        if transport is None:
            continue
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if not isinstance(backend, httpcore.NetworkBackend):
            reached = False
            continue
        if not isinstance(backend, _Backend):
            pool._network_backend = _Backend(backend)  # type: ignore[union-attr]
    return reached
