"""The semantic cache's parts on the real model and PostgreSQL: the embeddings, the scopes that
keep tenants and parameters apart, the lookup through this process's index of sign codes, the
lifetime of entries, and that a job without it loads and asks nothing."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import numpy as np
from sqlalchemy import func, select, update

from devstack.stack import ROOT
from shared.db import one_statement, transaction
from shared.models import SemanticCacheEntry
from shared.repositories.semantic_cache import Code, add_entry, codes_after, purge_expired
from shared.settings import Settings
from tests.conftest import Account, Services
from worker.providers.base import Message, ProviderRequest, ProviderResponse
from worker.semantic.codes import CODE_BITS, cosine, from_float16, sign_code, to_float16
from worker.semantic.embedder import get_embedder
from worker.semantic.index import OVERLAP_IDS, OVERLAP_S, CodeIndex
from worker.semantic.scope import question
from worker.semantic_cache import JobSemanticCache

PROMPT = "How do I reverse a list in Python?"
PARAPHRASE = "How can I reverse a Python list?"
UNRELATED = "Give me a recipe for banana bread."
NEAR_MISS = "How do I sort a list in Python?"
ANSWER = ProviderResponse("Use reversed() or list.reverse().", "stop", "stop", 9, 8, "gpt-4o-mini")


def _request(prompt: str, model: str = "gpt-4o-mini", **fields: object) -> ProviderRequest:
    messages = (*fields.pop("before", ()), Message("user", prompt))
    return ProviderRequest(model, messages, **{"max_tokens": 20, "temperature": 0.0, **fields})


def test_a_paraphrase_scores_above_the_default_threshold_and_others_below() -> None:
    """The shipped model puts a paraphrase above 0.95 and an unrelated prompt or a near miss
    (same words, another question) far below; vectors are unit length and survive float16."""
    embed = get_embedder().embed
    prompt = embed(PROMPT)
    assert abs(float(np.linalg.norm(prompt)) - 1) < 1e-5
    assert cosine(prompt, embed(PARAPHRASE)) > 0.95
    assert cosine(prompt, embed(NEAR_MISS)) < 0.8
    assert cosine(prompt, embed(UNRELATED)) < 0.3
    assert abs(cosine(prompt, from_float16(to_float16(prompt))) - 1) < 1e-3


def test_scopes_keep_users_models_parameters_and_context_apart() -> None:
    """Only the last user message may differ by meaning: another user, model, max_tokens,
    temperature, response format, earlier message or PII scrubbing is another scope."""
    alice, bob = uuid.uuid4(), uuid.uuid4()

    def scope(user: uuid.UUID, request: ProviderRequest, fmt: object = None) -> bytes:
        asked = question(user, request, fmt, "model-a")  # type: ignore[arg-type]
        assert asked is not None
        return asked.scope

    base = scope(alice, _request(PROMPT))
    assert scope(alice, _request(PARAPHRASE)) == base
    scrubbed = question(alice, _request(PROMPT), None, "model-a", scrubbed=True)
    assert scrubbed is not None and scrubbed.scope != base
    others = [
        scope(bob, _request(PROMPT)),
        scope(alice, _request(PROMPT, model="gpt-4o")),
        scope(alice, _request(PROMPT, max_tokens=21)),
        scope(alice, _request(PROMPT, temperature=None)),
        scope(alice, _request(PROMPT), {"type": "json_object"}),
        scope(alice, _request(PROMPT, before=(Message("system", "Answer in French."),))),
    ]
    assert base not in others and len(set(others)) == len(others)
    assert question(alice, ProviderRequest("m", (Message("system", "x"),), 5), None, "a") is None


def _cache(user: str, threshold: float = 0.95) -> JobSemanticCache:
    return JobSemanticCache(uuid.UUID(user), None, threshold, Settings())


def test_lookup_serves_a_paraphrase_only_within_its_scope(
    make_account: Callable[[str], Account],
) -> None:
    """A stored answer is found again for a paraphrase of its prompt, with the similarity; an
    unrelated prompt, another user's identical prompt and another model find nothing; an
    expired entry is not served and the purge deletes it."""
    alice, bob = make_account("alice").user_id, make_account("bob").user_id
    _cache(alice).store(_request(PROMPT), ANSWER)

    hit = _cache(alice).lookup(_request(PARAPHRASE))
    assert hit is not None and hit.response == ANSWER and 0.95 <= hit.similarity < 1
    exact = _cache(alice).lookup(_request(PROMPT))
    assert exact is not None and exact.similarity == 1.0
    assert _cache(alice).lookup(_request(UNRELATED)) is None
    assert _cache(alice).lookup(_request(NEAR_MISS)) is None
    assert _cache(bob).lookup(_request(PROMPT)) is None
    assert _cache(alice).lookup(_request(PROMPT, model="gpt-4o")) is None
    # A lower threshold lets the near miss through: the threshold is the job's own.
    assert _cache(alice, threshold=0.5).lookup(_request(NEAR_MISS)) is not None

    with transaction() as session:
        session.execute(update(SemanticCacheEntry).values(expires_at=func.now()))
    assert _cache(alice).lookup(_request(PROMPT)) is None
    with one_statement() as session:
        assert purge_expired(session, 100) == 1
        assert session.scalar(select(func.count()).select_from(SemanticCacheEntry)) == 0


def test_an_answer_that_cannot_be_stored_costs_the_saving_not_the_job(
    make_account: Callable[[str], Account],
) -> None:
    """PostgreSQL's JSONB refuses a NUL character, and a model may answer one: the store fails
    quietly (the paid answer goes on to the job's final write) and nothing is cached."""
    alice = make_account("alice").user_id
    unstorable = replace(ANSWER, content="before\u0000after")
    _cache(alice).store(_request(PROMPT), unstorable)
    assert _cache(alice).lookup(_request(PROMPT)) is None
    with one_statement() as session:
        assert session.scalar(select(func.count()).select_from(SemanticCacheEntry)) == 0


def _codes(count: int, rng: np.random.Generator) -> list[bytes]:
    vectors = rng.standard_normal((count, 384)).astype(np.float32)
    return [sign_code(v / np.linalg.norm(v)) for v in vectors]


def test_the_index_ranks_a_paraphrase_first_among_thousands() -> None:
    """Among 20,000 unrelated entries, the sign code of a paraphrase's prompt ranks first, and
    expired entries are never candidates."""
    rng = np.random.default_rng(7)
    embed = get_embedder().embed
    rows = [Code(i + 1, c, 4e9) for i, c in enumerate(_codes(20_000, rng))]
    rows.append(Code(20_001, sign_code(embed(PROMPT)), 4e9))
    rows.append(Code(20_002, sign_code(embed(PARAPHRASE)), 1.0))
    assert len(rows[0].code) * 8 == CODE_BITS
    index = CodeIndex(100_000)
    found = index.nearest(b"s", sign_code(embed(PARAPHRASE)), 16, lambda after, newest: rows)
    assert found[0] == 20_001 and 20_002 not in found and len(found) == 16


def test_the_index_reads_only_new_rows_and_catches_late_commits() -> None:
    """After the first full read, a lookup asks only for rows above the highest id held, and
    for recent ones a little below it, so a row whose lower id committed late is still found;
    rows held are not added twice."""
    rng = np.random.default_rng(8)
    codes = _codes(5, rng)
    asked: list[tuple[int, int]] = []
    visible = [Code(5001, codes[0], 4e9), Code(5002, codes[1], 4e9), Code(5004, codes[3], 4e9)]

    def read(after: int, newest: int) -> list[Code]:
        asked.append((after, newest))
        return [row for row in visible if row.id > after]

    index = CodeIndex(100_000)
    assert sorted(index.nearest(b"s", codes[2], 10, read)) == [5001, 5002, 5004]
    visible += [Code(5003, codes[2], 4e9), Code(5005, codes[4], 4e9)]
    found = index.nearest(b"s", codes[2], 10, read)
    assert found[0] == 5003 and sorted(found) == [5001, 5002, 5003, 5004, 5005]
    assert asked == [(0, 0), (5004 - OVERLAP_IDS, 5004)]


def test_a_late_commit_is_read_while_it_is_recent(make_account: Callable[[str], Account]) -> None:
    """The statement behind the index's reads returns rows above the highest id held, and below
    it only those created in the last OVERLAP_S seconds."""
    user = uuid.UUID(make_account("late").user_id)
    rng = np.random.default_rng(10)
    ids = []
    with one_statement() as session:
        for code in _codes(3, rng):
            ids.append(
                add_entry(
                    session,
                    user_id=user,
                    scope=b"scope",
                    code=code,
                    embedding=b"",
                    response={},
                    ttl_s=60,
                )
            )
    with transaction() as session:
        session.execute(
            update(SemanticCacheEntry)
            .where(SemanticCacheEntry.id == ids[0])
            .values(created_at=func.now() - timedelta(seconds=OVERLAP_S + 1))
        )
        # The others stay recent however long this test is stalled between its statements.
        session.execute(
            update(SemanticCacheEntry)
            .where(SemanticCacheEntry.id.in_(ids[1:]))
            .values(created_at=func.now() + timedelta(hours=1))
        )

    def read(after: int, newest: int) -> list[int]:
        with one_statement() as session:
            rows = codes_after(
                session, user, b"scope", after=after, newest=newest, recent_s=OVERLAP_S
            )
        return [row.id for row in rows]

    assert read(0, 0) == ids
    assert read(0, ids[2]) == ids[1:]
    assert read(ids[1], ids[2]) == ids[2:]
    assert read(0, ids[2] + 10) == ids[1:]


def test_the_index_forgets_the_least_recently_used_scope() -> None:
    """Past its size, the index drops the scope used longest ago, and reads it in full again
    when it is asked for; the scopes it holds are only brought up to date."""
    rng = np.random.default_rng(9)
    codes = _codes(400, rng)
    asked: dict[bytes, list[int]] = {b"a": [], b"b": [], b"c": []}

    def reader(scope: bytes) -> Callable[[int, int], list[Code]]:
        def read(after: int, newest: int) -> list[Code]:
            asked[scope].append(newest)
            return [Code(10_001 + i, c, 4e9) for i, c in enumerate(codes) if 10_001 + i > newest]

        return read

    index = CodeIndex(1000)
    for scope in (b"a", b"b", b"a", b"c", b"a", b"b"):
        index.nearest(scope, codes[0], 4, reader(scope))
    assert asked == {b"a": [0, 10_400, 10_400], b"b": [0, 0], b"c": [0]}


def test_a_job_without_the_semantic_cache_loads_and_asks_nothing(services: Services) -> None:
    """Off is free: a worker process that builds and runs the spec of an ordinary job never
    imports the embedding stack, and its spec carries no semantic cache to ask."""
    script = f"""
import sys, uuid
sys.path.insert(0, {str(ROOT)!r})
from shared.repositories.job_leases import Claim
from worker.providers.base import ProviderRequest
from worker.tasks.run_job import _spec
from shared.settings import get_settings
claim = Claim(uuid.uuid4(), uuid.uuid4(), "gpt-4o-mini",
              {{"messages": [{{"role": "user", "content": "hi"}}], "max_tokens": 5,
                "temperature": 0}}, uuid.uuid4(), cache=True)
request = ProviderRequest.from_job(claim.model, claim.request)
assert _spec(claim, request, get_settings()).semantic is None
loaded = [m for m in ("onnxruntime", "tokenizers", "worker.semantic_cache") if m in sys.modules]
assert not loaded, loaded
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
