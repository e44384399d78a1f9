"""SQL intervals from a number of seconds, for comparing and shifting database timestamps
against now() in the database's own clock rather than the process's."""

from __future__ import annotations

from sqlalchemy import ColumnElement, text


def seconds(value: float) -> ColumnElement[object]:
    return text(f"interval '{float(value)} seconds'")
