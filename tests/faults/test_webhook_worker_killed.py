"""A webhook worker killed with SIGKILL mid-delivery: the dispatcher (beat) hands its deliveries
back once their leases expire, a new webhook worker sends them again with the same webhook-id,
and no message is lost."""

from __future__ import annotations

import pytest

from devstack.processes import wait_until
from tests.faults.conftest import MakeStack
from tests.faults.invariants import wait_all_final
from tests.faults.seeding import create_account, submit
from tests.support.webhook_receiver import HANG, OK, WebhookReceiver, deliveries, register_endpoint

pytestmark = pytest.mark.e2e

# No more than the webhook worker's 8 slots: every first delivery is in flight at the kill.
JOBS = 6
TIMEOUT_S = 5
ENV: dict[str, str] = {
    "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    "WEBHOOK_SCHEDULE_S": "0,0.5,0.5,0.5,0.5",
    "WEBHOOK_JITTER": "0",
    # Long enough that the held first attempts are still in progress when the worker dies;
    # the lease (how long a dead worker's delivery waits) just outlasts it.
    "WEBHOOK_TIMEOUT_S": str(TIMEOUT_S),
    "WEBHOOK_LEASE_S": str(TIMEOUT_S + 1),
    "WEBHOOK_DISPATCH_INTERVAL_S": "0.3",
    "WEBHOOK_REDISPATCH_S": "5",
}


def test_deliveries_of_a_killed_webhook_worker_are_sent_again(make_stack: MakeStack) -> None:
    """The receiver holds the first delivery of every message; kill -9 of the webhook worker
    with all of them in flight; a new webhook worker delivers every message, verified, with the
    same webhook-id, and the API shows the killed attempt as interrupted (worker_lost)."""
    stack = make_stack(env=ENV, webhook_workers=1)
    receiver = WebhookReceiver()
    try:
        route = receiver.route("/hooks", [HANG], then=OK, per_message=True)
        account = create_account("webhook-kill")
        endpoint_id = register_endpoint(stack, account.key, route)
        jobs = submit(stack, account, JOBS, "gpt-4o-mini")
        wait_all_final(jobs, timeout=30)
        wait_until(
            lambda: len(route.received()) == JOBS,
            timeout=30,
            what="the first delivery of every message to be held",
        )
        in_flight = deliveries(stack, account.key, endpoint_id)
        assert [m["status"] for m in in_flight] == ["delivering"] * JOBS, in_flight

        stack.processes["webhooks"].kill()
        stack.start_webhook_worker("webhooks2")

        wait_until(
            lambda: (
                [m["status"] for m in deliveries(stack, account.key, endpoint_id)]
                == ["succeeded"] * JOBS
            ),
            timeout=30,
            what="every message to be delivered after the restart",
        )
        messages = deliveries(stack, account.key, endpoint_id)
        assert sorted(m["job_id"] for m in messages) == sorted(jobs)
        for message in messages:
            attempts = [(a["outcome"], a["error_code"]) for a in message["attempts"]]
            assert attempts == [("interrupted", "worker_lost"), ("succeeded", None)], message
            assert message["attempts"][1]["status_code"] == 200
        ids = route.ids()
        assert sorted(ids) == sorted(m["id"] for m in messages for _ in range(2))
        # Only the resent requests were answered: the killed worker's were held to the end.
        assert route.answered_count() == JOBS
        bad = [(d.webhook_id, d.error) for d in route.received() if not d.verified]
        assert not bad, f"deliveries that did not verify: {bad}"
        assert '"webhook.attempt"' in stack.processes["webhooks2"].log_text()
    finally:
        receiver.close()
