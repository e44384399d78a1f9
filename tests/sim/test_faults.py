"""Simulator fault injection, observed through the official SDKs on a real socket."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import requests

from devstack.processes import free_port, wait_until
from sim.config import SimConfig
from sim.faults import FaultInjector, FaultRule
from sim.replies import reply_text
from tests.conftest import StartSim

REPO_ROOT = Path(__file__).resolve().parents[2]
OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-haiku-4-5"
HI = [{"role": "user", "content": "Say hi in JSON."}]


def openai_client(base_url: str, timeout: float = 10) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{base_url}/v1", api_key="sk-test", max_retries=0, timeout=timeout
    )


def anthropic_client(base_url: str, timeout: float = 10) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=base_url, api_key="sk-ant-test", max_retries=0, timeout=timeout
    )


def call_openai(base_url: str, model: str = OPENAI_MODEL, **kwargs: Any) -> Any:
    return openai_client(base_url, kwargs.pop("timeout", 10)).chat.completions.create(
        model=model, messages=HI, **kwargs
    )


def call_anthropic(base_url: str, model: str = ANTHROPIC_MODEL, **kwargs: Any) -> Any:
    return anthropic_client(base_url, kwargs.pop("timeout", 10)).messages.create(
        model=model, max_tokens=50, messages=HI, **kwargs
    )


def put_rules(base_url: str, *rules: dict[str, Any]) -> requests.Response:
    return requests.put(f"{base_url}/sim/faults", json={"rules": list(rules)}, timeout=5)


def fault_header(kind: str, **extra: str) -> dict[str, str]:
    return {"x-sim-fault": kind, **extra}


@pytest.mark.parametrize(
    ("kind", "exc_type", "status"),
    [
        ("rate_limit", openai.RateLimitError, 429),
        ("server_error", openai.InternalServerError, 500),
        ("bad_gateway", openai.InternalServerError, 502),
        ("unavailable", openai.InternalServerError, 503),
        ("overloaded", openai.InternalServerError, 503),
    ],
)
def test_openai_error_faults_raise_the_sdks_status_errors(
    sim_url: str, kind: str, exc_type: type[openai.APIStatusError], status: int
) -> None:
    """Each error-status fault reaches the OpenAI SDK as its own exception and status."""
    with pytest.raises(exc_type) as caught:
        call_openai(sim_url, extra_headers=fault_header(kind, **{"x-sim-retry-after": "2"}))

    assert type(caught.value) is exc_type
    assert caught.value.status_code == status
    if kind == "rate_limit":
        assert caught.value.response.headers["retry-after"] == "2"
        assert caught.value.response.headers["retry-after-ms"] == "2000"
        assert caught.value.code == "rate_limit_exceeded"
    if kind == "overloaded":
        assert "overloaded" in caught.value.message


@pytest.mark.parametrize(
    ("kind", "exc_type", "status", "error_type"),
    [
        ("rate_limit", anthropic.RateLimitError, 429, "rate_limit_error"),
        ("server_error", anthropic.InternalServerError, 500, "api_error"),
        ("bad_gateway", anthropic.InternalServerError, 502, None),
        ("unavailable", anthropic.ServiceUnavailableError, 503, "api_error"),
        ("overloaded", anthropic.OverloadedError, 529, "overloaded_error"),
    ],
)
def test_anthropic_error_faults_raise_the_sdks_status_errors(
    sim_url: str,
    kind: str,
    exc_type: type[anthropic.APIStatusError],
    status: int,
    error_type: str | None,
) -> None:
    """Each error-status fault reaches the Anthropic SDK as its own exception and body."""
    with pytest.raises(exc_type) as caught:
        call_anthropic(sim_url, extra_headers=fault_header(kind, **{"x-sim-retry-after": "2"}))

    assert type(caught.value) is exc_type
    assert caught.value.status_code == status
    if error_type is None:
        assert "502 Bad Gateway" in caught.value.response.text
    else:
        assert caught.value.body["error"]["type"] == error_type
    if kind == "rate_limit":
        assert caught.value.response.headers["retry-after"] == "2"


@pytest.mark.parametrize("kind", ["drop", "cut"])
@pytest.mark.parametrize("call", [call_openai, call_anthropic])
def test_a_closed_connection_is_a_connection_error(sim_url: str, call: Any, kind: str) -> None:
    """A connection closed without an answer (drop), or half way through the body's
    Content-Length (cut), is the SDK's connection error, not a timeout or a status error."""
    sdk = openai if call is call_openai else anthropic

    with pytest.raises(sdk.APIConnectionError) as caught:
        call(sim_url, extra_headers=fault_header(kind))

    assert not isinstance(caught.value, sdk.APITimeoutError)
    stats = requests.get(f"{sim_url}/sim/stats", timeout=5).json()
    assert stats["faults_by_kind"] == {kind: 1}


