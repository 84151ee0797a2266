"""Running the emulator: in the foreground (the CLI) or on a background thread (tests, demo,
benchmarks), always on a real loopback socket."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

from pipelines.emulator.app import Emulator
from pipelines.emulator.config import EmulatorConfig


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )[0]
    # The protocol must be IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on connections of
    # such sockets, and without it every small answer (headers and body are two writes) waited
    # ~40 ms for the client's delayed ACK (Nagle's algorithm).
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(512)
    sock.set_inheritable(True)
    return sock


class _ThreadServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:
        # Signals belong to the main thread's program (pytest, the CLI), not to this server.
        return


class EmulatorServer:
    """An emulator serving on a background thread, as a context manager.

    Example:
        >>> with EmulatorServer(EmulatorConfig(rows=1000)) as server:
        ...     base_url = server.base_url
    """

    def __init__(
        self, config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.emulator = Emulator(config or EmulatorConfig())
        self._socket = _bind(host, port)
        self.host, self.port = self._socket.getsockname()[:2]
        self._server = _ThreadServer(
            uvicorn.Config(
                self.emulator,
                log_level="warning",
                access_log=False,
                lifespan="off",
                timeout_keep_alive=30,
            )
        )
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        """The server's root URL."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The API base URL, the emulator's equivalent of ``https://l7api.com/v1.2/voipstudio``."""
        return f"{self.url}/v1.2/voipstudio"

    def start(self) -> EmulatorServer:
        """Start serving; returns once the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the emulator did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_forever(config: EmulatorConfig, host: str, port: int) -> None:
    """Serve in the foreground until interrupted (Ctrl-C / SIGTERM)."""
    emulator = Emulator(config)
    sock = _bind(host, port)
    server = uvicorn.Server(
        uvicorn.Config(
            emulator,
            log_level="info",
            access_log=False,
            lifespan="off",
            # On SIGTERM, uvicorn would otherwise wait for every kept-alive client connection to
            # close, and a client paging through it would hang with it.
            timeout_graceful_shutdown=5,
        )
    )
    server.run(sockets=[sock])
