"""Message Batch requests (`{custom_id, params}`, params as the Messages API takes them) into
promptq job bodies (BatchJobCreate): the same validation a native batch's jobs get. A request
promptq cannot serve is refused with a 400 naming it (`requests.<i>.params.<field>`), before
any job is admitted; Anthropic would instead admit the batch and error that request, but a
refusal is what the caller can act on before it pays for the rest."""

from __future__ import annotations

from typing import Any, Literal

import pydantic

from api.compat.anthropic.schemas import BatchRequest
from api.compat.errors import CompatError
from api.schemas.batches import BatchJobCreate
from shared.pricing import PRICE_TABLE

# The params promptq honours; any other would be dropped silently, so it is refused.
PARAMS = {"model", "max_tokens", "messages", "system", "temperature", "metadata"}
# A text block's `cache_control` asks the provider to cache a prefix; promptq sends plain text
# and has its own response cache, so the hint is accepted and not passed on.
BLOCK_FIELDS = {"type", "text", "cache_control"}
# Text blocks of one message or system prompt are joined into one text, a paragraph apart.
BLOCK_SEPARATOR = "\n\n"


def translate(
    requests: list[BatchRequest], priority: Literal["high", "normal", "low"]
) -> list[BatchJobCreate]:
    """Every request as a job of `priority`, or a CompatError naming the first that cannot be
    one."""
    seen: set[str] = set()
    jobs = []
    for index, item in enumerate(requests):
        where = f"requests.{index}"
        if item.custom_id in seen:
            raise _refused(f"{where}.custom_id: {item.custom_id!r} is used by an earlier request.")
        seen.add(item.custom_id)
        jobs.append(_job_of(f"{where}.params", item, priority))
    return jobs


def _refused(message: str) -> CompatError:
    return CompatError(400, message)


def _job_of(
    where: str, item: BatchRequest, priority: Literal["high", "normal", "low"]
) -> BatchJobCreate:
    params = item.params
    unsupported = sorted(set(params) - PARAMS)
    if unsupported:
        raise _refused(f"{where}.{unsupported[0]}: not supported; promptq takes {sorted(PARAMS)}.")
    if "max_tokens" not in params:
        raise _refused(f"{where}.max_tokens: Field required.")
    if params.get("model") not in PRICE_TABLE:
        raise _refused(
            f"{where}.model: unknown model {params.get('model')!r}; GET /v1/models lists promptq's."
        )
    messages = params.get("messages")
    if not isinstance(messages, list):
        raise _refused(f"{where}.messages: a list of messages is required.")
    chat = [_message(f"{where}.messages.{i}", m) for i, m in enumerate(messages)]
    if "system" in params:
        chat.insert(0, {"role": "system", "content": _text(f"{where}.system", params["system"])})
    fields = {
        k: params[k] for k in ("model", "max_tokens", "temperature", "metadata") if k in params
    }
    try:
        return BatchJobCreate.model_validate(
            {**fields, "messages": chat, "custom_id": item.custom_id, "priority": priority},
            strict=True,
        )
    except pydantic.ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        param = ".".join(str(p) for p in first["loc"])
        raise _refused(f"{where}.{param}: {first['msg']}") from None


def _message(where: str, message: Any) -> dict[str, Any]:
    if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
        raise _refused(f"{where}.role: must be 'user' or 'assistant'.")
    if set(message) - {"role", "content"}:
        raise _refused(f"{where}: a message has only 'role' and 'content'.")
    return {"role": message["role"], "content": _text(f"{where}.content", message.get("content"))}


def _text(where: str, content: Any) -> Any:
    """A string, or the text of a list of text blocks; any other block is refused (promptq
    sends text only). Left as it is when neither, for BatchJobCreate to refuse by name."""
    if not isinstance(content, list):
        return content
    texts = []
    for i, block in enumerate(content):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise _refused(f"{where}.{i}.type: only text blocks are supported.")
        if not isinstance(block.get("text"), str):
            raise _refused(f"{where}.{i}.text: a string is required.")
        if set(block) - BLOCK_FIELDS:
            raise _refused(f"{where}.{i}: a text block takes only {sorted(BLOCK_FIELDS)}.")
        texts.append(block["text"])
    return BLOCK_SEPARATOR.join(texts)
