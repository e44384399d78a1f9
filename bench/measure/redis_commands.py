"""Redis commands served in a window, from INFO commandstats deltas (server-wide counters)."""

from __future__ import annotations

from collections import Counter

import redis


def command_counts(client: redis.Redis) -> Counter[str]:
    """Calls per command since the server started (or its stats were last reset)."""
    stats = client.info("commandstats")
    return Counter(
        {name.removeprefix("cmdstat_"): int(fields["calls"]) for name, fields in stats.items()}
    )


def delta(before: Counter[str], after: Counter[str]) -> Counter[str]:
    """Commands served between two snapshots; the bench's own INFO calls are left out."""
    served = after.copy()
    served.subtract(before)
    served.pop("info", None)
    return +served
