"""The commands of promptq's processes, as `make dev`, the e2e tests and the Procfile run them."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, pool, text

from devstack.processes import BIN, ManagedProcess
from shared.queueing import WORKER_QUEUES
from shared.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent
FLOWER_CONFIG = ROOT / "worker" / "flower_config.py"
# Any fixed number, the same in every process that migrates this database.
MIGRATION_LOCK_KEY = 0x70726F6D707471  # "promptq"


def migrate(database_url: str, alembic_ini: Path = ROOT / "alembic.ini") -> None:
    """`alembic upgrade head` against `database_url`."""
    config = Config(str(alembic_ini))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


def migrate_locked(database_url: str, alembic_ini: Path = ROOT / "alembic.ini") -> None:
    """migrate() under a PostgreSQL advisory lock. Processes that start together (several web
    processes, several hosts) then migrate one after another, the later ones finding the
    schema at head; two concurrent `alembic upgrade` runs would both try the same DDL."""
    engine = create_engine(database_url, poolclass=pool.NullPool)
    try:
        # Autocommit: the lock is the session's; no transaction stays open while alembic runs.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            try:
                migrate(database_url, alembic_ini)
            finally:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
    finally:
        engine.dispose()


def simulator_env(sim_url: str) -> dict[str, str]:
    """Both providers' SDKs pointed at the simulator at `sim_url`."""
    return {
        "OPENAI_BASE_URL": f"{sim_url}/v1",
        "OPENAI_API_KEY": "sk-sim",
        "ANTHROPIC_BASE_URL": sim_url,
        "ANTHROPIC_API_KEY": "sk-ant-sim",
    }


def sim_process(
    port: int, log_dir: Path, latency_ms: float = 0.0, hang_s: float | None = None
) -> ManagedProcess:
    """The provider simulator; `hang_s` bounds how long a `hang` fault holds a call."""
    argv = [str(BIN / "python"), "-m", "sim", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--latency-ms", str(latency_ms)]
    if hang_s is not None:
        argv += ["--hang-s", str(hang_s)]
    return ManagedProcess("sim", argv, {}, log_dir / "sim.log", cwd=ROOT)


# How gunicorn serves the API. gevent: a long-poll (GET /v1/jobs/<id>?wait=N) parks a greenlet, so
# hundreds of waiters leave submissions their share; gthread's handful of threads would all be
# parked by the first waiters (figures: the bench's long-poll scenario, README "Serving model").
# The gthread entries stay selectable for that comparison.
API_WORKER_CLASSES: dict[str, tuple[str, ...]] = {
    "gevent": ("--worker-class", "gevent", "--worker-connections", "1000"),
    "gthread": ("--worker-class", "gthread", "--threads", "4"),
    # Enough threads for 500 waiters over two processes, for the same comparison.
    "gthread-300": ("--worker-class", "gthread", "--threads", "300"),
}


def api_process(
    port: int,
    env: Mapping[str, str],
    log_dir: Path,
    workers: int = 2,
    worker_class: str = "gevent",
) -> ManagedProcess:
    argv = [
        str(BIN / "gunicorn"),
        # Metrics summed over the worker processes, and gunicorn's own lines as JSON.
        "--config",
        "python:api.gunicorn_conf",
        "api.wsgi:app",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        *API_WORKER_CLASSES[worker_class],
        "--access-logfile",
        "-",
        "--graceful-timeout",
        "10",
        # gunicorn's own 414 is an HTML page; its largest finite limit keeps the JSON API in
        # charge of all but absurd URLs.
        "--limit-request-line",
        "8190",
    ]
    return ManagedProcess("api", argv, env, log_dir / "api.log", cwd=ROOT)


def worker_process(
    env: Mapping[str, str],
    log_dir: Path,
    name: str = "worker",
    concurrency: int | None = None,
    queues: Sequence[str] = WORKER_QUEUES,
    metrics_port: int = 0,
) -> ManagedProcess:
    """A Celery worker (jobs by default; `queues=(WEBHOOK_QUEUE,)` for webhook deliveries);
    without `concurrency` it uses the WORKER_CONCURRENCY setting. `metrics_port` 0 serves no
    /metrics (several workers on one host need a port each)."""
    argv = [
        str(BIN / "celery"),
        "-A",
        "worker.celery_app",
        "worker",
        "--queues",
        ",".join(queues),
        "--pool",
        "threads",
        "--hostname",
        f"{name}@%h",
        "--loglevel",
        "INFO",
        "--without-mingle",
        "--without-gossip",
    ]
    if concurrency is not None:
        argv += ["--concurrency", str(concurrency)]
    env = {**env, "WORKER_METRICS_PORT": str(metrics_port)}
    return ManagedProcess(name, argv, env, log_dir / f"{name}.log", cwd=ROOT)


def beat_process(env: Mapping[str, str], log_dir: Path) -> ManagedProcess:
    """Celery beat: schedules the sweeper. Run exactly one per deployment. Its schedule file is
    the BEAT_SCHEDULE_FILE setting (in `log_dir` unless `env` names one), as under the
    Procfile."""
    # --quiet: no text banner, so in JSON mode every line is JSON.
    argv = [str(BIN / "celery"), "--quiet", "-A", "worker.celery_app", "beat", "--loglevel", "INFO"]
    env = {"BEAT_SCHEDULE_FILE": str(log_dir / "celerybeat-schedule"), **env}
    return ManagedProcess("beat", argv, env, log_dir / "beat.log", cwd=ROOT)


def flower_process(
    port: int, env: Mapping[str, str], log_dir: Path, db: Path | None = None
) -> ManagedProcess:
    """Flower with promptq's configuration (worker/flower_config.py): `env` must give
    FLOWER_BASIC_AUTH; its state goes to `db` (default: in `log_dir`)."""
    argv = [
        str(BIN / "celery"),
        "-A",
        "worker.celery_app",
        "flower",
        f"--conf={FLOWER_CONFIG}",
        "--address=127.0.0.1",
        f"--port={port}",
    ]
    env = {**env, "FLOWER_DB": str(db or log_dir / "flower.db")}
    return ManagedProcess("flower", argv, env, log_dir / "flower.log", cwd=ROOT)


def main(argv: list[str] | None = None) -> int:
    """`python -m devstack.stack migrate`: the Procfile's web process runs it before gunicorn."""
    parser = argparse.ArgumentParser(prog="python -m devstack.stack")
    parser.add_argument("command", choices=["migrate"])
    parser.parse_args(argv)
    # alembic.ini from the working directory, as `alembic upgrade head` reads it: an installed
    # package (the Docker image) has no project root of its own.
    migrate_locked(get_settings().database_url, Path.cwd() / "alembic.ini")
    print("migrations: the database schema is at head", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
