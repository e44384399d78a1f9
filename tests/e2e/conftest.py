"""One running stack per e2e module, on the session's test Postgres and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Services
from tests.support.stack import RunningStack, start_stack


@pytest.fixture(scope="module")
def stack(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    log_dir: Path = tmp_path_factory.mktemp("stack-logs")
    running = start_stack(services.database_url, services.redis_url, log_dir)
    yield running
    running.stop()
