"""The semantic cache's lookup with 100,000 entries in one scope (issue 15; the quick set:
20,000), through the worker's own code: JobSemanticCache.lookup, its index of sign codes in
this process, and PostgreSQL.

The scope is filled by COPY, not through jobs: ten real prompts embedded by the model, 500
look-alikes of each (synthetic vectors at cosine 0.80-0.90 to it, the near misses a paraphrase
must outrank) and random vectors for the rest. Then 200 lookups, cycling through paraphrases
of the ten prompts and ten unrelated prompts, each timed twice: the first time with its
embedding, the second time the lookup alone (the job's embedding is reused). Reported: both
at p50 and p99 (target: lookup p99 <= 20 ms), the first lookup of the process (it reads the
scope's codes into the index), the hits among paraphrases at the default threshold and any
false hits among the unrelated prompts.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from psycopg.types.json import Jsonb

from bench.context import BenchContext
from bench.measure.job_timings import percentiles
from bench.results import Comparison, ScenarioResult
from shared.db import get_autocommit_session_factory, get_engine, get_session_factory
from shared.settings import get_settings, normalize_database_url
from worker.providers.base import Message, ProviderRequest, ProviderResponse
from worker.semantic.codes import sign_code, to_float16
from worker.semantic.embedder import get_embedder
from worker.semantic.scope import question
from worker.semantic_cache import JobSemanticCache

LOOKUPS = 200
COPY = (
    "COPY semantic_cache_entries (user_id, scope, code, embedding, response, expires_at) FROM STDIN"
)
LOOK_ALIKES = 500
THRESHOLD = 0.95
PAIRS = [
    ("How do I reverse a list in Python?", "How can I reverse a Python list?"),
    (
        "Explain what a job queue is in one sentence.",
        "In one sentence, explain what a job queue is.",
    ),
    ("What is the capital of France?", "What's the capital of France?"),
    ("Translate 'good morning' into Spanish.", "Translate 'good morning' to Spanish."),
    ("List three benefits of regular exercise.", "Name three benefits of exercising regularly."),
    ("How many days are there in a leap year?", "How many days does a leap year have?"),
    ("Write a haiku about autumn leaves.", "Write a haiku about the leaves in autumn."),
    ("What does HTTP status 404 mean?", "What is the meaning of HTTP status code 404?"),
    (
        "Summarise the plot of Romeo and Juliet in two sentences.",
        "In two sentences, summarize the plot of Romeo and Juliet.",
    ),
    ("How do I undo the last git commit?", "How can I undo my last git commit?"),
]
UNRELATED = [
    "Give me a recipe for banana bread.",
    "What is the boiling point of water at sea level?",
    "Recommend a good science fiction novel.",
    "How do I change a flat tyre on a bicycle?",
    "Explain the rules of castling in chess.",
    "What time zone is Tokyo in?",
    "Draft a polite email declining a meeting.",
    "Convert 10 miles to kilometres.",
    "Why is the sky blue?",
    "Write a limerick about a cat.",
]


def _request(prompt: str) -> ProviderRequest:
    return ProviderRequest("gpt-4o-mini", (Message("user", prompt),), 64, temperature=0.0)


@contextmanager
def _promptq_database(database_url: str) -> Iterator[None]:
    """This process's promptq settings (and engine) on the bench's database, as a worker's."""
    before = os.environ.get("DATABASE_URL")
    caches = (get_settings, get_engine, get_session_factory, get_autocommit_session_factory)

    def reset() -> None:
        if get_engine.cache_info().currsize:
            get_engine().dispose()
        for cached in caches:
            cached.cache_clear()

    os.environ["DATABASE_URL"] = normalize_database_url(database_url)
    reset()
    try:
        yield
    finally:
        reset()
        if before is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = before


