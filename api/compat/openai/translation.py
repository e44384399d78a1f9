"""An OpenAI batch input file, line by line, into promptq job bodies (BatchJobCreate): the same
validation a native batch's jobs get, with each refusal named by its line as OpenAI's batch
`errors` are ({code, line, message, param}, lines counted from 1)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import pydantic

from api.schemas.batches import BatchJobCreate
from shared.pricing import PRICE_TABLE

CHAT_COMPLETIONS = "/v1/chat/completions"
# The body fields promptq honours; any other would be dropped silently, so it is refused.
BODY_FIELDS = {"model", "messages", "max_tokens", "max_completion_tokens", "temperature"}


@dataclass
class Translated:
    jobs: list[BatchJobCreate] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def refuse(self, line: int, code: str, message: str, param: str | None = None) -> None:
        self.errors.append({"code": code, "line": line, "message": message, "param": param})


def translate(content: bytes, priority: Literal["high", "normal", "low"]) -> Translated:
    """Every line of `content` as a job of `priority`, or the reasons it cannot be one. Blank
    lines are skipped, as OpenAI does."""
    out = Translated()
    seen: set[str] = set()
    for number, raw in enumerate(content.splitlines(), start=1):
        if raw.strip():
            job = _job_of(out, number, raw, priority, seen)
            if job is not None:
                out.jobs.append(job)
    return out


def _job_of(
    out: Translated,
    number: int,
    raw: bytes,
    priority: Literal["high", "normal", "low"],
    seen: set[str],
) -> BatchJobCreate | None:
    try:
        line = json.loads(raw)
    except ValueError as exc:
        out.refuse(number, "invalid_json_line", f"This line is not valid JSON: {exc}.")
        return None
    if not isinstance(line, dict):
        out.refuse(number, "invalid_json_line", "Each line must be a JSON object.")
        return None
    custom_id = line.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        out.refuse(number, "missing_required_parameter", "custom_id is required.", "custom_id")
        return None
    if custom_id in seen:
        out.refuse(
            number,
            "duplicate_custom_id",
            f"custom_id {custom_id!r} appears more than once in the file.",
            "custom_id",
        )
        return None
    seen.add(custom_id)
    if line.get("method") != "POST":
        out.refuse(number, "invalid_method", "method must be 'POST'.", "method")
        return None
    if line.get("url") != CHAT_COMPLETIONS:
        out.refuse(number, "invalid_url", f"url must be {CHAT_COMPLETIONS!r}.", "url")
        return None
    body = line.get("body")
    if not isinstance(body, dict):
        out.refuse(number, "invalid_request", "body must be a JSON object.", "body")
        return None
    unsupported = sorted(set(body) - BODY_FIELDS)
    if unsupported:
        out.refuse(
            number,
            "unsupported_parameter",
            f"body fields {unsupported} are not supported; promptq takes {sorted(BODY_FIELDS)}.",
            f"body.{unsupported[0]}",
        )
        return None
    if body.get("model") not in PRICE_TABLE:
        out.refuse(
            number,
            "model_not_found",
            f"The model {body.get('model')!r} does not exist; GET /v1/models lists promptq's.",
            "body.model",
        )
        return None
    fields = {k: v for k, v in body.items() if k != "max_completion_tokens"}
    if "max_completion_tokens" in body:
        fields.setdefault("max_tokens", body["max_completion_tokens"])
    try:
        return BatchJobCreate.model_validate(
            {**fields, "custom_id": custom_id, "priority": priority}, strict=True
        )
    except pydantic.ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        param = "body." + ".".join(str(p) for p in first["loc"])
        out.refuse(number, "invalid_request", f"{param}: {first['msg']}", param)
        return None
