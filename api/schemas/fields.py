"""Field types shared by the models of several routes: integers, decimal dollars, URLs and dates
whose validation is exactly what their JSON Schema says (so a schema-valid value is never refused
and an invalid one never accepted), dollars in answers, the metadata rules, and the NUL check
PostgreSQL needs (pydantic)."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    PlainSerializer,
    WithJsonSchema,
)

from shared.money import usd

MAX_METADATA_KEYS = 16
MAX_METADATA_BYTES = 4096
# Levels of nesting, the metadata object itself being the first: deep enough for any labels,
# shallow enough that no client can make the server recurse without bound.
MAX_METADATA_DEPTH = 5
# PostgreSQL text and JSONB cannot hold NUL; refuse it at the edge rather than fail on insert.
NO_NUL = r"^[^\x00]*$"
# Names refuse the other control characters too.
NAME_PATTERN = r"^[^\x00-\x1f\x7f]*$"


# Dollars fit NUMERIC(20, 10): at most 10 digits before the point and 10 after.
USD_PLACES = Decimal("1e-10")
USD_LIMIT = Decimal("1e10")
_USD_FRACTION = r"\.[0-9]{1,10}"
# A positive amount without lookarounds (JSON Schema generators cannot run them): a non-zero
# integer part, or "0." and a fraction with a non-zero digit at some position. [0-9], not \d:
# \d also matches other scripts' digits in Python and in pydantic's regex engine.
_POSITIVE_FRACTION = "|".join("0" * k + f"[1-9][0-9]{{0,{9 - k}}}" for k in range(10))
POSITIVE_USD_PATTERN = rf"^(?:[1-9][0-9]{{0,9}}(?:{_USD_FRACTION})?|0\.(?:{_POSITIVE_FRACTION}))$"
USD_PATTERN = rf"^[0-9]{{1,10}}(?:{_USD_FRACTION})?$"

# http(s) URLs of printable ASCII: a DNS name (its last label starting with a letter, so it is
# never read as a malformed IPv4 address), a dotted IPv4 address or a bracketed IPv6 address
# (RFC 3986's grammar, no zone), an optional port, then any path, query and fragment of RFC 3986
# characters. Internationalized names are sent in their ASCII (xn--) form. Whether the address
# may be called at all is the SSRF guard's decision (shared/ssrf.py), not the pattern's.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TOP_LABEL = r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_H16 = r"[0-9A-Fa-f]{1,4}"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_LS32 = rf"(?:{_H16}:{_H16}|{_IPV4})"
_IPV6 = "|".join(
    (
        rf"(?:{_H16}:){{6}}{_LS32}",
        rf"::(?:{_H16}:){{5}}{_LS32}",
        rf"(?:{_H16})?::(?:{_H16}:){{4}}{_LS32}",
        rf"(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}{_LS32}",
        rf"(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}{_LS32}",
        rf"(?:(?:{_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}",
        rf"(?:(?:{_H16}:){{0,4}}{_H16})?::{_LS32}",
        rf"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}",
        rf"(?:(?:{_H16}:){{0,6}}{_H16})?::",
    )
)
_PORT = r"(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
_PCHAR = r"(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})"
HTTP_URL_PATTERN = (
    rf"^https?://(?:(?:{_LABEL}\.)*{_TOP_LABEL}|{_IPV4}|\[(?:{_IPV6})\])(?::{_PORT})?"
    rf"(?:/(?:{_PCHAR}|/)*)?(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?$"
)
MAX_URL_LENGTH = 2048
# Said instead of pydantic's "String should match pattern '<the pattern>'" when a value does not
# match: these patterns are too long to help anyone reading an error.
PATTERN_PROBLEMS: dict[str, str] = {
    HTTP_URL_PATTERN: "must be an http(s) URL whose host is a DNS name, a dotted IPv4 address "
    "(like 203.0.113.7) or a bracketed IPv6 address; numeric forms such as 2130706433 or "
    "0x7f000001 are not accepted",
}

# RFC 3339 (JSON Schema's `date-time`) with its offset, and `date` (YYYY-MM-DD).
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _integral(value: Any) -> Any:
    # JSON Schema counts 3.0 as an integer; pydantic's strict mode would refuse it.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _usd(pattern: str) -> Any:
    compiled = re.compile(pattern)

    def parse(value: Any) -> Any:
        if isinstance(value, str):
            if not compiled.fullmatch(value):
                raise ValueError('must be decimal dollars like "12.50" (at most 10 decimals)')
            return Decimal(value)
        if isinstance(value, bool):
            raise ValueError("must be a number or a decimal string, not a boolean")
        if isinstance(value, int | float):
            amount = Decimal(repr(value))
            if not amount.is_finite() or abs(amount) >= USD_LIMIT:
                return amount  # refused by the bounds below, unrounded
            # A JSON number is binary: keep the 10 places a NUMERIC(20, 10) column holds.
            return amount.quantize(USD_PLACES, rounding=ROUND_HALF_EVEN)
        return value

    return BeforeValidator(parse)


def _rfc3339(value: Any) -> Any:
    if isinstance(value, str):
        if not _RFC3339.fullmatch(value):
            raise ValueError("must be an RFC 3339 date-time, e.g. 2026-03-01T12:00:00Z")
        return datetime.fromisoformat(value.upper()).astimezone(UTC)
    return value


def _iso_date(value: Any) -> Any:
    if isinstance(value, str):
        if not _ISO_DATE.fullmatch(value):
            raise ValueError("must be a date, YYYY-MM-DD")
        return date.fromisoformat(value)
    return value


def json_int(*, ge: int, le: int) -> Any:
    """A JSON body's integer from `ge` to `le` as JSON Schema means it: 3 and 3.0 alike. (The
    bounds sit inside the type so pydantic documents them as minimum and maximum.)"""
    return Annotated[int, Field(ge=ge, le=le), BeforeValidator(_integral)]


PositiveUsd = Annotated[
    Decimal,
    _usd(POSITIVE_USD_PATTERN),
    Field(gt=0, lt=USD_LIMIT, max_digits=20, decimal_places=10),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": float(USD_PLACES), "exclusiveMaximum": 1e10},
                {"type": "string", "pattern": POSITIVE_USD_PATTERN},
            ]
        },
        mode="validation",
    ),
]
"""Decimal dollars above zero: a string keeps them exact; a number is rounded to 10 places."""

Usd = Annotated[
    Decimal,
    _usd(USD_PATTERN),
    Field(ge=0, lt=USD_LIMIT, max_digits=20, decimal_places=10),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "exclusiveMaximum": 1e10},
                {"type": "string", "pattern": USD_PATTERN},
            ]
        },
        mode="validation",
    ),
]
"""Decimal dollars, zero or more."""

UsdOut = Annotated[Decimal, PlainSerializer(usd, return_type=str)]
"""Dollars in an answer: a string of exact decimal dollars, so no precision is lost in JSON."""

HttpUrlText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        pattern=HTTP_URL_PATTERN,
        json_schema_extra={"format": "uri"},
    ),
]
"""An http(s) URL, kept as given."""

Rfc3339Datetime = Annotated[
    datetime,
    BeforeValidator(_rfc3339),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="validation"),
]
"""A date-time with its UTC offset, as RFC 3339 writes it (the query strings' form)."""

IsoDate = Annotated[
    date,
    # Bounded so that a day before and after it are dates too.
    Field(ge=date(1970, 1, 1), le=date(9999, 12, 30)),
    BeforeValidator(_iso_date),
    WithJsonSchema({"type": "string", "format": "date"}, mode="validation"),
]
"""A calendar date, YYYY-MM-DD (never a Unix time), from 1970 on."""


def _in_future(value: datetime) -> datetime:
    if value <= datetime.now(UTC):
        raise ValueError("must be in the future")
    return value


FutureDatetime = Annotated[AwareDatetime, AfterValidator(_in_future)]
"""A date-time with its offset, later than now (a key's expiry)."""


def _nested_value(levels: int) -> dict[str, Any]:
    """The JSON Schema of a JSON value with at most `levels` levels of arrays and objects."""
    scalar: dict[str, Any] = {"type": ["string", "number", "boolean", "null"]}
    if levels == 0:
        return scalar
    inner = _nested_value(levels - 1)
    return {
        "anyOf": [
            scalar,
            {"type": "array", "items": inner},
            {"type": "object", "additionalProperties": inner},
        ]
    }


METADATA_DOC: dict[str, Any] = {
    "maxProperties": MAX_METADATA_KEYS,
    "additionalProperties": _nested_value(MAX_METADATA_DEPTH - 1),
    "description": f"Yours, returned as given: at most {MAX_METADATA_KEYS} keys, "
    f"{MAX_METADATA_BYTES} bytes of JSON and {MAX_METADATA_DEPTH} levels of nesting (the "
    "object itself is the first).",
}


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


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
    if _depth(metadata) > MAX_METADATA_DEPTH:
        raise ValueError(f"at most {MAX_METADATA_DEPTH} levels of nesting")
    without_nul(metadata)
    if len(metadata) > MAX_METADATA_KEYS:
        raise ValueError(f"at most {MAX_METADATA_KEYS} keys")
    if len(json.dumps(metadata)) > MAX_METADATA_BYTES:
        raise ValueError(f"at most {MAX_METADATA_BYTES} bytes of JSON")
    return metadata
