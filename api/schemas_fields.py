"""Pieces of job bodies shared by POST /v1/jobs and POST /v1/batches: metadata rules, the
NUL check PostgreSQL needs, and the response_format models (pydantic)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from jsonschema import SchemaError
from jsonschema.validators import validator_for
from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_METADATA_KEYS = 16
MAX_METADATA_BYTES = 4096
# PostgreSQL text and JSONB cannot hold NUL; refuse it at the edge rather than fail on insert.
NO_NUL = r"^[^\x00]*$"


METADATA_DOC: dict[str, Any] = {
    "maxProperties": MAX_METADATA_KEYS,
    "description": f"Yours, returned as given: at most {MAX_METADATA_KEYS} keys and "
    f"{MAX_METADATA_BYTES} bytes of JSON.",
}


def without_nul(value: Any) -> Any:
    """`value` (any JSON) unchanged, or ValueError if a string in it holds NUL, which
    PostgreSQL cannot store in text or JSONB."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("text cannot contain the NUL character (\\u0000)")
    if isinstance(value, dict):
        for key, item in value.items():
            without_nul(key)
            without_nul(item)
    elif isinstance(value, list):
        for item in value:
            without_nul(item)
    return value


def small_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    without_nul(metadata)
    if len(metadata) > MAX_METADATA_KEYS:
        raise ValueError(f"at most {MAX_METADATA_KEYS} keys")
    if len(json.dumps(metadata)) > MAX_METADATA_BYTES:
        raise ValueError(f"at most {MAX_METADATA_BYTES} bytes of JSON")
    return metadata


class TextFormat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]


class JsonObjectFormat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["json_object"]


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["json_schema"]
    json_schema: dict[str, Any] = Field(alias="schema", description="A JSON Schema document.")

    @field_validator("json_schema")
    @classmethod
    def _is_a_json_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        without_nul(schema)
        try:
            validator_for(schema).check_schema(schema)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        return schema


ResponseFormat = Annotated[
    TextFormat | JsonObjectFormat | JsonSchemaFormat, Field(discriminator="type")
]
