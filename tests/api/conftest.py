"""Fixtures of the in-process API tests: the app on the real PostgreSQL and Redis (emptied
first), its test client, a user with a key, and services that are away."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from shared.redis_client import get_redis
from shared.settings import get_settings
from tests.conftest import Account, Services, clear_process_caches


@pytest.fixture
def app(clean: Services) -> Flask:
    return create_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def alice(make_account: Callable[[str], Account]) -> Account:
    return make_account("alice")


@pytest.fixture
def unreachable(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process's settings point at a PostgreSQL and a Redis nobody listens on."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/promptq")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    clear_process_caches()
    yield
    monkeypatch.undo()
    clear_process_caches()


@pytest.fixture
def broker_unreachable(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Only Redis is away: this process's settings point at a Redis nobody listens on, while
    PostgreSQL (and the engine already built for it) stays reachable."""
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    get_settings.cache_clear()
    get_redis.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()
    get_redis.cache_clear()


@pytest.fixture
def admin_auth(clean: Services, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The admin API enabled with a fresh ADMIN_API_KEY; yields the admin's Authorization
    header."""
    key = "admin-" + uuid.uuid4().hex
    monkeypatch.setenv("ADMIN_API_KEY", key)
    get_settings.cache_clear()
    yield {"Authorization": f"Bearer {key}"}
    # The next get_settings() reads the environment monkeypatch restores after this fixture.
    get_settings.cache_clear()
