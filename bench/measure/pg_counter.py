"""A PostgreSQL wire-protocol proxy that counts what its clients send.

pg_stat_statements is not preloaded on the machine's server, so statement counts come from the
wire instead: point a process's DATABASE_URL at this proxy and it counts the frontend messages
of every connection through it. A statement is a simple Query ('Q') or an extended-protocol
Execute ('E'); a round trip is a Query or a Sync ('S'), each of which makes the client wait for
ReadyForQuery. Connections are counted too (a pool that churns opens many).

SSLRequest and GSSENCRequest are answered 'N' (plain text on loopback), so a client's
sslmode=prefer and sslmode=disable both work. The upstream is TCP or a unix socket (an embedded
server may listen on a socket only).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from psycopg.conninfo import conninfo_to_dict

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102


@dataclass(frozen=True)
class Upstream:
    """Where the real server listens: a TCP host and port, or a unix socket path."""

    host: str
    port: int

    @property
    def unix_socket(self) -> str | None:
        return f"{self.host}/.s.PGSQL.{self.port}" if self.host.startswith("/") else None

    @classmethod
    def of(cls, database_url: str) -> Upstream:
        params = conninfo_to_dict(_libpq_url(database_url))
        host = str(params.get("host") or "/var/run/postgresql")
        return cls(host, int(params.get("port") or 5432))


def _libpq_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def via_proxy(database_url: str, port: int) -> str:
    """`database_url` (a URL, as DATABASE_URL must be) with its server replaced by a proxy
    listening on 127.0.0.1:`port`."""
    params = {k: str(v) for k, v in conninfo_to_dict(_libpq_url(database_url)).items()}
    user = quote(params.pop("user", "postgres"), safe="")
    password = params.pop("password", None)
    dbname = quote(params.pop("dbname", "postgres"), safe="")
    params.pop("host", None)
    params.pop("port", None)
    credentials = f"{user}:{quote(password, safe='')}" if password else user
    query = f"?{urlencode(params)}" if params else ""
    return f"postgresql://{credentials}@127.0.0.1:{port}/{dbname}{query}"


@dataclass(frozen=True)
class WireCounts:
    statements: int
    round_trips: int
    connections: int

    def per(self, jobs: int) -> dict[str, float]:
        jobs = max(jobs, 1)
        return {
            "statements": self.statements / jobs,
            "round_trips": self.round_trips / jobs,
            "connections": self.connections / jobs,
        }


class PgCounter:
    """The proxy, serving on its own event loop thread between start() and stop()."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.port = 0
        self._messages: Counter[str] = Counter()
        self._connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="pg-counter")
        self._server: asyncio.Server | None = None

    def start(self) -> PgCounter:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        self.port = future.result(timeout=10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def counts(self) -> WireCounts:
        messages = self._messages.copy()
        return WireCounts(
            statements=messages["Q"] + messages["E"],
            round_trips=messages["Q"] + messages["S"],
            connections=self._connections,
        )

    def reset(self) -> None:
        def clear() -> None:
            self._messages.clear()
            self._connections = 0

        self._loop.call_soon_threadsafe(clear)
        # A no-op round through the loop: the clear has run when this returns.
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), self._loop).result(timeout=10)

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self._server.sockets[0].getsockname()[1]

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.upstream.unix_socket is not None:
            return await asyncio.open_unix_connection(self.upstream.unix_socket)
        return await asyncio.open_connection(self.upstream.host, self.upstream.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            startup = await _startup_packet(reader, writer)
            if startup is None:
                return
            upstream_reader, upstream_writer = await self._open_upstream()
            upstream_writer.write(startup)
            if struct.unpack("!ii", startup[:8])[1] == CANCEL_REQUEST:
                await upstream_writer.drain()
                return
            self._connections += 1
            replies = asyncio.create_task(_pipe(upstream_reader, writer))
            try:
                await self._count_and_forward(reader, upstream_writer)
            finally:
                replies.cancel()
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # either side hung up (or the proxy stops): the other goes too
        finally:
            for side in (writer, upstream_writer):
                if side is not None:
                    side.close()

    async def _count_and_forward(
        self, reader: asyncio.StreamReader, upstream: asyncio.StreamWriter
    ) -> None:
        while True:
            header = await reader.readexactly(5)
            kind, length = header[:1].decode(), struct.unpack("!i", header[1:])[0]
            payload = await reader.readexactly(length - 4)
            self._messages[kind] += 1
            upstream.write(header + payload)
            await upstream.drain()
            if kind == "X":
                return


async def _startup_packet(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bytes | None:
    """The client's startup (or cancel) packet, after declining SSL and GSS encryption."""
    while True:
        head = await reader.readexactly(8)
        length, code = struct.unpack("!ii", head)
        rest = await reader.readexactly(length - 8)
        if code not in (SSL_REQUEST, GSSENC_REQUEST):
            return head + rest
        writer.write(b"N")
        await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.CancelledError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    writer.close()


@contextlib.contextmanager
def counting(database_url: str) -> Iterator[PgCounter]:
    """A running proxy in front of `database_url`'s server, stopped on exit."""
    counter = PgCounter(Upstream.of(database_url)).start()
    try:
        yield counter
    finally:
        counter.stop()
