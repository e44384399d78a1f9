"""Real services for every test: PostgreSQL, Redis and the provider simulator on real sockets.

TEST_DATABASE_URL / TEST_REDIS_URL name the servers to use; when unset, embedded PostgreSQL and
Valkey are started exactly as `make dev` starts them. The test database is dropped, recreated
and migrated once per run; every test that asks for `clean` starts from empty tables and an
empty Redis database.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest
import redis
from sqlalchemy import make_url, text
from werkzeug.serving import BaseWSGIServer, make_server

from devstack.embedded import start_embedded
from devstack.stack import ROOT, migrate
from shared.db import get_autocommit_session_factory, get_engine, get_session_factory
from shared.models import Base
from shared.queueing import bulk_producer_app, producer_app
from shared.redis_client import get_redis
from shared.settings import get_settings, normalize_database_url
from sim.app import FAULTS_EXTENSION
from sim.app import create_app as create_sim_app
from sim.config import SimConfig
from tests.support.recording_receiver import WEBHOOK_ENV, Receiver


@dataclass(frozen=True)
class Services:
    database_url: str
    redis_url: str


def _recreate_database(database_url: str) -> None:
    url = make_url(database_url)
    admin = url.set(drivername="postgresql", database="postgres")
    name = url.database
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def clear_process_caches() -> None:
    """Forget this process's settings and everything built from them (engine, sessions, Redis
    client, producers), so the next use follows the environment as it is now."""
    engine = get_engine() if get_engine.cache_info().currsize else None
    if engine is not None:
        engine.dispose()
    for cached in (
        get_settings,
        get_engine,
        get_session_factory,
        get_autocommit_session_factory,
        get_redis,
        producer_app,
        bulk_producer_app,
    ):
        cached.cache_clear()


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    """The PostgreSQL and Redis this run uses, with a freshly migrated test database."""
    database_url = os.environ.get("TEST_DATABASE_URL")
    redis_url = os.environ.get("TEST_REDIS_URL")
    embedded = None
    if not database_url or not redis_url:
        embedded = start_embedded(ROOT / ".data" / "test", database="promptq_test")
        database_url = database_url or embedded.database_url
        redis_url = redis_url or embedded.redis_url
    database_url = normalize_database_url(database_url)
    _recreate_database(database_url)
    migrate(database_url)
    os.environ["DATABASE_URL"] = database_url
    os.environ["REDIS_URL"] = redis_url
    os.environ["LOG_JSON"] = "true"
    clear_process_caches()
    yield Services(database_url=database_url, redis_url=redis_url)
    get_engine().dispose()
    if embedded is not None:
        embedded.stop()


@pytest.fixture
def clean(services: Services) -> Iterator[Services]:
    """Empty tables and an empty Redis database before the test."""
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with get_engine().begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} CASCADE"))
    redis.Redis.from_url(services.redis_url).flushdb()
    yield services


StartSim = Callable[..., str]


@pytest.fixture
def start_sim() -> Iterator[StartSim]:
    """Start simulators on free ports (SimConfig kwargs pass through); yields base URLs."""
    running: list[tuple[BaseWSGIServer, threading.Thread]] = []

    def start(**config: object) -> str:
        server = make_server("127.0.0.1", 0, create_sim_app(SimConfig(**config)), threaded=True)
        # A short poll interval keeps shutdown (and so each test's teardown) quick.
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        running.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server, thread in running:
        # Hanging fault calls would otherwise hold their threads for the whole hang.
        server.app.extensions[FAULTS_EXTENSION].release()
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.fixture
def sim_url(start_sim: StartSim) -> str:
    """Base URL of a simulator with default config."""
    return start_sim()


@dataclass(frozen=True)
class Account:
    user_id: str
    name: str
    key: str


@pytest.fixture
def worker_is_alive(clean: Services) -> None:
    """A job worker's heartbeat of 100 slots, without the worker: the API dispatches what it
    admits into the broker's window (and a claim may take it), as with workers running."""
    from tests.support.workers import worker_alive

    worker_alive(slots=100)


@pytest.fixture
def make_account(clean: Services) -> Callable[[str], Account]:
    """Create a user with one API key, through the same repositories the CLI uses."""
    from shared.db import transaction
    from shared.repositories.api_keys import issue_key
    from shared.repositories.audit_log import CLI
    from shared.repositories.users import create_user

    def make(name: str = "alice") -> Account:
        with transaction() as session:
            user = create_user(session, name, actor=CLI)
            issued = issue_key(session, user, actor=CLI)
        return Account(user_id=str(user.id), name=name, key=issued.plaintext)

    return make


@pytest.fixture
def webhook_env(clean: Services, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Webhook settings for the test (WEBHOOK_ENV); call the result to change more of them."""

    def apply(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    apply(**WEBHOOK_ENV)
    yield apply
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()
