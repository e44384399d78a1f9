"""Uploaded files: store, find, list and delete a user's files."""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy import delete, literal, select, tuple_
from sqlalchemy.orm import Session, defer

from shared.errors import NotFoundError
from shared.models import File


def new_file_id() -> str:
    return f"file-{secrets.token_hex(12)}"


def store_file(
    session: Session, user_id: uuid.UUID, purpose: str, filename: str, content: bytes
) -> File:
    row = File(
        id=new_file_id(),
        user_id=user_id,
        purpose=purpose,
        filename=filename,
        bytes=len(content),
        content=content,
    )
    session.add(row)
    session.flush()
    session.refresh(row)
    return row


def get_file(session: Session, file_id: str, user_id: uuid.UUID, *, with_content: bool) -> File:
    """The user's file; someone else's is as missing as one that never existed. Its bytes are
    loaded only when asked for (they can be hundreds of megabytes)."""
    query = select(File).where(File.id == file_id, File.user_id == user_id)
    if not with_content:
        query = query.options(defer(File.content))
    row = session.scalars(query).one_or_none()
    if row is None:
        raise NotFoundError(f"No file with id {file_id!r}.")
    return row


def list_files(
    session: Session, user_id: uuid.UUID, purpose: str | None, after: str | None, limit: int
) -> list[File]:
    """The user's files newest first, after the file `after` (keyset paging), content left out."""
    query = select(File).where(File.user_id == user_id).options(defer(File.content))
    if purpose is not None:
        query = query.where(File.purpose == purpose)
    if after is not None:
        anchor = get_file(session, after, user_id, with_content=False)
        query = query.where(
            tuple_(File.created_at, File.id)
            < tuple_(literal(anchor.created_at), literal(anchor.id))
        )
    return list(
        session.scalars(query.order_by(File.created_at.desc(), File.id.desc()).limit(limit))
    )


def delete_file(session: Session, file_id: str, user_id: uuid.UUID) -> None:
    deleted = session.execute(
        delete(File).where(File.id == file_id, File.user_id == user_id).returning(File.id)
    ).first()
    if deleted is None:
        raise NotFoundError(f"No file with id {file_id!r}.")
