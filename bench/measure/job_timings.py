"""Figures read from promptq's job rows: the database clock, so every process agrees."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from bench.stats import percentile


@dataclass(frozen=True)
class Completion:
    """How a set of jobs finished: counts and the rate between first start and last finish."""

    total: int
    succeeded: int
    failed: int
    unfinished: int
    first_start: datetime | None
    last_finish: datetime | None

    @property
    def seconds(self) -> float:
        if self.first_start is None or self.last_finish is None:
            return 0.0
        return (self.last_finish - self.first_start).total_seconds()

    @property
    def jobs_per_s(self) -> float:
        return self.succeeded / self.seconds if self.seconds > 0 else 0.0


def database_now(connection: psycopg.Connection) -> datetime:
    """The database's clock: the mark that selects the jobs created after it."""
    return connection.execute("SELECT clock_timestamp()").fetchone()[0]


def finished_count(
    connection: psycopg.Connection, since: datetime, priority: str | None = None
) -> int:
    """Jobs created since `since` (of one priority, if given) that reached a final state."""
    row = connection.execute(
        "SELECT count(*) FROM jobs WHERE created_at >= %s AND finished_at IS NOT NULL "
        "AND (%s::text IS NULL OR priority = %s)",
        (since, priority, priority),
    ).fetchone()
    return row[0]


def started_count(connection: psycopg.Connection, since: datetime) -> int:
    """Jobs created since `since` that a worker has started."""
    row = connection.execute(
        "SELECT count(*) FROM jobs WHERE created_at >= %s AND started_at IS NOT NULL", (since,)
    ).fetchone()
    return row[0]


def completion(connection: psycopg.Connection, since: datetime) -> Completion:
    row = connection.execute(
        """
        SELECT count(*),
               count(*) FILTER (WHERE status = 'succeeded'),
               count(*) FILTER (WHERE status = 'failed'),
               count(*) FILTER (WHERE finished_at IS NULL),
               min(started_at), max(finished_at)
        FROM jobs WHERE created_at >= %s
        """,
        (since,),
    ).fetchone()
    return Completion(*row)


def start_latencies_ms(
    connection: psycopg.Connection, since: datetime, priority: str
) -> list[float]:
    """started_at - created_at of the jobs of one priority created since `since`."""
    rows = connection.execute(
        """
        SELECT extract(epoch FROM started_at - created_at) * 1000 FROM jobs
        WHERE created_at >= %s AND priority = %s AND started_at IS NOT NULL
        """,
        (since, priority),
    ).fetchall()
    return [float(r[0]) for r in rows]


def overhead_ms(connection: psycopg.Connection, job_ids: list[str]) -> dict[str, float]:
    """Per job: finished_at - created_at minus the provider time of its attempts (their
    latency_ms), i.e. what promptq itself added between accepting a job and finishing it."""
    rows = connection.execute(
        """
        SELECT j.id::text,
               extract(epoch FROM j.finished_at - j.created_at) * 1000
                 - coalesce(sum(a.latency_ms), 0)
        FROM jobs j LEFT JOIN job_attempts a ON a.job_id = j.id
        WHERE j.id = ANY(%s::uuid[]) AND j.finished_at IS NOT NULL
        GROUP BY j.id
        """,
        (job_ids,),
    ).fetchall()
    return {job_id: float(ms) for job_id, ms in rows}


def provider_ms(connection: psycopg.Connection, job_ids: list[str]) -> dict[str, float]:
    """Per job: the summed latency_ms of its attempts (the provider's share of its time)."""
    rows = connection.execute(
        """
        SELECT job_id::text, sum(latency_ms) FROM job_attempts
        WHERE job_id = ANY(%s::uuid[]) GROUP BY job_id
        """,
        (job_ids,),
    ).fetchall()
    return {job_id: float(ms) for job_id, ms in rows}


def percentiles(values: list[float]) -> dict[str, float]:
    return {f"p{q}": percentile(values, q) for q in (50, 90, 99)}
