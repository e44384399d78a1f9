"""How promptq writes an amount of dollars: one format for the API's JSON, webhook events, error
messages and the CLI."""

from __future__ import annotations

from decimal import Decimal


def usd(value: Decimal) -> str:
    """Exact decimal dollars as a string (no exponent, no trailing zeros), so no precision is lost
    in JSON."""
    return format(value.normalize(), "f")
