"""Fixtures of the in-process API tests: the app on the real PostgreSQL and Redis (emptied
first), its test client, and a user with a key."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from tests.conftest import Account, Services


@pytest.fixture
def app(clean: Services) -> Flask:
    return create_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def alice(make_account: Callable[[str], Account]) -> Account:
    return make_account("alice")
