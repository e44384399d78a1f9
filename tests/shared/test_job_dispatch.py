"""Fair dispatch on the real PostgreSQL (and the broker's lists on the real Redis): strict
classes, users taking turns by weight, per-user caps, the window, the admission's own dispatch,
and lost messages found again."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from shared import outbox
from shared.db import get_engine, transaction
from shared.dispatch_window import UNBOUNDED
from shared.models import Job
from shared.queueing import publish_jobs
from shared.repositories.job_dispatch import dispatch_batch, dispatch_next, redispatch_lost
from shared.repositories.job_leases import claim_job
from tests.conftest import Account
from tests.support.jobs import queued_job


def _backlog(user: Account, n: int, **values: object) -> list[uuid.UUID]:
    return [queued_job(user.user_id, **values) for _ in range(n)]


def _dispatch(window: int) -> list[tuple[str, str]]:
    with transaction() as session:
        return dispatch_next(session, window)


def _owners(dispatched: list[tuple[str, str]]) -> Counter[str]:
    with transaction() as session:
        rows = session.execute(
            select(Job.user_id).where(Job.id.in_([uuid.UUID(j) for j, _ in dispatched]))
        ).all()
    return Counter(str(row.user_id) for row in rows)


def _finish(dispatched: list[tuple[str, str]]) -> None:
    with transaction() as session:
        session.execute(
            update(Job)
            .where(Job.id.in_([uuid.UUID(j) for j, _ in dispatched]))
            .values(status="succeeded", finished_at=func.now())
        )


def _set_user(user: Account, **values: object) -> None:
    assignments = ", ".join(f"{name} = :{name}" for name in values)
    with transaction() as session:
        session.execute(
            text(f"UPDATE users SET {assignments} WHERE id = :u"), {**values, "u": user.user_id}
        )


@pytest.fixture
def two(make_account: Callable[[str], Account]) -> tuple[Account, Account]:
    return make_account("heavy"), make_account("light")


def test_users_take_turns_under_a_backlog(two: tuple[Account, Account]) -> None:
    """A user with 30 jobs waiting and one with 5 queued after them share a window of 10 half
    and half; once the heavy user's jobs fill the window, each slot that frees goes to the light
    user while it has fewer in flight."""
    heavy, light = two
    _backlog(heavy, 30)
    _backlog(light, 5)
    first = _dispatch(10)
    assert _owners(first) == {heavy.user_id: 5, light.user_id: 5}
    assert _dispatch(10) == []  # the window is full

    _finish([j for j in first if _owners([j]) == {heavy.user_id: 1}][:4])
    # Heavy has 1 in flight, light 5: the 4 free places go to heavy (light has none waiting).
    assert _owners(_dispatch(10)) == {heavy.user_id: 4}


def test_a_newcomer_goes_ahead_of_a_long_backlog(two: tuple[Account, Account]) -> None:
    """The heavy user fills the window; a job of the light user queued after 50 of the heavy
    user's is the first dispatched when a place frees."""
    heavy, light = two
    _backlog(heavy, 60)
    first = _dispatch(8)
    assert _owners(first) == {heavy.user_id: 8}
    late = _backlog(light, 2)
    _finish(first[:1])
    assert _dispatch(8) == [(str(late[0]), "normal")]


def test_weights_share_the_window(two: tuple[Account, Account]) -> None:
    """Weight 3 against weight 1: three turns to one."""
    heavy, light = two
    _set_user(heavy, weight=3)
    _backlog(heavy, 20)
    _backlog(light, 20)
    assert _owners(_dispatch(8)) == {heavy.user_id: 6, light.user_id: 2}


def test_max_concurrency_caps_a_user_however_large_the_window(
    two: tuple[Account, Account],
) -> None:
    """A cap of 2 holds across dispatches and classes; the others take the rest of the window."""
    heavy, light = two
    _set_user(heavy, max_concurrency=2)
    _backlog(heavy, 5)
    _backlog(heavy, 5, priority="high")
    _backlog(light, 10)
    assert _owners(_dispatch(10)) == {heavy.user_id: 2, light.user_id: 8}
    # A larger window: the light user's last 2, none of the capped user's.
    assert _owners(_dispatch(50)) == {light.user_id: 2}
    with transaction() as session:
        flying = session.scalar(
            select(func.count()).where(
                Job.user_id == uuid.UUID(heavy.user_id), Job.dispatched_at.is_not(None)
            )
        )
    assert flying == 2


