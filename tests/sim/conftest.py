"""Fixtures running the provider simulator in-process on a real socket."""

import threading
from collections.abc import Callable, Iterator

import pytest
from werkzeug.serving import BaseWSGIServer, make_server

from sim.app import create_app
from sim.config import SimConfig

StartSim = Callable[..., str]


@pytest.fixture
def start_sim() -> Iterator[StartSim]:
    """Start simulators on free ports (SimConfig kwargs pass through); yields base URLs."""
    running: list[tuple[BaseWSGIServer, threading.Thread]] = []

    def start(**config: float) -> str:
        server = make_server("127.0.0.1", 0, create_app(SimConfig(**config)), threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        running.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server, thread in running:
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.fixture
def sim_url(start_sim: StartSim) -> str:
    """Base URL of a simulator with default config."""
    return start_sim()