def _unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def _vectors(entries: int, stored: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The stored prompts' vectors, LOOK_ALIKES near misses of each, random ones after."""
    dims = stored.shape[1]
    alike = []
    for vector in stored:
        noise = _unit(rng.standard_normal((LOOK_ALIKES, dims)))
        noise = _unit(noise - np.outer(noise @ vector, vector))
        cosine = rng.uniform(0.80, 0.90, (LOOK_ALIKES, 1))
        alike.append(_unit(cosine * vector + np.sqrt(1 - cosine**2) * noise))
    rest = entries - len(stored) * (LOOK_ALIKES + 1)
    return np.concatenate([stored, *alike, _unit(rng.standard_normal((rest, dims)))])


def _fill(ctx: BenchContext, user_id: uuid.UUID, scope: bytes, vectors: np.ndarray) -> float:
    started = time.monotonic()
    with ctx.stack.db() as connection, connection.cursor() as cursor:
        with cursor.copy(COPY) as rows:
            for i, vector in enumerate(vectors):
                answer = ProviderResponse(f"answer {i}", "stop", "stop", 12, 30, "gpt-4o-mini")
                rows.write_row(
                    (
                        user_id,
                        scope,
                        sign_code(vector),
                        to_float16(vector),
                        Jsonb(answer.__dict__),
                        "infinity",
                    )
                )
        cursor.execute("ANALYZE semantic_cache_entries")
    return time.monotonic() - started


def run(ctx: BenchContext) -> list[ScenarioResult]:
    entries = ctx.sizes.semantic_cache_entries
    lookup_p50 = Comparison("lookup p50", "ms", lower_is_better=True)
    lookup_p99 = Comparison("lookup p99", "ms", lower_is_better=True)
    both_p50 = Comparison("embedding + lookup p50", "ms", lower_is_better=True)
    both_p99 = Comparison("embedding + lookup p99", "ms", lower_is_better=True)
    first = Comparison("first lookup (reads the scope)", "ms", lower_is_better=True)
    served = Comparison(f"paraphrases served of {len(PAIRS)}", "jobs")
    wrong = Comparison(f"unrelated served of {len(UNRELATED)}", "jobs", lower_is_better=True)
    result = ScenarioResult(
        "semantic cache",
        f"{entries:,} entries in one scope: a worker's lookup (target p99 <= 20 ms), also with "
        f"the prompt's embedding; hits at the default threshold {THRESHOLD}",
        [lookup_p50, lookup_p99, both_p50, both_p99, first, served, wrong],
    )
    user_id = uuid.UUID(ctx.stack.user_ids[0])
    embedder = get_embedder()
    asked = question(user_id, _request(PAIRS[0][0]), None, embedder.model_id)
    assert asked is not None
    stored = np.stack([embedder.embed(prompt) for prompt, _ in PAIRS])
    vectors = _vectors(entries, stored, np.random.default_rng(15))
    result.details["fill_s"] = _fill(ctx, user_id, asked.scope, vectors)
    probes = [(para, True) for _, para in PAIRS] + [(text, False) for text in UNRELATED]
    with_embedding: list[float] = []
    alone: list[float] = []
    answered: dict[str, bool] = {}
    with _promptq_database(ctx.stack.database_url):
        settings = get_settings()
        for i in range(LOOKUPS + 1):
            prompt, _ = probes[i % len(probes)]
            cache = JobSemanticCache(user_id, None, THRESHOLD, settings)
            started = time.perf_counter()
            found = cache.lookup(_request(prompt))
            embedded = time.perf_counter()
            cache.lookup(_request(prompt))
            done = time.perf_counter()
            answered.setdefault(prompt, found is not None)
            if i == 0:
                first.promptq.append((embedded - started) * 1000)
                continue
            with_embedding.append((embedded - started) * 1000)
            alone.append((done - embedded) * 1000)
    lookup, both = percentiles(alone), percentiles(with_embedding)
    lookup_p50.promptq.append(lookup["p50"])
    lookup_p99.promptq.append(lookup["p99"])
    both_p50.promptq.append(both["p50"])
    both_p99.promptq.append(both["p99"])
    served.promptq.append(sum(answered[para] for _, para in PAIRS))
    wrong.promptq.append(sum(answered[text] for text in UNRELATED))
    result.details.update(lookup_ms=lookup, embedding_and_lookup_ms=both, lookups=LOOKUPS)
    with ctx.stack.db() as connection:
        connection.execute("TRUNCATE semantic_cache_entries")
    return [result]