def test_classes_are_strict(two: tuple[Account, Account]) -> None:
    """High jobs go before older normal and low ones, whoever owns them."""
    heavy, light = two
    _backlog(heavy, 5, priority="low")
    _backlog(heavy, 5)
    high = _backlog(light, 3, priority="high")
    assert sorted(_dispatch(3)) == sorted((str(j), "high") for j in high)
    assert {p for _, p in _dispatch(5)} == {"normal"}


def test_lower_classes_never_fill_the_window_for_a_higher_one(
    two: tuple[Account, Account],
) -> None:
    """A window full of low jobs still has room for high and normal ones (each class's room is
    the window less what is in flight at its class or above), at dispatch and at admission; the
    broker holds at most a window per class."""
    heavy, light = two
    _backlog(heavy, 10, priority="low")
    assert {p for _, p in _dispatch(4)} == {"low"}
    high = _backlog(light, 2, priority="high")
    assert sorted(_dispatch(4)) == sorted((str(j), "high") for j in high)
    assert _admitted(light, window=4)  # normal: 2 high in flight at or above it
    assert not _admitted(light, window=4, priority="low")  # low: 7 in flight, window 4


def test_a_job_waiting_out_a_retry_after_is_not_dispatched(two: tuple[Account, Account]) -> None:
    heavy, _ = two
    later = _backlog(heavy, 1, not_before=datetime.now(UTC) + timedelta(minutes=5))
    now = _backlog(heavy, 1)
    assert _dispatch(5) == [(str(now[0]), "normal")]
    assert str(later[0]) not in {j for j, _ in _dispatch(5)}


def test_one_dispatcher_at_a_time(two: tuple[Account, Account]) -> None:
    """While another dispatcher holds the turn, a dispatch does nothing (it fills the window)."""
    heavy, _ = two
    _backlog(heavy, 3)
    with get_engine().connect() as other:
        other.execute(text("SELECT pg_advisory_lock(x'70726F6D70747164'::bigint)"))
        try:
            assert _dispatch(5) == []
        finally:
            other.execute(text("SELECT pg_advisory_unlock(x'70726F6D70747164'::bigint)"))
            other.commit()
    assert len(_dispatch(5)) == 3


def _admitted(user: Account, window: int, **values: object) -> bool:
    job_id = queued_job(user.user_id, window=window, **values)
    with transaction() as session:
        return session.scalar(select(Job.dispatched_at).where(Job.id == job_id)) is not None


def test_admission_dispatches_at_once_only_when_nothing_may_go_first(
    two: tuple[Account, Account],
) -> None:
    """The admission's INSERT dispatches its job when the window has room, nothing of its class
    or a higher one waits, and its user has no cap (a capped user's places are filled by the
    dispatcher alone, one at a time, so concurrent admissions cannot overrun the cap)."""
    heavy, light = two
    assert _admitted(heavy, window=2)
    assert _admitted(heavy, window=2)
    assert not _admitted(heavy, window=2)  # the window is full
    assert not _admitted(light, window=10)  # heavy's normal job waits in the backlog
    assert _admitted(light, window=10, priority="high")  # nothing of its class waits
    _set_user(light, max_concurrency=5)
    assert not _admitted(light, window=10, priority="high")


def test_with_the_window_off_admission_dispatches_every_job(
    two: tuple[Account, Account],
) -> None:
    """DISPATCH_WINDOW_PER_SLOT=0: whatever waits and whatever the cap, the job goes at once;
    a batch's jobs all go."""
    heavy, light = two
    _backlog(heavy, 3)
    _set_user(light, max_concurrency=1)
    assert _admitted(light, window=UNBOUNDED)
    assert _admitted(light, window=UNBOUNDED)
    batch = uuid.uuid4()
    with transaction() as session:
        session.execute(
            text(
                "INSERT INTO batches (id, user_id, total, metadata, expires_at) "
                "VALUES (:b, :u, 2, '{}', now() + interval '1 day')"
            ),
            {"b": batch, "u": heavy.user_id},
        )
    jobs = [queued_job(heavy.user_id, batch_id=batch, custom_id=c) for c in ("a", "b")]
    with transaction() as session:
        assert sorted(dispatch_batch(session, batch)) == sorted((str(j), "normal") for j in jobs)


