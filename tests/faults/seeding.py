"""Users and jobs for the fault tests: over HTTP like a client, or inserted in bulk when hundreds
are needed: into the backlog, as a batch's jobs are, for the workers' dispatchers to publish, or
stamped and published at once, as admission does when the broker's window has room."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import func, update

from shared import outbox
from shared.db import transaction
from shared.models import Job
from shared.repositories.api_keys import issue_key
from shared.repositories.audit_log import CLI
from shared.repositories.jobs import insert_held_job
from shared.repositories.users import create_user
from tests.conftest import Account
from tests.support.stack import RunningStack


def create_account(name: str) -> Account:
    """A user and key in the database this process's settings point at."""
    with transaction() as session:
        user = create_user(session, name, actor=CLI)
        issued = issue_key(session, user, actor=CLI)
    return Account(user_id=str(user.id), name=name, key=issued.plaintext)


def job_body(model: str, n: int, **extra: Any) -> dict[str, Any]:
    """A small, distinct completion request (distinct so no two jobs share a reply)."""
    return {
        "model": model,
        "messages": [{"role": "user", "content": f"Fault test request number {n}."}],
        "max_tokens": 32,
        **extra,
    }


def submit(
    stack: RunningStack, account: Account, count: int, model: str, **extra: Any
) -> list[str]:
    """Submit `count` jobs over HTTP; their ids."""
    return [stack.submit(account.key, job_body(model, n, **extra))["id"] for n in range(count)]


def insert_jobs(
    account: Account, count: int, model: str, priority: str = "normal", published: bool = False
) -> list[str]:
    """Commit `count` queued jobs in one transaction, in the backlog; `published`: dispatched
    in the same transaction and published in one batch after it."""
    with transaction() as session:
        jobs = [
            insert_held_job(
                session,
                dict(
                    user_id=uuid.UUID(account.user_id),
                    model=model,
                    priority=priority,
                    request={
                        "messages": job_body(model, n)["messages"],
                        "max_tokens": 32,
                        "temperature": None,
                    },
                    fallbacks=[],
                    meta={},
                ),
                Decimal(0),
            )
            for n in range(count)
        ]
        ids = [str(job.id) for job in jobs]
        if published:
            session.execute(
                update(Job)
                .where(Job.id.in_([job.id for job in jobs]))
                .values(dispatched_at=func.now())
            )
    if published:
        outbox.publish([(job_id, priority) for job_id in ids])
    return ids
