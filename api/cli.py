"""`promptq`: the admin command line (users, their budgets, team, fair share and input safety;
teams and their budgets; API keys)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import click
import pydantic
from click.core import ParameterSource
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from api.request_scope import path_id
from api.schemas.admin import MAX_INT4, MAX_WEIGHT, BudgetUsd, UserCreate
from api.schemas.keys import KeyCreate
from api.schemas.teams import TeamCreate
from promptq.cli import register_user_commands
from shared.db import transaction
from shared.errors import PromptqError
from shared.models import ApiKey
from shared.money import usd
from shared.repositories.api_keys import get_key, issue_key, list_keys, revoke_key
from shared.repositories.audit_log import CLI
from shared.repositories.teams import (
    create_team,
    get_team_by_name,
    list_teams,
    set_team_budgets,
)
from shared.repositories.users import (
    create_user,
    get_user_by_name,
    list_users,
    set_budgets,
    set_input_safety,
    set_share,
    set_team,
)
from shared.settings import get_settings

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)
CLEAR = "none"
_budget = pydantic.TypeAdapter(BudgetUsd)


class BudgetParam(click.ParamType):
    """Dollars as a decimal (at most 10 places, not negative), or "none" for no ceiling."""

    name = "USD|none"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value.strip().lower() == CLEAR:
            return None
        try:
            return _budget.validate_python(str(value).strip())
        except pydantic.ValidationError as exc:
            self.fail(f"{value!r}: {exc.errors()[0]['msg']}", param, ctx)


class CapParam(click.ParamType):
    """A whole number of jobs, at least 1, or "none" for no cap."""

    name = "N|none"
    _count = click.IntRange(1, MAX_INT4)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value.strip().lower() == CLEAR:
            return None
        return self._count.convert(value, param, ctx)


def _shown_budget(budget: Decimal | None) -> str:
    return CLEAR if budget is None else usd(budget)


def _budget_changes(ctx: click.Context, daily: Any, monthly: Any) -> dict[str, Decimal | None]:
    """The budgets given on the command line; an option left out keeps its budget, only an
    explicit value (or "none") changes it."""
    changes: dict[str, Decimal | None] = {}
    if ctx.get_parameter_source("daily") == ParameterSource.COMMANDLINE:
        changes["daily_budget_usd"] = daily
    if ctx.get_parameter_source("monthly") == ParameterSource.COMMANDLINE:
        changes["monthly_budget_usd"] = monthly
    if not changes:
        raise click.UsageError("Give --daily and/or --monthly.")
    return changes


def _fail(exc: PromptqError) -> click.ClickException:
    return click.ClickException(exc.message)


def _checked(model: type[ModelT], **fields: Any) -> ModelT:
    """The same validation as the admin API's body, as a usage error (exit 2)."""
    try:
        return model.model_validate(fields)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        raise click.UsageError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None


