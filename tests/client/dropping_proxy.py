"""A TCP proxy in front of the API that, for its first `drops` connections, forwards one request,
waits until the API starts answering (so the request was handled) and then closes the client's
connection without passing the answer on: the "connection dropped after the server acted" case
that only an Idempotency-Key makes safe to retry. Later connections are passed through."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable

CHUNK = 65536


def _read_request(conn: socket.socket) -> bytes:
    """One HTTP request with a Content-Length body (what requests sends for JSON)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(CHUNK)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(CHUNK)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while chunk := src.recv(CHUNK):
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class DroppingProxy:
    def __init__(self, upstream_port: int, drops: int = 1) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.drops_left = drops
        self.dropped: list[bytes] = []
        self.connections = 0
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._closing = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._closing = True
        self.listener.close()
        self._thread.join(5)

    def _accept(self) -> None:
        while not self._closing:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                drop = self.drops_left > 0
                self.drops_left -= int(drop)
            handler: Callable[[socket.socket], None] = self._drop if drop else self._pass
            threading.Thread(target=handler, args=(conn,), daemon=True).start()

    def _drop(self, conn: socket.socket) -> None:
        with conn, socket.create_connection(self.upstream, timeout=10) as up:
            request = _read_request(conn)
            up.sendall(request)
            # The first bytes of the answer: the API has done its work (the job is committed).
            up.recv(CHUNK)
            with self.lock:
                self.dropped.append(request)
            # RST instead of FIN, as a broken network would look to the client.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def _pass(self, conn: socket.socket) -> None:
        with conn, socket.create_connection(self.upstream, timeout=30) as up:
            back = threading.Thread(target=_pump, args=(up, conn), daemon=True)
            back.start()
            _pump(conn, up)
            back.join(30)
