"""Both adapters' finish reasons come out in promptq's one vocabulary."""

from __future__ import annotations

from typing import get_args

import pytest
from anthropic.types import StopReason
from openai.types.chat.chat_completion import Choice

from shared.finish_reasons import normalize
from worker.providers.anthropic import STOP_REASONS
from worker.providers.openai import FINISH_REASONS


@pytest.mark.parametrize(
    ("openai_reason", "expected"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("tool_calls", "tool_calls"),
        ("function_call", "tool_calls"),
        ("content_filter", "content_filter"),
    ],
)
def test_openai_finish_reasons(openai_reason: str, expected: str) -> None:
    """OpenAI's words map onto promptq's; the deprecated function_call is a tool call."""
    assert normalize(openai_reason, FINISH_REASONS) == expected


@pytest.mark.parametrize(
    ("anthropic_reason", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("pause_turn", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
def test_anthropic_stop_reasons(anthropic_reason: str, expected: str) -> None:
    """Anthropic's words map onto promptq's; a paused turn is an unfinished one, as max_tokens."""
    assert normalize(anthropic_reason, STOP_REASONS) == expected


def test_every_sdk_value_is_mapped() -> None:
    """Each value the installed SDKs declare has an entry: none falls to the default unseen."""
    openai_values = get_args(Choice.model_fields["finish_reason"].annotation)
    assert set(openai_values) == set(FINISH_REASONS)
    assert set(get_args(StopReason)) == set(STOP_REASONS)


def test_an_unknown_reason_counts_as_stop() -> None:
    """A value a newer API adds is `stop` until mapped (the result keeps the provider's own)."""
    assert normalize("brand_new_reason", FINISH_REASONS) == "stop"
    assert normalize("brand_new_reason", STOP_REASONS) == "stop"
