"""Deterministic reply text and token accounting shared by both provider dialects.

Tests import these to compute the exact content and usage the simulator will report.
"""

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

# "json": a JSON object, as OpenAI's response_format json_object / json_schema promise;
# "prose": chatter that is no JSON at all, the answer a schema_violation fault gives instead.
ReplyForm = Literal["text", "json", "prose"]

# Roughly what real BPE tokenizers average on English text; good enough for cost maths.
CHARS_PER_TOKEN = 4
# Real chat formats wrap every message in role/separator tokens.
PER_MESSAGE_OVERHEAD = 4
PROMPT_EXCERPT_CHARS = 200
# A word with the spaces after it: the pieces a streamed reply arrives in.
_PIECE = re.compile(r"\S+\s*|\s+")


@dataclass(frozen=True)
class Completion:
    text: str
    input_tokens: int
    output_tokens: int
    # True when the reply was cut to honour the request's max tokens.
    truncated: bool


def count_tokens(text: str) -> int:
    """Tokens in `text`: ceil(len / CHARS_PER_TOKEN), so any non-empty text costs at least 1."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def content_text(content: Any) -> str:
    """Plain text of a message content: a string, or a list of content parts.

    Non-text parts (images, tool results) carry no text, so they count as nothing.
    """
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"]
            for part in content
            if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        )
    return ""


def prompt_tokens(messages: Sequence[Mapping[str, Any]], system: Any = None) -> int:
    """Input tokens: per message, its text tokens plus PER_MESSAGE_OVERHEAD.

    A separate `system` prompt (Anthropic's top-level param) counts as one more message.
    """
    texts = [content_text(message.get("content")) for message in messages]
    if system:
        texts.append(content_text(system))
    return sum(count_tokens(text) + PER_MESSAGE_OVERHEAD for text in texts)


def reply_text(model: str, messages: Sequence[Mapping[str, Any]], form: ReplyForm = "text") -> str:
    """The untruncated reply: names the model and echoes the start of the last user message.

    In "json" form that sentence is the `reply` field of a JSON object.
    """
    last_user = next(
        (content_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"),
        "",
    )
    text = f"Simulated reply from {model} to: {last_user[:PROMPT_EXCERPT_CHARS]}"
    if form == "json":
        return json.dumps({"reply": text})
    if form == "prose":
        return f"Sure! Here is what you asked for. {text}"
    return text


def complete(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    max_tokens: int | None,
    system: Any = None,
    form: ReplyForm = "text",
) -> Completion:
    """The full simulated answer: text cut to `max_tokens` if needed, plus usage."""
    text = reply_text(model, messages, form)
    truncated = False
    if max_tokens is not None and count_tokens(text) > max_tokens:
        text = text[: max_tokens * CHARS_PER_TOKEN]
        truncated = True
    return Completion(
        text=text,
        input_tokens=prompt_tokens(messages, system),
        output_tokens=count_tokens(text),
        truncated=truncated,
    )


def reply_pieces(text: str) -> list[str]:
    """`text` in the pieces a streamed answer sends it in (a word and its trailing spaces each);
    joined, they are the text again."""
    return _PIECE.findall(text)
