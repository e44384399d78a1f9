"""Fair dispatch on whole stacks of real processes: a user's cap holds across workers, a user
behind another's long backlog starts promptly, the broker holds only the window however long
the backlog, and the window refills after a worker dies."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from devstack.processes import wait_until
from shared.db import transaction
from shared.queueing import JOB_QUEUE_ORDER
from shared.redis_client import get_redis
from tests.faults.conftest import MakeStack
from tests.faults.invariants import assert_settled, final_count, wait_all_final
from tests.faults.seeding import create_account, insert_jobs, submit

pytestmark = pytest.mark.e2e


def _set_user(user_id: str, **values: object) -> None:
    assignments = ", ".join(f"{name} = :{name}" for name in values)
    with transaction() as session:
        session.execute(
            text(f"UPDATE users SET {assignments} WHERE id = :u"), {**values, "u": user_id}
        )


def _start_latencies_s(job_ids: list[str]) -> list[float]:
    with transaction() as session:
        return list(
            session.execute(
                text(
                    "SELECT extract(epoch FROM started_at - created_at) FROM jobs "
                    "WHERE id = ANY(CAST(:ids AS uuid[]))"
                ),
                {"ids": job_ids},
            ).scalars()
        )


def _messages_waiting() -> int:
    return sum(get_redis().llen(queue) for queue in JOB_QUEUE_ORDER)


def test_a_user_cap_of_five_holds_across_three_workers(make_stack: MakeStack) -> None:
    """max_concurrency 5 for one user, 3 workers of 4 slots: the simulator never sees more than
    5 of that user's calls at once, and sees exactly 5 at the peak; another user's jobs fill
    the other slots meanwhile."""
    stack = make_stack(workers=3, concurrency=4, sim_latency_ms=300)
    capped, other = create_account("capped-user"), create_account("free-user")
    _set_user(capped.user_id, max_concurrency=5)
    ids = insert_jobs(capped, 40, "gpt-4o")
    ids += insert_jobs(other, 60, "gpt-4o-mini")
    wait_all_final(ids, timeout=60)

    assert assert_settled(ids) == {"succeeded": len(ids)}
    stats = stack.sim_stats()
    assert stats["requests_by_model"]["gpt-4o"] == 40
    assert stats["max_in_flight_by_model"]["gpt-4o"] == 5
    assert stats["max_in_flight_by_model"]["gpt-4o-mini"] > 5


def test_a_newcomer_starts_promptly_behind_a_long_backlog(make_stack: MakeStack) -> None:
    """One user has 400 jobs waiting (20 s of work for 4 slots of 200 ms calls). Another user's
    5 jobs, submitted once the first user's are running, each start within 3 s, not behind the
    backlog; the broker meanwhile never holds more than the window (2 per slot)."""
    stack = make_stack(workers=1, concurrency=4, sim_latency_ms=200)
    heavy, light = create_account("heavy-user"), create_account("light-user")
    backlog = insert_jobs(heavy, 400, "gpt-4o-mini")
    wait_until(lambda: final_count(backlog) >= 8, timeout=20, what="the backlog to be draining")
    light_ids: list[str] = []
    most_waiting = 0
    for _ in range(5):
        light_ids += submit(stack, light, 1, "gpt-4o-mini")
        most_waiting = max(most_waiting, _messages_waiting())
        time.sleep(0.1)  # pacing of the submissions, not a wait for an outcome
    wait_all_final(light_ids, timeout=20)
    started = final_count(backlog)

    assert max(_start_latencies_s(light_ids)) < 3.0
    assert started < len(backlog) / 2, "the light user's jobs waited behind the backlog"
    assert most_waiting <= 8
    wait_all_final(backlog, timeout=60)
    assert assert_settled(backlog + light_ids) == {"succeeded": len(backlog) + len(light_ids)}


def test_the_window_refills_after_a_worker_dies(make_stack: MakeStack) -> None:
    """Two workers drain a backlog; one is killed with SIGKILL mid-call. Its running jobs come
    back to the backlog when their leases expire and are dispatched again, the window shrinks
    to the survivor's slots once the dead worker's heartbeat is old, and every job finishes
    once."""
    stack = make_stack(
        workers=2,
        concurrency=4,
        sim_latency_ms=500,
        env={"READY_WORKER_HEARTBEAT_S": "3"},
    )
    account = create_account("refill")
    ids = insert_jobs(account, 120, "gpt-4o-mini")
    wait_until(lambda: stack.sim_stats()["in_flight"] >= 8, timeout=20, what="every slot busy")
    stack.processes["worker2"].kill()
    killed_at_final = final_count(ids)
    wait_until(
        lambda: final_count(ids) > killed_at_final + 8,
        timeout=15,
        what="the survivor to go on completing",
    )
    wait_all_final(ids, timeout=90)
    assert assert_settled(ids) == {"succeeded": len(ids)}
