"""Users: create and find."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.errors import ConflictError, NotFoundError
from shared.models import User


def create_user(session: Session, name: str) -> User:
    """Add a user named `name`; ConflictError if the name is taken."""
    user = User(name=name)
    try:
        with session.begin_nested():
            session.add(user)
            session.flush()
    except IntegrityError:
        raise ConflictError(f"A user named {name!r} already exists.") from None
    return user


def get_user_by_name(session: Session, name: str) -> User:
    user = session.scalars(select(User).where(User.name == name)).one_or_none()
    if user is None:
        raise NotFoundError(f"No user named {name!r}.")
    return user
