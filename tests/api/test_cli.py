"""The `promptq` admin command line, run as the installed console script on the test database."""

from __future__ import annotations

import os
import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from devstack.processes import BIN, free_port
from shared.db import transaction
from shared.errors import AuthenticationError
from shared.models import ApiKey, User
from shared.repositories.api_keys import authenticate
from shared.repositories.audit_log import CLI
from shared.repositories.users import create_user
from tests.conftest import Services


def _run(services: Services, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "promptq"), *args],
        env={**os.environ, "DATABASE_URL": services.database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _ok(services: Services, *args: str) -> str:
    done = _run(services, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _live(plaintext: str) -> bool:
    with transaction() as session:
        try:
            authenticate(session, plaintext)
        except AuthenticationError:
            return False
    return True


def test_users_create_and_list(clean: Services) -> None:
    """`users create` prints the new id; `users list` shows every user and their budgets."""
    alice_id = _ok(clean, "users", "create", "alice")
    assert uuid.UUID(alice_id)
    _ok(clean, "users", "create", "bob")
    rows = [line.split("\t") for line in _ok(clean, "users", "list").splitlines()]
    assert [row[1:] for row in rows] == [["alice", "none", "none"], ["bob", "none", "none"]]
    assert rows[0][0] == alice_id


def test_duplicate_user_fails_cleanly(clean: Services) -> None:
    """Creating a taken name exits 1 with a one-line error, not a traceback."""
    _ok(clean, "users", "create", "alice")
    done = _run(clean, "users", "create", "alice")
    assert done.returncode == 1
    assert "already exists" in done.stderr and "Traceback" not in done.stderr


def test_set_budget(clean: Services) -> None:
    """`users set-budget` sets exact dollar budgets, keeps an omitted one, and "none" clears."""
    _ok(clean, "users", "create", "alice")
    _ok(clean, "users", "set-budget", "alice", "--daily", "2.5", "--monthly", "40.0000000001")
    assert _ok(clean, "users", "set-budget", "alice", "--daily", "none") == (
        "alice: daily none, monthly 40.0000000001"
    )
    with transaction() as session:
        user = session.scalars(select(User).where(User.name == "alice")).one()
        assert user.daily_budget_usd is None
        assert str(user.monthly_budget_usd) == "40.0000000001"


def test_teams_and_set_team(clean: Services) -> None:
    """`teams create` prints the id, `teams set-budget` shows the exact budgets, `users
    set-team` puts a user in a team and "none" takes them out; an unknown team fails cleanly."""
    _ok(clean, "users", "create", "alice")
    team_id = _ok(clean, "teams", "create", "eng", "--daily", "10")
    assert _ok(clean, "teams", "set-budget", "eng", "--monthly", "200.5") == (
        "eng: daily 10, monthly 200.5"
    )
    assert _ok(clean, "users", "set-team", "alice", "eng") == "alice: team eng"
    with transaction() as session:
        user = session.scalars(select(User).where(User.name == "alice")).one()
        assert str(user.team_id) == team_id
    assert _ok(clean, "users", "set-team", "alice", "none") == "alice: team none"
    done = _run(clean, "users", "set-team", "alice", "nobody")
    assert (done.returncode, done.stderr.strip()) == (1, "Error: No team named 'nobody'.")


def test_set_share(clean: Services) -> None:
    """`users set-share` sets weight and cap and prints both, keeps an omitted one, and
    `--max-concurrency none` clears the cap."""
    _ok(clean, "users", "create", "alice")
    assert _ok(clean, "users", "set-share", "alice", "--weight", "4", "--max-concurrency", "2") == (
        "alice: weight 4, max concurrency 2"
    )
    assert _ok(clean, "users", "set-share", "alice", "--weight", "7") == (
        "alice: weight 7, max concurrency 2"
    )
    assert _ok(clean, "users", "set-share", "alice", "--max-concurrency", "none") == (
        "alice: weight 7, max concurrency none"
    )
    with transaction() as session:
        user = session.scalars(select(User).where(User.name == "alice")).one()
        assert (user.weight, user.max_concurrency) == (7, None)


def test_set_safety(clean: Services) -> None:
    """`users set-safety` sets the input-safety settings and prints them all, keeps omitted
    ones, and refuses restoring for a user who keeps no originals while PII_VAULT_KEY is
    unset."""
    with transaction() as session:
        create_user(session, "alice", actor=CLI)
    out = _ok(clean, "users", "set-safety", "alice", "--scrub-pii", "--injection-screening", "flag")
    assert out == (
        "alice: scrub pii on, restore pii off, keep original prompts off, injection screening flag"
    )
    done = _run(clean, "users", "set-safety", "alice", "--restore-pii")
    assert done.returncode == 1 and "PII_VAULT_KEY" in done.stderr
    out = _ok(
        clean,
        "users",
        "set-safety",
        "alice",
        "--restore-pii",
        "--keep-original-prompts",
        "--injection-screening",
        "none",
    )
    assert out == (
        "alice: scrub pii on, restore pii on, keep original prompts on, injection screening none"
    )
    with transaction() as session:
        user = session.scalars(select(User).where(User.name == "alice")).one()
        assert (user.scrub_pii, user.restore_pii, user.injection_screening) == (True, True, None)


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["users", "set-budget", "alice"], 2, "--daily"),
        (["users", "set-budget", "alice", "--daily", "-1"], 2, "decimal dollars"),
        (["users", "set-budget", "alice", "--daily", "lots"], 2, "decimal"),
        (["users", "set-budget", "nobody", "--daily", "1"], 1, "No user named"),
        (["users", "set-share", "alice"], 2, "--weight"),
        (["users", "set-share", "alice", "--weight", "0"], 2, "--weight"),
        (["users", "set-share", "alice", "--weight", "1001"], 2, "--weight"),
        (["users", "set-share", "alice", "--max-concurrency", "0"], 2, "--max-concurrency"),
        (["users", "set-share", "alice", "--max-concurrency", "many"], 2, "--max-concurrency"),
        (["users", "set-share", "nobody", "--weight", "2"], 1, "No user named"),
        (["users", "set-safety", "alice"], 2, "--[no-]scrub-pii"),
        (["users", "set-safety", "alice", "--injection-screening", "block"], 2, "block"),
        (["keys", "create", "alice", "--expires-in-days", "0"], 2, "--expires-in-days"),
        (["keys", "create", "alice", "--name", "two\nlines"], 2, "name: String should match"),
        (["users", "create", "tab\tname"], 2, "name: String should match"),
        (["keys", "create", "nobody"], 1, "No user named"),
        (["keys", "list", "nobody"], 1, "No user named"),
        (["keys", "revoke", str(uuid.uuid4())], 1, "No API key"),
        (["keys", "revoke", "not-an-id"], 1, "No API key"),
    ],
)
def test_bad_input_exits_non_zero(clean: Services, args: list[str], code: int, says: str) -> None:
    """Bad options exit 2 (usage), unknown users or keys exit 1, each with a clear message."""
    with transaction() as session:
        create_user(session, "alice", actor=CLI)
    done = _run(clean, *args)
    assert done.returncode == code
    assert says in done.stderr and "Traceback" not in done.stderr


