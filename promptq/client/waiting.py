"""Waiting for a job or a batch to finish, within an overall deadline."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from promptq.client.errors import WaitTimeout

T = TypeVar("T")

FIRST_INTERVAL_S = 0.1
MAX_INTERVAL_S = 2.0
GROWTH = 1.5


def intervals(first: float = FIRST_INTERVAL_S, cap: float = MAX_INTERVAL_S) -> Iterator[float]:
    """Poll intervals: short at first (most jobs finish in a second or two), growing to `cap` so
    a long job costs few requests."""
    interval = first
    while True:
        yield interval
        interval = min(cap, interval * GROWTH)


def wait_until_final(
    fetch: Callable[[], T],
    is_final: Callable[[T], bool],
    timeout: float,
    on_update: Callable[[T], None] | None = None,
    what: str = "the job",
) -> T:
    """Fetch until `is_final`, for at most `timeout` seconds overall; WaitTimeout (with the last
    state seen) after that. `on_update` gets every state fetched, the final one included.

    It polls with a short, growing interval: for what the server cannot long-poll (batches)."""
    deadline = time.monotonic() + timeout
    pauses = intervals()
    while True:
        state = fetch()
        if on_update is not None:
            on_update(state)
        if is_final(state):
            return state
        left = deadline - time.monotonic()
        if left <= 0:
            raise WaitTimeout(f"{what} was not final after {timeout:g} s", last=state)
        time.sleep(min(next(pauses), left))


# The server's longest long-poll (GET /v1/jobs/<id>?wait=N).
LONG_POLL_MAX_S = 30.0


def long_poll_until_final(
    fetch: Callable[[float], T],
    is_final: Callable[[T], bool],
    timeout: float,
    on_update: Callable[[T], None] | None = None,
    what: str = "the job",
) -> T:
    """Like wait_until_final, but `fetch(wait)` is a long-poll the server holds for up to `wait`
    seconds and answers as soon as the state is final: no sleeping here, no request wasted."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        state = fetch(min(LONG_POLL_MAX_S, max(0.0, left)))
        if on_update is not None:
            on_update(state)
        if is_final(state):
            return state
        if deadline - time.monotonic() <= 0:
            raise WaitTimeout(f"{what} was not final after {timeout:g} s", last=state)
