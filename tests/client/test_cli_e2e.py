"""The user commands of `promptq` through click's CliRunner against a real stack: submit (with
--wait and --json), status, attempts, cancel, batch submit --wait and batch results, usage; and
every failure as one line with the API's code, exit 1, no traceback."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from api.cli import main
from devstack.processes import free_port
from sim.replies import complete
from tests.client.conftest import FAILING, SLOW, Account
from tests.support.stack import RunningStack

pytestmark = pytest.mark.e2e

MODEL = "gpt-4o-mini"


def _run(stack: RunningStack, key: str | None, *args: str) -> Result:
    env = {"PROMPTQ_URL": stack.api_url, "PROMPTQ_KEY": key}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def _one_line_error(result: Result, code: str) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Error: {code}: "), lines[0]
    assert "Traceback" not in result.output
    return lines[0]


def test_submit_prints_the_job_id_then_status_and_attempts(
    stack: RunningStack, account: Account
) -> None:
    submitted = _run(stack, account.key, "submit", MODEL, "Say hi", "--priority", "low")
    assert submitted.exit_code == 0, submitted.output
    job_id = submitted.stdout.strip()
    assert uuid.UUID(job_id)
    waited = _run(stack, account.key, "status", job_id, "--json")
    assert json.loads(waited.stdout)["priority"] == "low"
    stack.wait_final(account.key, job_id)
    status = _run(stack, account.key, "status", job_id)
    assert status.exit_code == 0
    assert "status:   succeeded" in status.stdout
    attempts = _run(stack, account.key, "attempts", job_id)
    assert attempts.exit_code == 0
    assert attempts.stdout.startswith(f"1\topenai/{MODEL}\t")
    cancelled = _run(stack, account.key, "cancel", job_id)
    _one_line_error(cancelled, "job_not_cancellable")


def test_submit_wait_prints_the_answer_and_progress(
    stack: RunningStack, account: Account, tmp_path: Path
) -> None:
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Say hello in French.")
    result = _run(
        stack,
        account.key,
        "submit",
        MODEL,
        "--file",
        str(prompt),
        "--fallback",
        "gpt-4o",
        "--wait",
        "--timeout",
        "30",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip(), "no answer printed"
    assert result.stderr.strip().splitlines()[-1].endswith(": succeeded")


def test_submit_wait_json_gives_the_final_job(stack: RunningStack, account: Account) -> None:
    result = _run(stack, account.key, "submit", MODEL, "Hi", "--wait", "--json")
    assert result.exit_code == 0, result.output
    job = json.loads(result.stdout)
    assert job["status"] == "succeeded" and job["result"]["content"]


def test_submit_stream_prints_the_answer_as_it_comes(stack: RunningStack, account: Account) -> None:
    """--stream prints the tokens on stdout as they arrive, the whole answer and a newline."""
    result = _run(stack, account.key, "submit", str(SLOW["model"]), "Hi there", "--stream")
    assert result.exit_code == 0, result.output
    assert (
        result.stdout
        == complete(str(SLOW["model"]), [{"role": "user", "content": "Hi there"}], None).text + "\n"
    )
    refused = _run(stack, account.key, "submit", MODEL, "Hi", "--stream", "--json")
    assert refused.exit_code == 2 and "--stream" in refused.stderr


def test_a_failed_job_with_wait_is_one_line_and_exit_1(
    stack: RunningStack, account: Account
) -> None:
    fallbacks = [arg for model in FAILING["fallbacks"] for arg in ("--fallback", model)]
    result = _run(stack, account.key, "submit", FAILING["model"], "Hi", *fallbacks, "--wait")
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines()[-1].startswith("Error: job ")
    assert "Traceback" not in result.output


def test_batch_submit_wait_shows_progress_then_results(
    stack: RunningStack, account: Account, tmp_path: Path
) -> None:
    lines = [
        {"custom_id": f"c{n}", "model": MODEL, "messages": [{"role": "user", "content": f"n{n}"}]}
        for n in range(3)
    ]
    lines.append({"custom_id": "bad", **FAILING, "messages": [{"role": "user", "content": "x"}]})
    batch_file = tmp_path / "jobs.jsonl"
    batch_file.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    result = _run(stack, account.key, "batch", "submit", str(batch_file), "--wait")
    assert result.exit_code == 0, result.output
    batch_id = result.stdout.strip()
    assert uuid.UUID(batch_id)
    assert result.stderr.strip().splitlines()[-1].endswith("4/4 done, 1 failed")
    results = _run(stack, account.key, "batch", "results", batch_id)
    assert results.exit_code == 0, results.output
    by_id = {row["custom_id"]: row for row in map(json.loads, results.stdout.splitlines())}
    assert set(by_id) == {"c0", "c1", "c2", "bad"}
    assert by_id["bad"]["status"] == "failed"
    usage = _run(stack, account.key, "usage")
    assert usage.exit_code == 0, usage.output
    assert usage.stdout.strip().splitlines()[-1].startswith("total\t")
    report = json.loads(_run(stack, account.key, "usage", "--json").stdout)
    assert report["totals"]["requests"] >= 3


def test_an_unknown_job_is_one_line_not_found(stack: RunningStack, account: Account) -> None:
    _one_line_error(_run(stack, account.key, "status", str(uuid.uuid4())), "not_found")


def test_a_bad_key_is_one_line_unauthorized(stack: RunningStack) -> None:
    _one_line_error(_run(stack, "pq_wrong", "status", str(uuid.uuid4())), "unauthorized")


def test_a_missing_key_is_one_line(stack: RunningStack) -> None:
    _one_line_error(_run(stack, None, "usage"), "missing_key")


def test_a_refused_connection_is_one_line(account: Account) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        main,
        ["status", str(uuid.uuid4()), "--url", url, "--key", account.key],
        catch_exceptions=False,
    )
    line = _one_line_error(result, "connection_error")
    assert url in line


def test_a_validation_error_is_one_line(stack: RunningStack, account: Account) -> None:
    _one_line_error(_run(stack, account.key, "submit", "no-such-model", "Hi"), "unknown_model")
