"""compute_backoff: exponential, capped, fully jittered, and never shorter than Retry-After."""

from __future__ import annotations

import random

import pytest

from worker.resilience.backoff import compute_backoff


class Extreme:
    """An RNG that always draws the top (or bottom) of the range, to expose the ceiling."""

    def __init__(self, top: bool) -> None:
        self.top = top

    def uniform(self, a: float, b: float) -> float:
        return b if self.top else a


def test_ceiling_doubles_per_attempt_up_to_the_cap() -> None:
    """The largest possible wait doubles with each attempt until it reaches the cap."""
    ceilings = [compute_backoff(n, base=0.5, cap=5, rng=Extreme(top=True)) for n in range(1, 8)]

    assert ceilings == [0.5, 1, 2, 4, 5, 5, 5]


def test_full_jitter_spreads_waits_over_the_whole_range() -> None:
    """Draws fall anywhere in [0, ceiling], not just near the ceiling."""
    rng = random.Random(42)

    waits = [compute_backoff(4, base=1, cap=100, rng=rng) for _ in range(500)]

    assert all(0 <= wait <= 8 for wait in waits)
    assert min(waits) < 0.5
    assert max(waits) > 7.5
    assert compute_backoff(4, base=1, cap=100, rng=Extreme(top=False)) == 0


@pytest.mark.parametrize("retry_after", [0.0, 3.0, 60.0])
def test_retry_after_is_a_floor_even_above_the_cap(retry_after: float) -> None:
    """A provider's Retry-After is never shortened, by the jitter or by the cap."""
    rng = random.Random(7)

    waits = [
        compute_backoff(3, base=1, cap=10, retry_after=retry_after, rng=rng) for _ in range(50)
    ]

    assert all(wait >= retry_after for wait in waits)
    assert compute_backoff(1, base=1, cap=10, retry_after=retry_after, rng=Extreme(False)) == (
        retry_after
    )


def test_huge_attempt_numbers_stay_at_the_cap() -> None:
    """Attempt numbers far past any real retry count neither overflow nor exceed the cap."""
    assert compute_backoff(10_000, base=1, cap=30, rng=Extreme(top=True)) == 30


def test_attempts_count_from_one() -> None:
    """Attempt 0 is a caller bug (no try has failed yet) and is refused."""
    with pytest.raises(ValueError):
        compute_backoff(0, base=1, cap=10)
