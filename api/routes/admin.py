"""The operator's admin API under /v1/admin: users, their budgets, team, fair share and keys
(teams themselves: api/routes/admin_teams.py).

Every route needs the operator's ADMIN_API_KEY: api.auth.require_admin runs before each one."""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, jsonify
from sqlalchemy.orm import Session

from api import openapi
from api.auth import forget_key, require_admin
from api.locations import located
from api.request_scope import db, parse_body, parse_query, path_id
from api.schemas.admin import (
    AdminKeyCreate,
    KeyUpdate,
    PageQuery,
    UserCreate,
    UserOut,
    UserPage,
    UserUpdate,
)
from api.schemas.keys import KeyCreated, KeyList, KeyOut
from shared.errors import NotFoundError, ValidationError
from shared.models import ApiKey, Team, User
from shared.repositories.api_keys import get_key, issue_key, list_keys, revoke_key, update_key
from shared.repositories.audit_log import ADMIN
from shared.repositories.teams import get_team
from shared.repositories.users import (
    BUDGET_FIELDS,
    INPUT_SAFETY_FIELDS,
    SHARE_FIELDS,
    create_user,
    get_user,
    list_users,
    set_budgets,
    set_input_safety,
    set_share,
    set_team,
)
from shared.settings import get_settings

bp = Blueprint("admin", __name__, url_prefix="/v1/admin")
bp.before_request(require_admin)
TAGS = ["admin"]


def _user_json(user: User) -> Response:
    return jsonify(UserOut.model_validate(user).model_dump(mode="json"))


def _key_json(key: ApiKey) -> Response:
    return jsonify(KeyOut.model_validate(key).model_dump(mode="json"))


@bp.post("/users")
@openapi.operation(
    summary="Create a user",
    request=UserCreate,
    responses={201: UserOut},
    errors=[409],
    auth="admin",
    tags=TAGS,
)
def create_user_route() -> tuple[Response, int]:
    """Budgets are decimal dollars (strings keep them exact); a taken name is a 409."""
    body = parse_body(UserCreate)
    session = db()
    user = create_user(
        session,
        body.name,
        daily_budget_usd=body.daily_budget_usd,
        monthly_budget_usd=body.monthly_budget_usd,
        actor=ADMIN,
    )
    session.commit()
    return located(_user_json(user), "admin.get_user_route", user_id=str(user.id)), 201


@bp.get("/users")
@openapi.operation(
    summary="List users", query=PageQuery, responses={200: UserPage}, auth="admin", tags=TAGS
)
def list_users_route() -> Response:
    """In creation order, a page at a time (limit, offset)."""
    page = parse_query(PageQuery)
    # One row more than asked tells whether another page exists.
    users = list_users(db(), limit=page.limit + 1, offset=page.offset)
    out = UserPage(
        data=[UserOut.model_validate(u) for u in users[: page.limit]],
        has_more=len(users) > page.limit,
        limit=page.limit,
        offset=page.offset,
    )
    return jsonify(out.model_dump(mode="json"))


@bp.get("/users/<user_id>")
@openapi.operation(summary="Get a user", responses={200: UserOut}, auth="admin", tags=TAGS)
def get_user_route(user_id: str) -> Response:
    return _user_json(get_user(db(), path_id(user_id, "user")))


def _team(session: Session, team_id: uuid.UUID | None) -> Team | None:
    """The team a PATCH names; an unknown one is a 422 naming team_id."""
    try:
        return None if team_id is None else get_team(session, team_id)
    except NotFoundError as exc:
        problem = f"{exc.message} (GET /v1/admin/teams lists the teams)"
        raise ValidationError(
            f"Invalid request: team_id: {problem}",
            details=[{"field": "team_id", "problem": problem}],
        ) from None


@bp.patch("/users/<user_id>")
@openapi.operation(
    summary="Set a user's budgets, team, weight, concurrency cap and input safety",
    request=UserUpdate,
    responses={200: UserOut},
    auth="admin",
    tags=TAGS,
)
def update_user_route(user_id: str) -> Response:
    """A budget, max_concurrency or team_id given as null is cleared (no ceiling, no cap, no
    team); a field left out is kept. weight and the input-safety booleans cannot be null. A new
    team_id holds the user's next jobs against that team's budgets; jobs already admitted stay
    their old team's."""
    session = db()
    user = get_user(session, path_id(user_id, "user"))
    changes = parse_body(UserUpdate).changes()
    budgets = {f: v for f, v in changes.items() if f in BUDGET_FIELDS}
    share = {f: v for f, v in changes.items() if f in SHARE_FIELDS}
    safety = {f: v for f, v in changes.items() if f in INPUT_SAFETY_FIELDS}
    if budgets:
        set_budgets(session, user, budgets, actor=ADMIN)
    if share:
        set_share(session, user, share, actor=ADMIN)
    if "team_id" in changes:
        team = _team(session, changes["team_id"])
        set_team(session, user, None if team is None else team.id, actor=ADMIN)
    stale_keys: list[str] = []
    if safety:
        stale_keys = set_input_safety(
            session, user, safety, get_settings().pii_vault_key, actor=ADMIN
        )
    session.commit()
    # Read with the key: this process applies the change at once, the others within KEY_CACHE_S.
    for key_hash in stale_keys:
        forget_key(key_hash)
    return _user_json(user)


@bp.post("/users/<user_id>/keys")
@openapi.operation(
    summary="Issue an API key to a user (its plaintext is shown once)",
    request=AdminKeyCreate,
    responses={201: KeyCreated},
    auth="admin",
    tags=TAGS,
)
def create_key_route(user_id: str) -> tuple[Response, int]:
    session = db()
    user = get_user(session, path_id(user_id, "user"))
    body = parse_body(AdminKeyCreate)
    issued = issue_key(
        session,
        user,
        name=body.name,
        expires_at=body.expiry(),
        rpm_limit=body.rpm_limit,
        tpm_limit=body.tpm_limit,
        actor=ADMIN,
    )
    session.commit()
    created = KeyCreated(**KeyOut.model_validate(issued.key).model_dump(), key=issued.plaintext)
    return jsonify(created.model_dump(mode="json")), 201


@bp.get("/users/<user_id>/keys")
@openapi.operation(
    summary="List a user's API keys", responses={200: KeyList}, auth="admin", tags=TAGS
)
def list_keys_route(user_id: str) -> Response:
    session = db()
    user = get_user(session, path_id(user_id, "user"))
    keys = KeyList(data=[KeyOut.model_validate(k) for k in list_keys(session, user.id)])
    return jsonify(keys.model_dump(mode="json"))


@bp.delete("/keys/<key_id>")
@openapi.operation(summary="Revoke an API key", responses={200: KeyOut}, auth="admin", tags=TAGS)
def revoke_key_route(key_id: str) -> Response:
    session = db()
    key = revoke_key(session, get_key(session, path_id(key_id, "API key")), actor=ADMIN)
    session.commit()
    forget_key(key.key_hash)
    return _key_json(key)


@bp.patch("/keys/<key_id>")
@openapi.operation(
    summary="Set an API key's rate limits and expiry",
    request=KeyUpdate,
    responses={200: KeyOut},
    auth="admin",
    tags=TAGS,
)
def update_key_route(key_id: str) -> Response:
    """A field given as null is cleared (limits fall back to the defaults); one left out is
    kept."""
    session = db()
    key = get_key(session, path_id(key_id, "API key"))
    body = parse_body(KeyUpdate)
    update_key(session, key, body.changes(), actor=ADMIN)
    session.commit()
    forget_key(key.key_hash)
    return _key_json(key)
