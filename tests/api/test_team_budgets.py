"""Team budgets: a team member's job is admitted only if both the member's and the team's
budgets have room, held on both in the admission's one statement, so concurrent members never
overspend the team; batches and cancellations move the team's counter too."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select

from shared.db import get_engine, transaction
from shared.models import Job, SpendCounter
from tests.api.job_helpers import VALID, auth, error_of, reservation_of, set_budgets
from tests.conftest import Account
from tests.support.teams import make_team, team_counter

BODY: dict[str, Any] = {**VALID, "max_tokens": 200}
RESERVATION = reservation_of(BODY)

pytestmark = pytest.mark.usefixtures("worker_is_alive")


@pytest.fixture
def alice(make_account: Callable[[str], Account]) -> Account:
    return make_account("alice")


@pytest.fixture
def bob(make_account: Callable[[str], Account]) -> Account:
    return make_account("bob")


def _submit(client: FlaskClient, account: Account, body: dict[str, Any] = BODY) -> Any:
    return client.post("/v1/jobs", json=body, headers=auth(account))


def _held_by_user(account: Account) -> Decimal:
    with transaction() as session:
        counter = session.get(SpendCounter, uuid.UUID(account.user_id))
        assert counter is not None
        return counter.held_usd


def _reserved_for_team(team_id: uuid.UUID) -> Decimal:
    with transaction() as session:
        return session.scalar(
            select(func.coalesce(func.sum(Job.reserved_usd), 0)).where(Job.team_id == team_id)
        )


def test_team_budget_is_exact_under_concurrency(app: Flask, alice: Account, bob: Account) -> None:
    """20 threads submit 40 jobs, half alice's and half bob's, against their team's daily budget
    of exactly 7 reservations (their own budgets unbounded): exactly 7 are admitted, the other
    33 refused as the team's budget_exceeded, and the team's counter holds exactly what its
    jobs reserve."""
    team_id = make_team("eng", alice, bob, daily=RESERVATION * 7)

    def submit(n: int) -> tuple[int, str | None]:
        account = alice if n % 2 else bob
        response = app.test_client().post("/v1/jobs", json=BODY, headers=auth(account))
        scope = (
            response.get_json()["error"]["details"]["scope"]
            if response.status_code != 202
            else None
        )
        return response.status_code, scope

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = Counter(pool.map(submit, range(40)))
    assert outcomes == {(202, None): 7, (429, "team"): 33}
    assert team_counter(team_id)[0] == RESERVATION * 7 == _reserved_for_team(team_id)
    # A refused member's own hold was rolled back with the team's.
    assert _held_by_user(alice) + _held_by_user(bob) == RESERVATION * 7


def test_the_team_refusal_names_the_team_and_what_is_left(
    client: FlaskClient, alice: Account, bob: Account
) -> None:
    """Past the team's monthly budget, a member is refused 429 budget_exceeded saying it is the
    team's budget, its amount and what remains for the whole team."""
    budget = RESERVATION * 2 + Decimal("0.000001")
    team_id = make_team("research", alice, bob, monthly=budget)
    assert _submit(client, alice).status_code == 202
    assert _submit(client, bob).status_code == 202
    error = error_of(_submit(client, bob), 429, "budget_exceeded")
    assert "team 'research'" in error["message"]
    assert "$0.000001 remains for the whole team" in error["message"]
    assert error["details"] | {"resets_at": None} == {
        "scope": "team",
        "team_id": str(team_id),
        "team_name": "research",
        "budget": "monthly",
        "budget_usd": str(budget),
        "used_usd": str(RESERVATION * 2),
        "remaining_usd": "0.000001",
        "requested_usd": str(RESERVATION),
        "resets_at": None,
    }


def test_the_members_own_budget_still_binds(
    client: FlaskClient, alice: Account, bob: Account
) -> None:
    """A roomy team does not lift a member's own budget: alice is refused on hers (scope user)
    while bob goes on spending the team's."""
    make_team("ops", alice, bob, daily=RESERVATION * 10)
    set_budgets(alice, daily=RESERVATION)
    assert _submit(client, alice).status_code == 202
    error = error_of(_submit(client, alice), 429, "budget_exceeded")
    assert error["details"]["scope"] == "user"
    assert "team" not in error["message"]
    assert _submit(client, bob).status_code == 202