class _AdminGroup(click.Group):
    """The CLI's errors are one line each: no traceback for a database that does not answer or a
    setting that does not validate."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OperationalError as exc:
            url = make_url(get_settings().database_url).render_as_string(hide_password=True)
            reason = str(exc.orig or exc).strip().splitlines()[0]
            raise click.ClickException(
                f"cannot reach PostgreSQL at {url}: {reason}. Is it running, and is DATABASE_URL "
                "right? (make dev writes the URLs it uses to .env while it runs.)"
            ) from None
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            raise click.ClickException(
                f"invalid setting {'.'.join(map(str, first['loc'])) or '(settings)'}: "
                f"{first['msg']}"
            ) from None


@click.group(cls=_AdminGroup)
def main() -> None:
    """promptq: your jobs (submit, status, batch, usage; PROMPTQ_URL and PROMPTQ_KEY) and the
    administration of users and keys (DATABASE_URL)."""


@main.group()
def users() -> None:
    """Manage users."""


@users.command("create")
@click.argument("name")
def users_create(name: str) -> None:
    """Create a user called NAME and print its id."""
    checked = _checked(UserCreate, name=name)
    try:
        with transaction() as session:
            user = create_user(session, checked.name, actor=CLI)
    except PromptqError as exc:
        raise _fail(exc) from None
    click.echo(str(user.id))


@users.command("list")
def users_list() -> None:
    """Print every user: id, name, daily and monthly budget in USD ("none": no ceiling)."""
    with transaction() as session:
        everyone = list_users(session)
    for user in everyone:
        daily = _shown_budget(user.daily_budget_usd)
        monthly = _shown_budget(user.monthly_budget_usd)
        click.echo(f"{user.id}\t{user.name}\t{daily}\t{monthly}")


@users.command("set-budget")
@click.argument("name")
@click.option("--daily", type=BudgetParam(), help='USD per UTC day, or "none" to clear.')
@click.option("--monthly", type=BudgetParam(), help='USD per calendar month, or "none".')
@click.pass_context
def users_set_budget(ctx: click.Context, name: str, daily: Any, monthly: Any) -> None:
    """Set the daily and/or monthly budget of user NAME."""
    changes = _budget_changes(ctx, daily, monthly)
    try:
        with transaction() as session:
            user = set_budgets(session, get_user_by_name(session, name), changes, actor=CLI)
    except PromptqError as exc:
        raise _fail(exc) from None
    daily_out = _shown_budget(user.daily_budget_usd)
    monthly_out = _shown_budget(user.monthly_budget_usd)
    click.echo(f"{user.name}: daily {daily_out}, monthly {monthly_out}")


@users.command("set-share")
@click.argument("name")
@click.option(
    "--weight",
    type=click.IntRange(1, MAX_WEIGHT),
    help=f"Share of the worker slots within a priority class (1-{MAX_WEIGHT}; default 1).",
)
@click.option(
    "--max-concurrency",
    type=CapParam(),
    help='At most N jobs dispatched or running at once, or "none" to clear the cap.',
)
@click.pass_context
def users_set_share(
    ctx: click.Context, name: str, weight: int | None, max_concurrency: int | None
) -> None:
    """Set the fair-share weight and/or the concurrency cap of user NAME."""
    changes: dict[str, int | None] = {}
    if weight is not None:
        changes["weight"] = weight
    # Only an explicit option changes the cap: "none" clears it, leaving it out keeps it.
    if ctx.get_parameter_source("max_concurrency") == ParameterSource.COMMANDLINE:
        changes["max_concurrency"] = max_concurrency
    if not changes:
        raise click.UsageError("Give --weight and/or --max-concurrency.")
    try:
        with transaction() as session:
            user = set_share(session, get_user_by_name(session, name), changes, actor=CLI)
    except PromptqError as exc:
        raise _fail(exc) from None
    cap = CLEAR if user.max_concurrency is None else user.max_concurrency
    click.echo(f"{user.name}: weight {user.weight}, max concurrency {cap}")


@users.command("set-team")
@click.argument("name")
@click.argument("team")
def users_set_team(name: str, team: str) -> None:
    """Put user NAME in team TEAM (a team name), or in none with "none". Only the user's next
    jobs are held against the new team's budgets."""
    try:
        with transaction() as session:
            user = get_user_by_name(session, name)
            joined = None if team.strip().lower() == CLEAR else get_team_by_name(session, team)
            set_team(session, user, None if joined is None else joined.id, actor=CLI)
    except PromptqError as exc:
        raise _fail(exc) from None
    click.echo(f"{user.name}: team {CLEAR if joined is None else joined.name}")


@main.group()
def teams() -> None:
    """Manage teams: budgets shared by their members, checked with each member's own."""


@teams.command("create")
@click.argument("name")
@click.option("--daily", type=BudgetParam(), help="USD per UTC day for the whole team.")
@click.option("--monthly", type=BudgetParam(), help="USD per calendar month for the whole team.")
def teams_create(name: str, daily: Any, monthly: Any) -> None:
    """Create a team called NAME and print its id."""
    checked = _checked(TeamCreate, name=name)
    try:
        with transaction() as session:
            team = create_team(
                session,
                checked.name,
                daily_budget_usd=daily,
                monthly_budget_usd=monthly,
                actor=CLI,
            )
    except PromptqError as exc:
        raise _fail(exc) from None
    click.echo(str(team.id))


@teams.command("list")
def teams_list() -> None:
    """Print every team: id, name, daily and monthly budget in USD ("none": no ceiling)."""
    with transaction() as session:
        everyone = list_teams(session)
    for team in everyone:
        daily = _shown_budget(team.daily_budget_usd)
        monthly = _shown_budget(team.monthly_budget_usd)
        click.echo(f"{team.id}\t{team.name}\t{daily}\t{monthly}")