def test_a_job_cancelled_while_it_runs_keeps_its_place_until_let_go(
    two: tuple[Account, Account],
) -> None:
    """A user capped at 1 whose running job is cancelled: its worker's call goes on until it
    notices, so nothing else of the user's is dispatched until the lease is let go."""
    heavy, _ = two
    _set_user(heavy, max_concurrency=1)
    _backlog(heavy, 2)
    (first,) = _dispatch(10)
    with transaction() as session:
        assert claim_job(session, uuid.UUID(first[0]), lease_s=60) is not None
        session.execute(update(Job).where(Job.id == uuid.UUID(first[0])).values(status="cancelled"))
    assert _dispatch(10) == []
    with transaction() as session:
        session.execute(update(Job).where(Job.id == uuid.UUID(first[0])).values(lease_token=None))
    assert len(_dispatch(10)) == 1


def _stamp_ages(session: Session, ages: tuple[tuple[uuid.UUID, int], ...]) -> None:
    """Stamp each job as dispatched so many seconds ago."""
    for job_id, age_s in ages:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(dispatched_at=func.now() - timedelta(seconds=age_s))
        )


def test_lost_messages_are_found_by_the_oldest_waiting_message(
    two: tuple[Account, Account],
) -> None:
    """A dispatched job still queued whose stamp is older than the oldest message still waiting
    in its queue has no message: it is stamped again and returned to publish; one dispatched
    after that message still has its own, and stays."""
    heavy, _ = two
    lost, waiting, fresh = _backlog(heavy, 3)
    ages = ((lost, 60), (waiting, 30), (fresh, 1))
    with transaction() as session:
        _stamp_ages(session, ages)
    publish_jobs([(str(waiting), "normal"), (str(fresh), "normal")])
    heads = outbox.oldest_waiting_jobs()
    assert heads["normal"] == str(waiting)
    with transaction() as session:
        now = session.scalar(select(func.now()))
        cutoffs = outbox.job_cutoffs(session, heads, now, grace_s=0, lost_at=None)
        assert redispatch_lost(session, cutoffs, 100) == [(str(lost), "normal")]
    with transaction() as session:
        # An empty queue: every dispatched job older than the grace has no message.
        now = session.scalar(select(func.now()))
        empty = dict.fromkeys(heads, None)
        cutoffs = outbox.job_cutoffs(session, empty, now, grace_s=10, lost_at=None)
        assert redispatch_lost(session, cutoffs, 100) == [(str(waiting), "normal")]
    with transaction() as session:
        # After Redis lost its data, all of those dispatched before its present data began:
        # one dispatched after it was published into the present data.
        _stamp_ages(session, ages)
        now = session.scalar(select(func.now()))
        data_began = now - timedelta(seconds=5)
        cutoffs = outbox.job_cutoffs(session, heads, now, grace_s=10, lost_at=data_began)
        assert {j for j, _ in redispatch_lost(session, cutoffs, 100)} == {str(lost), str(waiting)}
    with transaction() as session:
        now = session.scalar(select(func.now()))
        cutoffs = outbox.job_cutoffs(session, heads, now, grace_s=10, lost_at=now)
        assert {j for j, _ in redispatch_lost(session, cutoffs, 100)} == {
            str(lost),
            str(waiting),
            str(fresh),
        }


def test_a_copy_at_the_head_of_a_queue_leaves_its_class_alone(two: tuple[Account, Account]) -> None:
    """The oldest message is a copy of a job no longer queued: what waits behind it is of
    unknown age, so nothing of its class is published again this time."""
    heavy, _ = two
    (job,) = _backlog(heavy, 1)
    publish_jobs([(str(uuid.uuid4()), "normal")])
    with transaction() as session:
        session.execute(
            update(Job).where(Job.id == job).values(dispatched_at=func.now() - timedelta(minutes=5))
        )
    heads = outbox.oldest_waiting_jobs()
    with transaction() as session:
        now = session.scalar(select(func.now()))
        cutoffs = outbox.job_cutoffs(session, heads, now, grace_s=0, lost_at=None)
        assert "normal" not in cutoffs
        assert redispatch_lost(session, cutoffs, 100) == []