@pytest.mark.parametrize("call", [call_openai, call_anthropic])
def test_hang_outlasts_the_client_timeout(start_sim: StartSim, call: Any) -> None:
    """A hang gives no answer, so a client with a short timeout raises its timeout error."""
    sim_url = start_sim(hang_s=3)
    sdk = openai if call is call_openai else anthropic
    started = time.monotonic()

    with pytest.raises(sdk.APITimeoutError):
        call(sim_url, extra_headers=fault_header("hang"), timeout=0.3)

    assert time.monotonic() - started < 3


@pytest.mark.parametrize("call", [call_openai, call_anthropic])
def test_malformed_body_is_not_json(sim_url: str, call: Any) -> None:
    """A malformed 200 makes the SDK fail to decode the body (a ValueError)."""
    with pytest.raises(ValueError):
        call(sim_url, extra_headers=fault_header("malformed"))


def test_json_response_format_gets_a_json_reply(sim_url: str) -> None:
    """With response_format json_object or json_schema the reply text is a JSON object."""
    json_schema = {
        "type": "json_schema",
        "json_schema": {"name": "greeting", "schema": {"type": "object"}},
    }
    for response_format in ({"type": "json_object"}, json_schema):
        completion = call_openai(sim_url, response_format=response_format)

        content = completion.choices[0].message.content
        assert json.loads(content) == {"reply": reply_text(OPENAI_MODEL, HI)}
        assert content == reply_text(OPENAI_MODEL, HI, "json")

    plain = call_openai(sim_url, response_format={"type": "text"})
    assert plain.choices[0].message.content == reply_text(OPENAI_MODEL, HI)


def test_unknown_response_format_is_a_400(sim_url: str) -> None:
    """An unsupported response_format type is refused the way OpenAI refuses it."""
    with pytest.raises(openai.BadRequestError) as caught:
        call_openai(sim_url, response_format={"type": "yaml"})

    assert caught.value.param == "response_format.type"


@pytest.mark.parametrize("call", [call_openai, call_anthropic])
def test_schema_violation_replies_with_prose(sim_url: str, call: Any) -> None:
    """schema_violation answers 200 with reply text that is not the JSON asked for."""
    extra = {"response_format": {"type": "json_object"}} if call is call_openai else {}

    answer = call(sim_url, extra_headers=fault_header("schema_violation"), **extra)

    text = answer.choices[0].message.content if call is call_openai else answer.content[0].text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    model = OPENAI_MODEL if call is call_openai else ANTHROPIC_MODEL
    assert text == reply_text(model, HI, "prose")


def test_outage_toggles_per_model_through_the_control_endpoint(sim_url: str) -> None:
    """PUT /sim/faults takes one model down while others answer; DELETE brings it back."""
    call_openai(sim_url)

    put = put_rules(sim_url, {"model": OPENAI_MODEL, "kind": "unavailable"})

    assert put.status_code == 200
    for _ in range(3):
        with pytest.raises(openai.InternalServerError):
            call_openai(sim_url)
    assert call_openai(sim_url, model="gpt-4o").choices[0].finish_reason == "stop"
    assert call_anthropic(sim_url).stop_reason == "end_turn"
    shown = requests.get(f"{sim_url}/sim/faults", timeout=5).json()
    assert shown == {
        "rules": [
            {
                "model": OPENAI_MODEL,
                "kind": "unavailable",
                "rate": 1.0,
                "retry_after_s": None,
                "latency_ms": None,
                "latency_jitter_ms": None,
            }
        ]
    }

    cleared = requests.delete(f"{sim_url}/sim/faults", timeout=5)

    assert cleared.json() == {"rules": []}
    assert call_openai(sim_url).choices[0].finish_reason == "stop"
    stats = requests.get(f"{sim_url}/sim/stats", timeout=5).json()
    assert stats["faults_by_kind"] == {"unavailable": 3}


