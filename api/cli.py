"""`promptq`: the admin command line (users and API keys)."""

from __future__ import annotations

import click

from shared.db import transaction
from shared.errors import PromptqError
from shared.repositories.api_keys import issue_key
from shared.repositories.users import create_user, get_user_by_name


@click.group()
def main() -> None:
    """promptq administration."""


@main.group()
def users() -> None:
    """Manage users."""


@users.command("create")
@click.argument("name")
def users_create(name: str) -> None:
    """Create a user called NAME and print its id."""
    try:
        with transaction() as session:
            user = create_user(session, name)
    except PromptqError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(str(user.id))


@main.group()
def keys() -> None:
    """Manage API keys."""


@keys.command("create")
@click.argument("user")
def keys_create(user: str) -> None:
    """Create an API key for USER (a user name) and print it; it is shown only this once."""
    try:
        with transaction() as session:
            issued = issue_key(session, get_user_by_name(session, user))
    except PromptqError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(issued.plaintext)