def test_cancelling_gives_the_hold_back_to_the_team(
    client: FlaskClient, alice: Account, bob: Account
) -> None:
    """A queued job cancelled by its owner releases its hold on the team too: the team's next
    job fits again, whoever submits it."""
    team_id = make_team("eng", alice, bob, daily=RESERVATION)
    job = _submit(client, alice).get_json()
    error_of(_submit(client, bob), 429, "budget_exceeded")
    assert client.post(f"/v1/jobs/{job['id']}/cancel", headers=auth(alice)).status_code == 200
    assert team_counter(team_id)[0] == 0
    assert _submit(client, bob).status_code == 202


def test_a_job_stays_its_admitting_teams_after_its_owner_moves(
    client: FlaskClient, alice: Account
) -> None:
    """The job records the team that held it: moved to another team, alice's earlier job is
    still released from the first team's counter, and her next job holds on the new one."""
    first = make_team("first", alice, daily=RESERVATION * 5)
    job = _submit(client, alice).get_json()
    second = make_team("second", alice, daily=RESERVATION * 5)
    assert team_counter(first)[0] == RESERVATION
    assert client.post(f"/v1/jobs/{job['id']}/cancel", headers=auth(alice)).status_code == 200
    assert _submit(client, alice).status_code == 202
    assert team_counter(first)[0] == 0
    assert team_counter(second)[0] == RESERVATION


def _batch(client: FlaskClient, account: Account, n: int) -> Any:
    jobs = [{**BODY, "custom_id": f"j{i}"} for i in range(n)]
    return client.post("/v1/batches", json={"jobs": jobs}, headers=auth(account))


def test_a_batch_holds_on_the_team_all_or_nothing(
    client: FlaskClient, alice: Account, bob: Account
) -> None:
    """A member's batch is held on the team as a whole (refused whole when it does not fit),
    its jobs carry the team, and cancelling it gives the team its hold back."""
    team_id = make_team("eng", alice, bob, daily=RESERVATION * 3)
    error = error_of(_batch(client, alice, 4), 429, "budget_exceeded")
    assert error["details"]["scope"] == "team"
    assert team_counter(team_id)[0] == 0
    batch = _batch(client, alice, 3)
    assert batch.status_code == 202
    assert team_counter(team_id)[0] == RESERVATION * 3 == _reserved_for_team(team_id)
    error_of(_submit(client, bob), 429, "budget_exceeded")
    batch_id = batch.get_json()["id"]
    assert client.post(f"/v1/batches/{batch_id}/cancel", headers=auth(alice)).status_code == 200
    assert team_counter(team_id)[0] == 0
    assert _submit(client, bob).status_code == 202


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """The SQL statements this process sends from now on."""
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", count)
    yield seen
    event.remove(engine, "before_cursor_execute", count)


def test_a_team_costs_the_accept_path_no_statement(
    client: FlaskClient, alice: Account, bob: Account, statements: list[str]
) -> None:
    """One accepted job is the same single statement (besides the transaction's BEGIN and
    COMMIT) for a user without a team and for a team member; a batch costs both the same
    statements too, its INSERT returning the team it read (no SELECT of it before the jobs')."""
    make_team("eng", bob, daily=RESERVATION * 10)
    counts, batches = [], []
    for account in (alice, bob):
        assert _submit(client, account).status_code == 202  # the key is cached from here on
        statements.clear()
        assert _submit(client, account).status_code == 202
        counts.append(len(statements))
        statements.clear()
        assert _batch(client, account, 2).status_code == 202
        batches.append([sql.split(None, 3)[:3] for sql in statements])
    assert counts == [1, 1]
    # The member's hold is one statement too: a WITH holding on both counters.
    assert len(batches[0]) == len(batches[1])
    assert batches[0][:2] == [["INSERT", "INTO", "batches"], ["INSERT", "INTO", "jobs"]]
