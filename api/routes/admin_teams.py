"""The operator's teams under /v1/admin/teams: create, list, get them and set their budgets (a
user joins one through PATCH /v1/admin/users/<id>, `team_id`).

Every route needs the operator's ADMIN_API_KEY: api.auth.require_admin runs before each one."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api import openapi
from api.auth import require_admin
from api.locations import located
from api.request_scope import db, parse_body, path_id
from api.schemas.teams import TeamCreate, TeamList, TeamOut, TeamUpdate
from shared.models import Team
from shared.repositories.audit_log import ADMIN
from shared.repositories.teams import create_team, get_team, list_teams, set_team_budgets

bp = Blueprint("admin_teams", __name__, url_prefix="/v1/admin/teams")
bp.before_request(require_admin)
TAGS = ["admin"]


def _team_json(team: Team) -> Response:
    return jsonify(TeamOut.model_validate(team).model_dump(mode="json"))


@bp.post("")
@openapi.operation(
    summary="Create a team",
    request=TeamCreate,
    responses={201: TeamOut},
    errors=[409],
    auth="admin",
    tags=TAGS,
)
def create_team_route() -> tuple[Response, int]:
    """Budgets are decimal dollars for all members together, checked with each member's own at
    admission; a taken name is a 409."""
    body = parse_body(TeamCreate)
    session = db()
    team = create_team(
        session,
        body.name,
        daily_budget_usd=body.daily_budget_usd,
        monthly_budget_usd=body.monthly_budget_usd,
        actor=ADMIN,
    )
    session.commit()
    return located(_team_json(team), "admin_teams.get_team_route", team_id=str(team.id)), 201


@bp.get("")
@openapi.operation(summary="List teams", responses={200: TeamList}, auth="admin", tags=TAGS)
def list_teams_route() -> Response:
    """In creation order."""
    teams = TeamList(data=[TeamOut.model_validate(t) for t in list_teams(db())])
    return jsonify(teams.model_dump(mode="json"))


@bp.get("/<team_id>")
@openapi.operation(summary="Get a team", responses={200: TeamOut}, auth="admin", tags=TAGS)
def get_team_route(team_id: str) -> Response:
    return _team_json(get_team(db(), path_id(team_id, "team")))


@bp.patch("/<team_id>")
@openapi.operation(
    summary="Set a team's budgets",
    request=TeamUpdate,
    responses={200: TeamOut},
    auth="admin",
    tags=TAGS,
)
def update_team_route(team_id: str) -> Response:
    """A budget given as null is cleared (no ceiling); one left out is kept. A lower budget
    refuses new jobs; it never takes back what is already held."""
    session = db()
    team = get_team(session, path_id(team_id, "team"))
    set_team_budgets(session, team, parse_body(TeamUpdate).changes(), actor=ADMIN)
    session.commit()
    return _team_json(team)
