"""Fixtures of the worker tests: a simulator the provider adapters of this process talk to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.settings import get_settings
from tests.conftest import StartSim
from worker.providers import registry


@pytest.fixture
def sim(start_sim: StartSim, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A simulator the provider adapters of this process talk to."""
    url = start_sim()
    monkeypatch.setenv("OPENAI_BASE_URL", f"{url}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-sim")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-sim")
    get_settings.cache_clear()
    registry._provider.cache_clear()
    yield url
    get_settings.cache_clear()
    registry._provider.cache_clear()
