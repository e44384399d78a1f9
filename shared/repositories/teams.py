"""Teams: create, find and list them, and set their budgets (a user joins one with
users.set_team)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.errors import AlreadyExistsError, NotFoundError
from shared.models import Team
from shared.repositories import audit_log
from shared.repositories.audit_log import Actor
from shared.repositories.budgets import open_team_counter
from shared.repositories.users import BUDGET_FIELDS

# What the audit log records of a new team.
_CREATED_FIELDS = ("name", "daily_budget_usd", "monthly_budget_usd")


def create_team(
    session: Session,
    name: str,
    *,
    daily_budget_usd: Decimal | None = None,
    monthly_budget_usd: Decimal | None = None,
    actor: Actor,
) -> Team:
    """Add a team named `name` with its counters at zero, audited as `actor`'s;
    AlreadyExistsError if the name is taken."""
    team = Team(name=name, daily_budget_usd=daily_budget_usd, monthly_budget_usd=monthly_budget_usd)
    try:
        # The unique index decides, so two concurrent creates cannot both win.
        with session.begin_nested():
            session.add(team)
            session.flush()
    except IntegrityError:
        raise AlreadyExistsError(f"A team named {name!r} already exists.") from None
    open_team_counter(session, team.id)
    session.refresh(team)
    _audit(session, actor, audit_log.TEAM_CREATED, team, audit_log.created(_snapshot(team)))
    return team


def _snapshot(team: Team, fields: Iterable[str] = _CREATED_FIELDS) -> dict[str, Any]:
    return audit_log.snapshot(team, fields)


def _audit(
    session: Session, actor: Actor, action: str, team: Team, changes: dict[str, Any]
) -> None:
    audit_log.record(
        session,
        actor,
        action,
        target_type="team",
        target_id=team.id,
        user_id=None,
        changes=changes,
    )


def get_team(session: Session, team_id: uuid.UUID) -> Team:
    team = session.get(Team, team_id)
    if team is None:
        raise NotFoundError(f"No team with id '{team_id}'.")
    return team


def get_team_by_name(session: Session, name: str) -> Team:
    team = session.scalars(select(Team).where(Team.name == name)).one_or_none()
    if team is None:
        raise NotFoundError(f"No team named {name!r}.")
    return team


def list_teams(session: Session) -> list[Team]:
    """Every team in creation order (id breaks ties)."""
    return list(session.scalars(select(Team).order_by(Team.created_at, Team.id)))


def set_team_budgets(
    session: Session, team: Team, changes: Mapping[str, Decimal | None], *, actor: Actor
) -> Team:
    """Set the given budgets (None clears one: no ceiling); absent ones are kept. Lowering a
    budget below what is held refuses new jobs; it never takes back a hold. Audited when a
    budget changes."""
    unknown = set(changes) - BUDGET_FIELDS
    if unknown:
        raise ValueError(f"not budget fields: {sorted(unknown)}")
    before = _snapshot(team, changes)
    for field, value in changes.items():
        setattr(team, field, value)
    session.flush()
    after = _snapshot(team, changes)
    _audit(session, actor, audit_log.TEAM_BUDGET_CHANGED, team, audit_log.changed(before, after))
    return team
