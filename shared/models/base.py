"""Declarative base with a naming convention, so Alembic's constraint names are stable."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, MetaData, Numeric, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Money: dollars with 10 decimal places, so a single token at $0.01/M tokens is still exact.
Money = Numeric(20, 10)


class Base(DeclarativeBase):
    """Base of every promptq table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def created_at_column() -> Mapped[datetime]:
    """A creation timestamp set by the database clock (one clock for every process)."""
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
