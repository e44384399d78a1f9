"""`promptq submit | status | cancel | attempts | batch | usage`: the user's side of the command
line, over HTTP with the Python client (PROMPTQ_URL and PROMPTQ_KEY, or --url and --key).

Every failure is one line, `Error: <code>: <message>`, and exit status 1: an API error shows the
API's code, an unreachable API `connection_error`, a missing key `missing_key`."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click
import pydantic

from promptq.cli.output import (
    BatchProgress,
    JobProgress,
    as_json,
    attempt_line,
    dump,
    job_summary,
    show_stream_event,
    usage_lines,
)
from promptq.client.errors import PromptqClientError
from promptq.client.models import ResultEvent
from promptq.client.sync import Client
from promptq.client.transport import DEFAULT_URL

F = TypeVar("F", bound=Callable[..., Any])


def _connected(command: F) -> F:
    """Adds --url and --key, builds the Client the command gets as `client`, and turns every
    client error into one line."""

    @click.option(
        "--url",
        envvar="PROMPTQ_URL",
        default=DEFAULT_URL,
        show_default=True,
        help="The promptq API (PROMPTQ_URL).",
    )
    @click.option("--key", envvar="PROMPTQ_KEY", help="Your API key (PROMPTQ_KEY).")
    @functools.wraps(command)
    def run(url: str, key: str | None, **kwargs: Any) -> Any:
        try:
            with Client(url, key) as client:
                return command(client=client, **kwargs)
        except PromptqClientError as exc:
            raise click.ClickException(exc.one_line()) from None
        except pydantic.ValidationError as exc:
            # Caught here, or the admin group would call it an invalid setting.
            first = exc.errors()[0]
            where = ".".join(map(str, first["loc"]))
            raise click.ClickException(
                f"unexpected_response: the API's answer does not match this client "
                f"({where}: {first['msg']})"
            ) from None

    return run  # type: ignore[return-value]


def _messages(message: str | None, file: Path | None) -> list[dict[str, str]]:
    if file is not None and message is None:
        return [{"role": "user", "content": file.read_text(encoding="utf-8")}]
    if message is not None and file is None:
        return [{"role": "user", "content": message}]
    raise click.UsageError("Give a MESSAGE or --file, not both.")


@click.command("submit")
@click.argument("model")
@click.argument("message", required=False)
@click.option(
    "--file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the user message from this file instead.",
)
@click.option("--priority", type=click.Choice(["high", "normal", "low"]), help="Default normal.")
@click.option("--fallback", "fallbacks", multiple=True, help="A model to fall back to; repeat.")
@click.option("--max-tokens", type=click.IntRange(1), help="Most tokens to generate.")
@click.option("--wait", is_flag=True, help="Wait until the job is final, showing its status.")
@click.option(
    "--stream",
    "follow",
    is_flag=True,
    help="Print the answer's tokens as the model writes them, until the job is final.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0),
    default=300.0,
    show_default=True,
    help="Longest --wait, seconds.",
)
@click.option("--json", "as_json_out", is_flag=True, help="Print the job as JSON.")
@_connected
def submit(
    client: Client,
    model: str,
    message: str | None,
    file: Path | None,
    priority: str | None,
    fallbacks: tuple[str, ...],
    max_tokens: int | None,
    wait: bool,
    follow: bool,
    timeout: float,
    as_json_out: bool,
) -> None:
    """Submit MESSAGE (or --file) to MODEL as a job; print its id, with --wait its answer, with
    --stream its answer as it is written."""
    if follow and (wait or as_json_out):
        raise click.UsageError(
            "--stream prints the answer as it comes: leave out --wait and --json."
        )
    job = client.submit(
        model,
        _messages(message, file),
        priority=priority,
        fallbacks=fallbacks or None,
        max_tokens=max_tokens,
        stream=follow or None,
    )
    if follow:
        for event in client.stream(job.id):
            show_stream_event(event)
            if isinstance(event, ResultEvent):
                job = event.job
    elif wait:
        progress = None if as_json_out else JobProgress()
        job = client.wait(job.id, timeout=timeout, on_update=progress)
    if as_json_out:
        click.echo(as_json(job))
    elif not (wait or follow):
        click.echo(job.id)
    elif wait and job.result is not None and job.status == "succeeded":
        click.echo(job.result.content or "")
    if job.status in ("failed", "cancelled"):
        reason = f"{job.error.code}: {job.error.message}" if job.error else job.status
        raise click.ClickException(f"job {job.id} {job.status}: {reason}")


@click.command("status")
@click.argument("job_id")
@click.option("--json", "as_json_out", is_flag=True, help="Print the job as JSON.")
@_connected
def status(client: Client, job_id: str, as_json_out: bool) -> None:
    """Show job JOB_ID: status, model, tokens, cost, and its answer or error."""
    job = client.get(job_id)
    click.echo(as_json(job) if as_json_out else job_summary(job))


@click.command("cancel")
@click.argument("job_id")
@_connected
def cancel(client: Client, job_id: str) -> None:
    """Cancel job JOB_ID (refused once it has finished)."""
    job = client.cancel(job_id)
    click.echo(f"{job.id}: {job.status}")


@click.command("attempts")
@click.argument("job_id")
@click.option("--json", "as_json_out", is_flag=True, help="One JSON object a line.")
@_connected
def attempts(client: Client, job_id: str, as_json_out: bool) -> None:
    """List every provider call made for job JOB_ID, in order."""
    for attempt in client.attempts(job_id):
        click.echo(as_json(attempt) if as_json_out else attempt_line(attempt))


@click.command("usage")
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), help="First UTC day (YYYY-MM-DD).")
@click.option("--end", type=click.DateTime(["%Y-%m-%d"]), help="Last UTC day, inclusive.")
@click.option("--json", "as_json_out", is_flag=True, help="Print the report as JSON.")
@_connected
def usage(client: Client, start: Any, end: Any, as_json_out: bool) -> None:
    """Your billed requests, tokens and cost per UTC day and model (the last 30 days)."""
    report = client.usage(start.date() if start else None, end.date() if end else None)
    if as_json_out:
        click.echo(as_json(report))
    else:
        for line in usage_lines(report):
            click.echo(line)


@click.group("batch")
def batch() -> None:
    """Submit many jobs at once and read their results."""


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                job = json.loads(line)
            except ValueError as exc:
                raise click.ClickException(f"{path}:{number}: not JSON: {exc}") from None
            if not isinstance(job, dict):
                raise click.ClickException(f"{path}:{number}: not a JSON object")
            yield job


@batch.command("submit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--wait", is_flag=True, help="Wait until every job is final, with a progress bar.")
@click.option(
    "--timeout",
    type=click.FloatRange(0),
    default=3600.0,
    show_default=True,
    help="Longest --wait, seconds.",
)
@click.option("--json", "as_json_out", is_flag=True, help="Print the batch as JSON.")
@_connected
def batch_submit(client: Client, file: Path, wait: bool, timeout: float, as_json_out: bool) -> None:
    """Submit FILE.jsonl as a batch: one job body a line, each with a `custom_id`."""
    jobs = list(_jsonl(file))
    if not jobs:
        raise click.ClickException(f"{file}: no jobs")
    submitted = client.batches.submit(jobs)
    if wait:
        progress = None if as_json_out else BatchProgress()
        submitted = client.batches.wait(submitted.id, timeout=timeout, progress=progress)
    click.echo(as_json(submitted) if as_json_out else submitted.id)


@batch.command("cancel")
@click.argument("batch_id")
@_connected
def batch_cancel(client: Client, batch_id: str) -> None:
    """Cancel batch BATCH_ID: its queued jobs now, running ones finish (refused once settled)."""
    cancelled = client.batches.cancel(batch_id)
    click.echo(f"{cancelled.id}: {cancelled.status}")


@batch.command("results")
@click.argument("batch_id")
@_connected
def batch_results(client: Client, batch_id: str) -> None:
    """Print the finished jobs of batch BATCH_ID, one JSON object a line."""
    for result in client.batches.results(batch_id):
        click.echo(dump(result.model_dump(mode="json")))


USER_COMMANDS: tuple[click.Command, ...] = (submit, status, cancel, attempts, batch, usage)


def register_user_commands(group: click.Group) -> None:
    """Add the user commands to `group` (the `promptq` command of api/cli.py)."""
    for command in USER_COMMANDS:
        group.add_command(command)
