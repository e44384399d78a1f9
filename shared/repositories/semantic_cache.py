"""The semantic cache's statements: the entries of a scope a worker does not hold yet, the
candidates a lookup scores, a new entry, and the purge of expired ones. Each is one statement.

Every read names the user and the scope, the candidates' too: an entry id from any source
never yields another tenant's answer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Integer,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.orm import Session

from shared.models import SemanticCacheEntry

_entries = SemanticCacheEntry.__table__


@dataclass(frozen=True)
class Code:
    id: int
    code: bytes
    # Seconds since the epoch, by the database's clock.
    expires_at: float


@dataclass(frozen=True)
class Candidate:
    id: int
    embedding: bytes
    response: dict[str, Any]


def _in_scope() -> list[Any]:
    return [
        _entries.c.user_id == bindparam("user_id"),
        _entries.c.scope == bindparam("scope"),
        _entries.c.expires_at > func.now(),
    ]


_AFTER = (
    select(
        _entries.c.id,
        _entries.c.code,
        func.extract("epoch", _entries.c.expires_at).label("expires_at"),
    )
    .where(
        *_in_scope(),
        _entries.c.id > bindparam("after", type_=BigInteger),
        (_entries.c.id > bindparam("newest", type_=BigInteger))
        | (
            _entries.c.created_at
            > func.now()
            - literal_column("interval '1 second'") * bindparam("recent_s", type_=Integer)
        ),
    )
    .order_by(_entries.c.id)
)

_CANDIDATES = select(_entries.c.id, _entries.c.embedding, _entries.c.response).where(
    *_in_scope(), _entries.c.id == func.any(bindparam("ids", type_=ARRAY(BigInteger)))
)

_ADD = (
    insert(_entries)
    .values(
        user_id=bindparam("user_id"),
        scope=bindparam("scope"),
        code=bindparam("code"),
        embedding=bindparam("embedding"),
        response=bindparam("response"),
        expires_at=func.now()
        + literal_column("interval '1 second'") * bindparam("ttl_s", type_=Integer),
    )
    .returning(_entries.c.id)
)


def codes_after(
    session: Session,
    user_id: uuid.UUID,
    scope: bytes,
    *,
    after: int,
    newest: int,
    recent_s: int,
) -> list[Code]:
    """The live entries of the user's scope with an id above `newest`, and those above `after`
    created in the last `recent_s` seconds (ones that may have committed late), in id order."""
    rows = session.connection().execute(
        _AFTER,
        {
            "user_id": user_id,
            "scope": scope,
            "after": after,
            "newest": newest,
            "recent_s": recent_s,
        },
    )
    return [Code(row.id, row.code, float(row.expires_at)) for row in rows]


def candidates(
    session: Session, user_id: uuid.UUID, scope: bytes, ids: list[int]
) -> list[Candidate]:
    """Those of `ids` that are live entries of the user's scope, with what scores them."""
    rows = session.connection().execute(
        _CANDIDATES, {"user_id": user_id, "scope": scope, "ids": ids}
    )
    return [Candidate(row.id, row.embedding, row.response) for row in rows]


def add_entry(
    session: Session,
    *,
    user_id: uuid.UUID,
    scope: bytes,
    code: bytes,
    embedding: bytes,
    response: dict[str, Any],
    ttl_s: int,
) -> int:
    """Insert an entry living `ttl_s` seconds from now; its id."""
    return (
        session.connection()
        .execute(
            _ADD,
            {
                "user_id": user_id,
                "scope": scope,
                "code": code,
                "embedding": embedding,
                "response": response,
                "ttl_s": ttl_s,
            },
        )
        .scalar_one()
    )


def purge_expired(session: Session, limit: int) -> int:
    """Delete up to `limit` expired entries; how many went."""
    doomed = (
        select(_entries.c.id)
        .where(_entries.c.expires_at <= func.now())
        .limit(limit)
        .scalar_subquery()
    )
    result = session.execute(delete(_entries).where(_entries.c.id.in_(doomed)))
    return result.rowcount or 0