@teams.command("set-budget")
@click.argument("name")
@click.option("--daily", type=BudgetParam(), help='USD per UTC day, or "none" to clear.')
@click.option("--monthly", type=BudgetParam(), help='USD per calendar month, or "none".')
@click.pass_context
def teams_set_budget(ctx: click.Context, name: str, daily: Any, monthly: Any) -> None:
    """Set the daily and/or monthly budget of team NAME."""
    changes = _budget_changes(ctx, daily, monthly)
    try:
        with transaction() as session:
            team = set_team_budgets(session, get_team_by_name(session, name), changes, actor=CLI)
    except PromptqError as exc:
        raise _fail(exc) from None
    daily_out = _shown_budget(team.daily_budget_usd)
    monthly_out = _shown_budget(team.monthly_budget_usd)
    click.echo(f"{team.name}: daily {daily_out}, monthly {monthly_out}")


def _on_off(value: bool) -> str:
    return "on" if value else "off"


@users.command("set-safety")
@click.argument("name")
@click.option("--scrub-pii/--no-scrub-pii", default=None, help="Scrub PII from every prompt.")
@click.option(
    "--restore-pii/--no-restore-pii", default=None, help="Scrub, and restore it in answers."
)
@click.option(
    "--keep-original-prompts/--no-keep-original-prompts",
    default=None,
    help="Stored jobs keep the original prompt (otherwise the scrubbed one).",
)
@click.option(
    "--injection-screening",
    type=click.Choice(["flag", "reject", CLEAR]),
    help='Screen every prompt for injection: flag, reject, or "none" (off).',
)
def users_set_safety(
    name: str,
    scrub_pii: bool | None,
    restore_pii: bool | None,
    keep_original_prompts: bool | None,
    injection_screening: str | None,
) -> None:
    """Set the input safety of user NAME (README: "Input safety"); options left out are kept.
    Running API processes apply it within KEY_CACHE_S."""
    changes: dict[str, object] = {
        field: value
        for field, value in (
            ("scrub_pii", scrub_pii),
            ("restore_pii", restore_pii),
            ("keep_original_prompts", keep_original_prompts),
        )
        if value is not None
    }
    if injection_screening is not None:
        changes["injection_screening"] = (
            None if injection_screening == CLEAR else injection_screening
        )
    if not changes:
        raise click.UsageError(
            "Give --[no-]scrub-pii, --[no-]restore-pii, --[no-]keep-original-prompts and/or "
            "--injection-screening."
        )
    try:
        with transaction() as session:
            user = get_user_by_name(session, name)
            set_input_safety(session, user, changes, get_settings().pii_vault_key, actor=CLI)
    except PromptqError as exc:
        raise _fail(exc) from None
    click.echo(
        f"{user.name}: scrub pii {_on_off(user.scrub_pii)}, restore pii "
        f"{_on_off(user.restore_pii)}, keep original prompts "
        f"{_on_off(user.keep_original_prompts)}, injection screening "
        f"{user.injection_screening or CLEAR}"
    )


@main.group()
def keys() -> None:
    """Manage API keys."""


@keys.command("create")
@click.argument("user")
@click.option("--name", help="A label to tell the key apart.")
@click.option(
    "--expires-in-days", type=click.IntRange(1, 3650), help="Expire the key after N days."
)
def keys_create(user: str, name: str | None, expires_in_days: int | None) -> None:
    """Create an API key for USER (a user name) and print it; it is shown only this once."""
    checked = _checked(KeyCreate, name=name, expires_in_days=expires_in_days)
    try:
        with transaction() as session:
            issued = issue_key(
                session,
                get_user_by_name(session, user),
                name=checked.name,
                expires_at=checked.expiry(),
                actor=CLI,
            )
    except PromptqError as exc:
        raise _fail(exc) from None
    click.echo(issued.plaintext)


def _status(key: ApiKey, now: datetime) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


@keys.command("list")
@click.argument("user")
def keys_list(user: str) -> None:
    """Print USER's keys (never the key itself): id, prefix, name, status, created, expires."""
    try:
        with transaction() as session:
            owned = list_keys(session, get_user_by_name(session, user).id)
    except PromptqError as exc:
        raise _fail(exc) from None
    now = datetime.now(UTC)
    for key in owned:
        expires = key.expires_at.isoformat() if key.expires_at else "never"
        click.echo(
            f"{key.id}\t{key.prefix}\t{key.name or '-'}\t{_status(key, now)}\t"
            f"{key.created_at.isoformat()}\t{expires}"
        )


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke the key with id KEY_ID (from `promptq keys list`); it stops working at once."""
    try:
        with transaction() as session:
            key = revoke_key(session, get_key(session, path_id(key_id, "API key")), actor=CLI)
    except PromptqError as exc:
        raise _fail(exc) from None
    assert key.revoked_at is not None  # revoke_key sets it
    click.echo(f"revoked {key.id} ({key.prefix}) at {key.revoked_at.isoformat()}")


register_user_commands(main)