def test_glob_rule_and_first_match_wins(sim_url: str) -> None:
    """Rules match model globs in order, so a specific rule placed first beats a wildcard."""
    put_rules(
        sim_url,
        {"model": "claude-*", "kind": "overloaded"},
        {"model": OPENAI_MODEL, "kind": "rate_limit", "retry_after_s": 4},
        {"model": "*", "kind": "server_error"},
    )

    with pytest.raises(anthropic.OverloadedError):
        call_anthropic(sim_url)
    with pytest.raises(openai.RateLimitError) as limited:
        call_openai(sim_url)
    with pytest.raises(openai.InternalServerError) as other:
        call_openai(sim_url, model="gpt-4o")

    assert limited.value.response.headers["retry-after"] == "4"
    assert other.value.status_code == 500


@pytest.mark.parametrize("rate", [0.3, 0.5, 0.7])
def test_rule_rate_fails_exactly_that_share(sim_url: str, rate: float) -> None:
    """A rule at rate r fails exactly r of every ten calls, spread evenly."""
    put_rules(sim_url, {"model": OPENAI_MODEL, "kind": "server_error", "rate": rate})
    failed: list[int] = []

    for call_number in range(1, 11):
        try:
            call_openai(sim_url)
        except openai.InternalServerError:
            failed.append(call_number)

    assert len(failed) == round(rate * 10)
    expected = [n for n in range(1, 11) if int(n * rate + 1e-9) > int((n - 1) * rate + 1e-9)]
    assert failed == expected
    stats = requests.get(f"{sim_url}/sim/stats", timeout=5).json()
    assert stats["faults_by_kind"] == {"server_error": round(rate * 10)}


def test_header_rate_fails_exactly_that_share(sim_url: str) -> None:
    """x-sim-fault-rate keeps its own exact sequence per (kind, rate)."""
    headers = fault_header("rate_limit", **{"x-sim-fault-rate": "0.3"})
    outcomes = []
    for _ in range(10):
        try:
            call_anthropic(sim_url, extra_headers=headers)
            outcomes.append("ok")
        except anthropic.RateLimitError:
            outcomes.append("429")

    assert outcomes.count("429") == 3


def test_putting_rules_restarts_the_rate_sequence(sim_url: str) -> None:
    """Re-putting a rule starts its count again, so a 50% rule first fails on call two."""
    rule = {"model": OPENAI_MODEL, "kind": "server_error", "rate": 0.5}
    put_rules(sim_url, rule)
    call_openai(sim_url)
    put_rules(sim_url, rule)

    call_openai(sim_url)
    with pytest.raises(openai.InternalServerError):
        call_openai(sim_url)


def test_layers_header_over_rule_over_config(start_sim: StartSim) -> None:
    """A header fault beats a model rule, and a model rule beats the process-wide default."""
    sim_url = start_sim(fault="server_error")
    put_rules(sim_url, {"model": OPENAI_MODEL, "kind": "rate_limit"})

    with pytest.raises(openai.InternalServerError) as config_default:
        call_openai(sim_url, model="gpt-4o")
    with pytest.raises(openai.RateLimitError):
        call_openai(sim_url)
    with pytest.raises(openai.APIConnectionError):
        call_openai(sim_url, extra_headers=fault_header("drop"))

    assert config_default.value.status_code == 500


def test_latency_only_rule_delays_its_model(sim_url: str) -> None:
    """A rule without a kind only slows its model down."""
    put_rules(sim_url, {"model": OPENAI_MODEL, "latency_ms": 300})
    started = time.monotonic()

    completion = call_openai(sim_url)

    assert time.monotonic() - started >= 0.3
    assert completion.choices[0].finish_reason == "stop"


def test_jitter_is_seeded_and_bounded() -> None:
    """Jittered latency stays within [latency, latency + jitter] and replays under one seed."""
    config = SimConfig(latency_ms=100, latency_jitter_ms=50, seed=7)
    first, second = FaultInjector(config), FaultInjector(config)

    delays = [first.plan(OPENAI_MODEL, {}).latency_ms for _ in range(20)]

    assert delays == [second.plan(OPENAI_MODEL, {}).latency_ms for _ in range(20)]
    assert all(100 <= delay <= 150 for delay in delays)
    assert len(set(delays)) > 1
    first.set_rules((FaultRule(model="*", latency_ms=10, latency_jitter_ms=0),))
    assert first.plan(OPENAI_MODEL, {}).latency_ms == 10


