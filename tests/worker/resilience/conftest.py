"""Real Redis clients for the resilience policies, one per simulated worker process."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis

from tests.conftest import Services

MakeRedis = Callable[[], redis.Redis]


@pytest.fixture
def make_redis(clean: Services) -> Iterator[MakeRedis]:
    """Fresh clients on the flushed test Redis; two of them stand for two worker processes."""
    clients: list[redis.Redis] = []

    def make() -> redis.Redis:
        client = redis.Redis.from_url(clean.redis_url)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


class ManualClock:
    """A clock the test moves by hand, so expiry and cooldowns need no waiting."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
