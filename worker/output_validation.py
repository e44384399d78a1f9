"""Check a reply against the job's `response_format` (JSON object, or a JSON Schema)."""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from worker.providers.base import InvalidOutputError


def validate_output(content: str, response_format: dict[str, Any] | None) -> None:
    """InvalidOutputError when the reply breaks the requested format; text passes as is."""
    kind = (response_format or {}).get("type", "text")
    if kind == "text":
        return
    try:
        value = json.loads(content)
    except ValueError:
        raise InvalidOutputError("The reply is not valid JSON.") from None
    if not isinstance(value, dict):
        raise InvalidOutputError("The reply is JSON but not an object.")
    if kind == "json_schema":
        schema = response_format.get("schema", {}) if response_format else {}
        try:
            jsonschema.validate(value, schema)
        except jsonschema.ValidationError as exc:
            raise InvalidOutputError(f"The reply breaks the JSON schema: {exc.message}") from None
