"""The semantic cache of one job: the pipeline's SemanticCache, over PostgreSQL and this
process's index of sign codes.

The job's question is embedded once, at its first lookup, and reused for every model of its
chain and for storing the answer. A lookup brings the scope's index up to date (one statement:
the entries it does not hold yet), ranks the scope by sign code in memory, and reads the best
few candidates' embeddings and answers (one statement) to score them exactly. Any failure of a
lookup or a store (a database outage, an answer PostgreSQL cannot store, the embedder, an entry
of an older shape) costs the job its saving, never its answer: the call goes ahead, and a paid
answer is never lost for want of a cache entry.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import asdict
from typing import Any

from shared.db import one_statement
from shared.logging import get_logger
from shared.outages import is_database_outage
from shared.repositories.semantic_cache import Code, add_entry, candidates, codes_after
from shared.settings import Settings
from worker.pipeline import SemanticHit
from worker.providers.base import ProviderRequest, ProviderResponse
from worker.semantic.codes import Vector, cosine, from_float16, sign_code, to_float16
from worker.semantic.embedder import get_embedder
from worker.semantic.index import OVERLAP_S, CodeIndex
from worker.semantic.scope import Question, question

log = get_logger(__name__)

_index: CodeIndex | None = None
_index_lock = threading.Lock()


def get_index(settings: Settings) -> CodeIndex:
    """The process's index of sign codes, made on first use."""
    global _index
    with _index_lock:
        if _index is None:
            _index = CodeIndex(settings.semantic_cache_index_entries)
        return _index


class JobSemanticCache:
    def __init__(
        self,
        user_id: uuid.UUID,
        response_format: dict[str, Any] | None,
        threshold: float,
        settings: Settings,
        scrubbed: bool = False,
    ) -> None:
        self._user_id = user_id
        self._scrubbed = scrubbed
        self._response_format = response_format
        self._threshold = threshold
        self._settings = settings
        self._vectors: dict[str, Vector] = {}

    def _question(self, request: ProviderRequest) -> tuple[Question, Vector] | None:
        embedder = get_embedder()
        asked = question(
            self._user_id, request, self._response_format, embedder.model_id, self._scrubbed
        )
        if asked is None:
            return None
        vector = self._vectors.get(asked.text)
        if vector is None:
            vector = self._vectors[asked.text] = embedder.embed(asked.text)
        return asked, vector

    def lookup(self, request: ProviderRequest) -> SemanticHit | None:
        try:
            found = self._question(request)
            if found is None:
                return None
            asked, vector = found
            return self._best(asked.scope, vector)
        except Exception as exc:
            _log_failure("semantic_cache.lookup_failed", exc)
            return None

    def _best(self, scope: bytes, vector: Vector) -> SemanticHit | None:
        def read(after: int, newest: int) -> list[Code]:
            with one_statement() as session:
                return codes_after(
                    session,
                    self._user_id,
                    scope,
                    after=after,
                    newest=newest,
                    recent_s=OVERLAP_S,
                )

        ids = get_index(self._settings).nearest(
            scope, sign_code(vector), self._settings.semantic_cache_candidates, read
        )
        if not ids:
            return None
        with one_statement() as session:
            found = candidates(session, self._user_id, scope, ids)
        best: SemanticHit | None = None
        for candidate in found:
            similarity = cosine(vector, from_float16(candidate.embedding))
            if similarity >= self._threshold and (best is None or similarity > best.similarity):
                best = SemanticHit(ProviderResponse(**candidate.response), similarity)
        if best is None:
            return None
        # float16 embeddings carry about four decimals.
        return SemanticHit(best.response, round(best.similarity, 4))

    def store(self, request: ProviderRequest, response: ProviderResponse) -> None:
        try:
            found = self._question(request)
            if found is None:
                return
            asked, vector = found
            with one_statement() as session:
                add_entry(
                    session,
                    user_id=self._user_id,
                    scope=asked.scope,
                    code=sign_code(vector),
                    embedding=to_float16(vector),
                    response=asdict(response),
                    ttl_s=self._settings.semantic_cache_ttl_s,
                )
        except Exception as exc:
            _log_failure("semantic_cache.store_failed", exc)


def _log_failure(event: str, exc: Exception) -> None:
    # An outage is expected now and then; anything else is a defect worth its traceback.
    if is_database_outage(exc):
        log.warning(event, error=repr(exc))
    else:
        log.exception(event)
