"""Teams for tests, made through the repositories the admin API uses, and their counters."""

from __future__ import annotations

import uuid
from decimal import Decimal

from shared.db import transaction
from shared.models import TeamSpendCounter
from shared.repositories.audit_log import ADMIN
from shared.repositories.teams import create_team
from shared.repositories.users import get_user, set_team
from tests.conftest import Account


def make_team(
    name: str,
    *members: Account,
    daily: Decimal | None = None,
    monthly: Decimal | None = None,
) -> uuid.UUID:
    """A team with these budgets and `members` in it; its id."""
    with transaction() as session:
        team = create_team(
            session, name, daily_budget_usd=daily, monthly_budget_usd=monthly, actor=ADMIN
        )
        for member in members:
            set_team(session, get_user(session, uuid.UUID(member.user_id)), team.id, actor=ADMIN)
        return team.id


def team_counter(team_id: uuid.UUID) -> tuple[Decimal, Decimal, Decimal]:
    """The team's (held, spent today, spent this month)."""
    with transaction() as session:
        counter = session.get(TeamSpendCounter, team_id)
        assert counter is not None
        return counter.held_usd, counter.day_spent_usd, counter.month_spent_usd
