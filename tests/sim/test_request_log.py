"""The simulator's request log (GET /sim/requests): what each dialect was sent, oldest first,
emptied by POST /sim/reset."""

import anthropic
import openai
import requests


def test_request_log_keeps_both_dialects_bodies_until_reset(sim_url: str) -> None:
    """Each completion request's JSON body is kept with its path, in order; a reset empties it."""
    openai.OpenAI(
        base_url=f"{sim_url}/v1", api_key="sk-test", max_retries=0
    ).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "first"}], max_tokens=5
    )
    anthropic.Anthropic(base_url=sim_url, api_key="sk-ant-test", max_retries=0).messages.create(
        model="claude-haiku-4-5", messages=[{"role": "user", "content": "second"}], max_tokens=5
    )
    logged = requests.get(f"{sim_url}/sim/requests", timeout=5).json()["requests"]
    assert [entry["path"] for entry in logged] == ["/v1/chat/completions", "/v1/messages"]
    assert [entry["body"]["messages"][0]["content"] for entry in logged] == ["first", "second"]
    requests.post(f"{sim_url}/sim/reset", timeout=5).raise_for_status()
    assert requests.get(f"{sim_url}/sim/requests", timeout=5).json() == {"requests": []}
