"""A TCP proxy in front of a real database server that can stop answering, for timeout tests.

``forward``: bytes pass both ways. ``freeze()``: connections stay open and new ones are
accepted, but nothing is forwarded any more, as from a hung server or one lost behind a
load balancer. ``cut()``: every connection is closed and new ones are refused. ``drop()``:
every connection is closed, and new ones are closed at once while ``down`` is set (a server
restarting), then forwarded again.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa


class FrozenProxy:
    def __init__(self, target: tuple[str, int], *, frozen: bool = False) -> None:
        self.target = target
        self.frozen = threading.Event()
        self.closed = threading.Event()
        self.down = threading.Event()
        if frozen:
            self.frozen.set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, server_url: str) -> str:
        url = sa.make_url(server_url).set(host="127.0.0.1", port=self.port)
        return url.render_as_string(hide_password=False)

    def freeze(self) -> None:
        self.frozen.set()

    def cut(self) -> None:
        self.closed.set()
        with contextlib.suppress(OSError):
            # close() alone leaves a socket listening while a thread is blocked in accept();
            # shutdown() wakes it and stops listening, so new connections are refused.
            self._listener.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    close = cut

    def drop(self) -> None:
        """Close every open connection; keep accepting (see ``down``)."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _keep(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.down.is_set():
                client.close()
                continue
            self._keep(client)
            if self.frozen.is_set():
                continue  # accepted, and never answered
            upstream = socket.create_connection(self.target)
            self._keep(upstream)
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        while not self.closed.is_set():
            if self.frozen.is_set():
                self.closed.wait(0.05)
                continue
            try:
                ready, _, _ = select.select([a, b], [], [], 0.05)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if not self.frozen.is_set():
                        peers[sock].sendall(data)
            except (OSError, ValueError):  # cut from another thread: a closed socket's fd is -1
                return


@contextmanager
def proxy_to(server_url: str, *, frozen: bool = False) -> Iterator[FrozenProxy]:
    url = sa.make_url(server_url)
    proxy = FrozenProxy((url.host or "127.0.0.1", url.port or _default_port(url)), frozen=frozen)
    try:
        yield proxy
    finally:
        proxy.cut()


def _default_port(url: sa.URL) -> int:
    return 5432 if url.get_backend_name() == "postgresql" else 3306
