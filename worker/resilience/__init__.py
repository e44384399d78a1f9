"""Resilience policies for calls to providers: backoff, circuit breaking, concurrency caps and
rate limits.

They are pure policies: no HTTP framework, database or Celery here. Shared state lives in a
redis.Redis handed in by the caller, so every worker process sees the same breaker, permits and
budgets.
"""