def test_keys_create_list_and_revoke(clean: Services) -> None:
    """`keys create` prints a working key, `keys list` only its prefix, `keys revoke` stops it."""
    _ok(clean, "users", "create", "alice")
    plain = _ok(clean, "keys", "create", "alice")
    named = _ok(clean, "keys", "create", "alice", "--name", "ci", "--expires-in-days", "7")
    assert plain.startswith("pq_") and _live(plain) and _live(named)
    with transaction() as session:
        row = session.scalars(select(ApiKey).where(ApiKey.name == "ci")).one()
    assert row.expires_at is not None
    assert abs(row.expires_at - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=1)

    listing = _ok(clean, "keys", "list", "alice")
    assert plain not in listing and named not in listing
    by_prefix = {line.split("\t")[1]: line.split("\t") for line in listing.splitlines()}
    assert set(by_prefix) == {plain[:10], named[:10]}
    key_id, _, name, status, _, _ = by_prefix[named[:10]]
    assert (name, status) == ("ci", "active")

    assert _ok(clean, "keys", "revoke", key_id).startswith(f"revoked {key_id}")
    assert not _live(named) and _live(plain)
    revoked_line = next(
        li for li in _ok(clean, "keys", "list", "alice").splitlines() if key_id in li
    )
    assert revoked_line.split("\t")[3] == "revoked"


def test_unreachable_database_and_bad_settings_are_one_line(clean: Services) -> None:
    """A database nobody listens for, or a setting that does not validate, is one line naming
    it and exit 1, not a traceback."""
    nobody = f"postgresql://postgres@127.0.0.1:{free_port()}/promptq"
    done = subprocess.run(
        [str(BIN / "promptq"), "users", "create", "alice"],
        env={**os.environ, "DATABASE_URL": nobody},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("Error: cannot reach PostgreSQL at postgresql+psycopg://")
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    done = subprocess.run(
        [str(BIN / "promptq"), "users", "list"],
        env={**os.environ, "DATABASE_URL": clean.database_url, "PERMIT_TTL_S": "999"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("Error: invalid setting")
    assert "permit_ttl_s" in done.stderr and "Traceback" not in done.stderr
