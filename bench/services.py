"""PostgreSQL and Redis for the bench: BENCH_DATABASE_URL / BENCH_REDIS_URL, else DATABASE_URL /
REDIS_URL, else embedded servers under .data/bench. The bench owns a database it recreates on
every run and two Redis database numbers it flushes: BENCH_REDIS_DBS, "14,15" by default (promptq,
then the baselines), away from the numbers engineers' test runs use."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil
import psycopg
import redis

from devstack.stack import migrate

DATABASE = "promptq_bench"


def redis_dbs() -> tuple[int, int]:
    """(promptq's Redis database number, the baselines')."""
    promptq, baseline = (int(n) for n in os.environ.get("BENCH_REDIS_DBS", "14,15").split(","))
    if promptq == baseline:
        raise ValueError("BENCH_REDIS_DBS needs two different database numbers")
    return promptq, baseline


@dataclass(frozen=True)
class Services:
    """Where the servers are: a maintenance database URL and a Redis URL without a db."""

    admin_url: str
    redis_server_url: str
    embedded: bool

    def database_url(self, name: str = DATABASE) -> str:
        return _with_path(self.admin_url, f"/{name}")

    def redis_url(self, db: int) -> str:
        return _with_path(self.redis_server_url, f"/{db}")


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url.replace("postgresql+psycopg://", "postgresql://", 1))
    return urlunsplit(parts._replace(path=path))


@contextlib.contextmanager
def bench_services(data_dir: Path) -> Iterator[Services]:
    """The configured servers, or embedded ones started for the block and stopped after it."""
    database_url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("BENCH_REDIS_URL") or os.environ.get("REDIS_URL")
    if database_url and redis_url:
        yield Services(_with_path(database_url, "/postgres"), _with_path(redis_url, ""), False)
        return
    from devstack.embedded import start_embedded  # only a machine without servers needs it

    embedded = start_embedded(data_dir, database="postgres")
    try:
        yield Services(
            _with_path(database_url or embedded.database_url, "/postgres"),
            _with_path(redis_url or embedded.redis_url, ""),
            True,
        )
    finally:
        embedded.stop()


def fresh_database(services: Services) -> str:
    """Drop and recreate the bench database, migrate it, and return its URL."""
    with psycopg.connect(services.admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{DATABASE}"')
    url = services.database_url()
    migrate(url)
    return url


def flush_redis(url: str) -> None:
    redis.Redis.from_url(url).flushdb()


def postgres_server(database_url: str) -> psutil.Process | None:
    """The postmaster serving `database_url`, if it runs on this machine (its backends and
    helpers are its children)."""
    with psycopg.connect(database_url) as connection:
        backend = connection.execute("SELECT pg_backend_pid()").fetchone()[0]
    with contextlib.suppress(psutil.Error):
        return psutil.Process(backend).parent()
    return None


def bench_postgres_processes(process: psutil.Process) -> bool:
    """Whether a postmaster child works for the bench: a backend of the bench database, or a
    server-wide helper (WAL writer, checkpointer...) that our writes keep busy too. Backends
    of other databases (another engineer's tests on a shared server) are left out."""
    title = " ".join(process.cmdline())
    is_client_backend = "[local]" in title or re.search(r"\(\d+\)", title) is not None
    return not is_client_backend or f" {DATABASE} " in f"{title} "


def redis_server(redis_url: str) -> psutil.Process | None:
    """The redis-server (or valkey-server) process behind `redis_url`, if it is local."""
    pid = redis.Redis.from_url(redis_url).info("server")["process_id"]
    with contextlib.suppress(psutil.Error):
        process = psutil.Process(int(pid))
        if "redis" in process.name() or "valkey" in process.name():
            return process
    return None