@pytest.mark.parametrize(
    "rules",
    [
        [{"model": OPENAI_MODEL, "kind": "meltdown"}],
        [{"model": OPENAI_MODEL, "kind": "hang", "rate": 1.5}],
        [{"model": OPENAI_MODEL, "kind": "hang", "colour": "red"}],
        [{"kind": "hang"}],
    ],
)
def test_invalid_rules_are_refused_and_change_nothing(sim_url: str, rules: list[Any]) -> None:
    """Bad rules get a 400 with details, and the previous rules stay in force."""
    put_rules(sim_url, {"model": "*", "latency_ms": 1})

    response = put_rules(sim_url, *rules)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_fault_rules"
    assert response.json()["error"]["details"]
    shown = requests.get(f"{sim_url}/sim/faults", timeout=5).json()["rules"]
    assert [rule["latency_ms"] for rule in shown] == [1]


def test_bad_fault_headers_are_provider_shaped_400s(sim_url: str) -> None:
    """An unknown x-sim-fault, or a rate without a kind, is a 400 in each dialect."""
    with pytest.raises(openai.BadRequestError, match="x-sim-fault must be one of"):
        call_openai(sim_url, extra_headers={"x-sim-fault": "meltdown"})
    with pytest.raises(anthropic.BadRequestError, match="x-sim-fault-rate needs x-sim-fault"):
        call_anthropic(sim_url, extra_headers={"x-sim-fault-rate": "0.5"})
    with pytest.raises(openai.BadRequestError, match="x-sim-fault-rate"):
        call_openai(sim_url, extra_headers=fault_header("drop", **{"x-sim-fault-rate": "2"}))


def test_stats_keep_max_in_flight_per_model(start_sim: StartSim) -> None:
    """/sim/stats reports the most calls each model had in flight at once."""
    sim_url = start_sim(latency_ms=3000)
    threads = [threading.Thread(target=call_openai, args=(sim_url,)) for _ in range(4)] + [
        threading.Thread(target=call_anthropic, args=(sim_url,))
    ]
    for thread in threads:
        thread.start()

    def stats() -> dict[str, Any]:
        return requests.get(f"{sim_url}/sim/stats", timeout=5).json()

    wait_until(lambda: stats()["in_flight"] == 5, timeout=10, interval=0.02, what="5 in flight")
    for thread in threads:
        thread.join(timeout=15)
    # A client holds its answer a moment before the simulator's handler has counted the call
    # out: the count settles, it is not 0 the instant the threads end.
    wait_until(lambda: stats()["in_flight"] == 0, timeout=10, interval=0.02, what="0 in flight")

    final = stats()
    assert final["max_in_flight_by_model"] == {OPENAI_MODEL: 4, ANTHROPIC_MODEL: 1}
    assert final["max_in_flight"] == 5


def test_cli_fault_flags_and_shutdown_releases_a_hang() -> None:
    """`python -m sim --fault hang` hangs calls, and SIGTERM ends the hang and exits 0 at once."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "sim", "--port", str(port), "--fault", "hang"],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stderr=subprocess.PIPE,
    )
    errors: list[Exception] = []

    def hanging_call() -> None:
        try:
            call_openai(base_url, timeout=60)
        except Exception as exc:
            errors.append(exc)

    caller = threading.Thread(target=hanging_call)
    try:
        wait_until(lambda: requests.get(f"{base_url}/health", timeout=1).ok, timeout=15)
        caller.start()
        wait_until(
            lambda: requests.get(f"{base_url}/sim/stats", timeout=1).json()["in_flight"] == 1,
            timeout=10,
            what="the hanging call",
        )
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
        caller.join(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 0, stderr.decode()
    assert time.monotonic() - started < 5
    assert len(errors) == 1
    assert type(errors[0]) is openai.APIConnectionError


def test_cli_refuses_an_out_of_range_rate() -> None:
    """`--fault-rate 2` is a usage error (exit 2), not a traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "sim", "--fault", "drop", "--fault-rate", "2"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert done.returncode == 2
    assert "fault_rate must be within [0, 1]" in done.stderr
