"""`make dev`: bring the whole stack up on this machine, print how to use it, stop it on Ctrl-C.

PostgreSQL and Redis come from DATABASE_URL / REDIS_URL when set, otherwise embedded servers
are started under the data folder. The provider simulator stands in for OpenAI and Anthropic
unless OPENAI_API_KEY or ANTHROPIC_API_KEY is set.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType

from devstack.embedded import start_embedded
from devstack.processes import BIN, ManagedProcess, http_ok, wait_until
from devstack.stack import (
    ROOT,
    api_process,
    beat_process,
    flower_process,
    migrate,
    sim_process,
    simulator_env,
    worker_process,
)
from shared.queueing import WEBHOOK_QUEUE
from shared.settings import normalize_database_url

DEMO_USER = "demo"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".data" / "dev")
    parser.add_argument("--api-port", type=int, default=8000)
    parser.add_argument("--sim-port", type=int, default=8090)
    parser.add_argument("--flower-port", type=int, default=5555)
    return parser.parse_args(argv)


def _demo_key(env: dict[str, str]) -> str:
    """Create the demo user if needed and a fresh key for it, through the admin CLI."""
    cli = str(BIN / "promptq")
    full_env = {**os.environ, **env}
    # Fails harmlessly when the demo user exists from an earlier run.
    subprocess.run([cli, "users", "create", DEMO_USER], env=full_env, capture_output=True)
    done = subprocess.run(
        [cli, "keys", "create", DEMO_USER], env=full_env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    log_dir = args.data_dir / "logs"
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    env: dict[str, str] = {"LOG_JSON": "true"}
    database_url = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    embedded = None
    processes: list[ManagedProcess] = []
    try:
        if not database_url or not redis_url:
            print(f"Starting embedded PostgreSQL and Valkey under {args.data_dir} ...", flush=True)
            embedded = start_embedded(args.data_dir)
            database_url = database_url or embedded.database_url
            redis_url = redis_url or embedded.redis_url
        env["DATABASE_URL"] = normalize_database_url(database_url)
        env["REDIS_URL"] = redis_url

        print("Migrating ...", flush=True)
        migrate(env["DATABASE_URL"])
        key = _demo_key(env)

        if not (os.environ.get("OPENAI_API_KEY") or os.environ.get("ANTHROPIC_API_KEY")):
            sim_url = f"http://127.0.0.1:{args.sim_port}"
            env |= simulator_env(sim_url)
            processes.append(sim_process(args.sim_port, log_dir).start())
        api = f"http://127.0.0.1:{args.api_port}"
        env["PUBLIC_BASE_URL"] = api
        # Webhooks to receivers on this machine (the SSRF guard refuses loopback otherwise).
        env["WEBHOOK_ALLOWED_NETWORKS"] = os.environ.get(
            "WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128"
        )
        processes.append(api_process(args.api_port, env, log_dir).start())
        processes.append(worker_process(env, log_dir).start())
        processes.append(
            worker_process(env, log_dir, name="webhooks", queues=(WEBHOOK_QUEUE,)).start()
        )
        processes.append(beat_process(env, log_dir).start())
        processes.append(flower_process(args.flower_port, env, log_dir).start())

        wait_until(lambda: http_ok(f"{api}/ready"), timeout=60, what="the API to be ready")
        wait_until(
            lambda: http_ok(f"http://127.0.0.1:{args.flower_port}/healthcheck"),
            timeout=60,
            what="Flower",
        )
        print(_banner(api, args.flower_port, key, log_dir), flush=True)
        while not stop.wait(1.0):
            dead = [p.name for p in processes if not p.alive()]
            if dead:
                print(f"Stopped unexpectedly: {', '.join(dead)} (logs in {log_dir})", flush=True)
                return 1
        return 0
    finally:
        print("Stopping ...", flush=True)
        for process in reversed(processes):
            process.stop()
        if embedded is not None:
            embedded.stop()


def _banner(api: str, flower_port: int, key: str, log_dir: Path) -> str:
    submit = (
        f"curl -s -X POST {api}/v1/jobs -H 'Authorization: Bearer {key}' "
        "-H 'Content-Type: application/json' "
        '-d \'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello!"}]}\''
    )
    poll = f"curl -s {api}/v1/jobs/<id> -H 'Authorization: Bearer {key}'"
    return "\n".join(
        [
            "",
            "promptq is up.",
            f"  API     {api}",
            f"  Flower  http://127.0.0.1:{flower_port}",
            f"  Logs    {log_dir}",
            f"  Demo API key: {key}",
            "",
            "Submit a job:",
            f"  {submit}",
            "Poll it (put the returned id in place of <id>):",
            f"  {poll}",
            "",
            "Ctrl-C stops everything.",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
