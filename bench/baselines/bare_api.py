"""Baseline (a): the bare stack's accept path, served by gunicorn with promptq's own flags.

POST /jobs parses the JSON body, does one INSERT ... RETURNING into a JSONB table, commits and
publishes one Celery message (bench.bare_celery's task, by name, as promptq publishes run_job),
and answers 202 with the row's id. No auth, limits or budget: the floor promptq's accept path is
measured against. Configured from the environment: BENCH_BARE_DATABASE_URL and BENCH_REDIS_URL
(bench.bare_celery reads the latter).
"""

from __future__ import annotations

import os
import threading

import psycopg
from flask import Flask, Response, jsonify, request
from psycopg.types.json import Jsonb

from bench.bare_celery import publish_sleep

TABLE = "bare_jobs"
CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id bigserial PRIMARY KEY,
    body jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""
_INSERT = f"INSERT INTO {TABLE} (body) VALUES (%s) RETURNING id, created_at"

app = Flask(__name__)
# One connection per gunicorn thread, kept open: the cheapest correct way for a plain Flask app.
_local = threading.local()


def create_table(database_url: str) -> None:
    """Create the baseline's table in the bench database (the bench calls this once)."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(CREATE_TABLE)


def _connection() -> psycopg.Connection:
    connection = getattr(_local, "connection", None)
    if connection is None or connection.closed:
        connection = psycopg.connect(os.environ["BENCH_BARE_DATABASE_URL"])
        _local.connection = connection
    return connection


@app.post("/jobs")
def accept() -> tuple[Response, int]:
    body = request.get_json()
    connection = _connection()
    with connection.transaction():
        job_id, created_at = connection.execute(_INSERT, (Jsonb(body),)).fetchone()
    publish_sleep(0.0)
    return jsonify(id=str(job_id), status="queued", created_at=created_at.isoformat()), 202
