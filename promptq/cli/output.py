"""How the user commands show things: progress on stderr (so stdout stays the answer, fit for a
pipe), results on stdout, JSON when asked."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from pydantic import BaseModel

from promptq.client.models import (
    Attempt,
    Batch,
    FallbackEvent,
    Job,
    RetryEvent,
    StreamEvent,
    TokenEvent,
    UsageReport,
)


def as_json(model: BaseModel) -> str:
    return json.dumps(model.model_dump(mode="json"), ensure_ascii=False)


class JobProgress:
    """Prints a line on stderr each time the job's status changes."""

    def __init__(self) -> None:
        self._last: str | None = None

    def __call__(self, job: Job) -> None:
        if job.status == self._last:
            return
        self._last = job.status
        click.echo(f"{job.id}: {job.status}", err=True)


class BatchProgress:
    """A progress bar of a batch: done/total and how many failed, redrawn on stderr."""

    WIDTH = 30

    def __init__(self) -> None:
        self._last: tuple[int, int, int] | None = None
        self._tty = sys.stderr.isatty()

    def __call__(self, batch: Batch) -> None:
        counts = batch.counts
        state = (counts.done, counts.total, counts.failed)
        if state == self._last:
            return
        self._last = state
        filled = self.WIDTH * counts.done // counts.total if counts.total else self.WIDTH
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        line = f"[{bar}] {counts.done}/{counts.total} done, {counts.failed} failed"
        if self._tty:
            end = "\n" if batch.is_final else ""
            click.echo(f"\r{line}", err=True, nl=False)
            if end:
                click.echo(err=True)
        else:
            click.echo(line, err=True)


def show_stream_event(event: StreamEvent) -> None:
    """The answer on stdout as its tokens arrive, ended by a newline with the result; a note on
    stderr where the text printed so far is void (another attempt, or model, follows)."""
    if isinstance(event, TokenEvent):
        click.echo(event.text, nl=False)
        return
    click.echo()
    if isinstance(event, RetryEvent):
        click.echo(f"[{event.error}: trying {event.model} again; discard the above]", err=True)
    elif isinstance(event, FallbackEvent):
        click.echo(
            f"[{event.error}: {event.to} answers instead of {event.from_model}; discard the above]",
            err=True,
        )


def job_summary(job: Job) -> str:
    lines = [
        f"id:       {job.id}",
        f"status:   {job.status}",
        f"model:    {job.model} ({job.priority})",
        f"tokens:   {job.usage.input_tokens} in, {job.usage.output_tokens} out",
        f"cost_usd: {job.cost_usd}",
    ]
    if job.error is not None:
        lines.append(f"error:    {job.error.code}: {job.error.message}")
    if job.result is not None and job.result.content is not None:
        lines.append(f"result:   {job.result.content}")
    return "\n".join(lines)


def attempt_line(attempt: Attempt) -> str:
    error = f"{attempt.error_code}: {attempt.error_message}" if attempt.error_code else "-"
    return (
        f"{attempt.number}\t{attempt.provider}/{attempt.model}\t{attempt.outcome}\t"
        f"{attempt.latency_ms} ms\t{attempt.input_tokens}+{attempt.output_tokens} tokens\t"
        f"{attempt.cost_usd} USD\t{error}"
    )


def usage_lines(report: UsageReport) -> list[str]:
    lines = [f"{report.start} to {report.end}"]
    lines += [
        f"{row.date}\t{row.model}\t{row.requests} requests\t"
        f"{row.input_tokens}+{row.output_tokens} tokens\t{row.cost_usd} USD"
        for row in report.data
    ]
    totals = report.totals
    lines.append(
        f"total\t{totals.requests} requests\t{totals.input_tokens}+{totals.output_tokens} "
        f"tokens\t{totals.cost_usd} USD"
    )
    return lines


def dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
