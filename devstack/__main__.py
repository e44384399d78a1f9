"""`make dev`: bring the whole stack up on this machine, print how to use it, stop it on Ctrl-C.

PostgreSQL and Redis come from DATABASE_URL / REDIS_URL when set (in the environment or in
`.env`), otherwise embedded servers are started under the data folder. The provider simulator
stands in for OpenAI and Anthropic unless OPENAI_API_KEY or ANTHROPIC_API_KEY is set.

While it runs, the URLs of the servers it started are written to a marked block of `.env`, which
every promptq process and the `promptq` CLI read from the project root, so `promptq users create`
in another terminal reaches them. Values set in the environment or elsewhere in `.env` are used
and never overwritten; the block goes when make dev stops. Kept in the data folder across
starts: the demo user's API key (`demo-key`, replaced only once the API refuses it) and Flower's
generated credentials (`flower-auth`, unless FLOWER_BASIC_AUTH is set).
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType

import requests
from dotenv import dotenv_values

from devstack.processes import BIN, ManagedProcess, http_ok, port_taken, wait_until
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
FLOWER_USER = "promptq"
BLOCK_START = "# >>> make dev: the servers it runs (rewritten at each start, removed at its stop)"
BLOCK_END = "# <<< make dev"
START_S = 60


class StartupFailed(Exception):
    """A process of the stack exited while it was starting."""


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".data" / "dev")
    # Environment defaults, so that `make dev API_PORT=8001` works (make exports them).
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("API_PORT", 8000)))
    parser.add_argument("--sim-port", type=int, default=int(os.environ.get("SIM_PORT", 8090)))
    parser.add_argument("--flower-port", type=int, default=int(os.environ.get("FLOWER_PORT", 5555)))
    # Each worker process serves its own /metrics; two on one host need a port each.
    parser.add_argument(
        "--metrics-port", type=int, default=int(os.environ.get("METRICS_PORT", 9101))
    )
    parser.add_argument("--env-file", type=Path, default=ROOT / ".env")
    return parser.parse_args(argv)


def _outside_block(text: str) -> list[str]:
    lines, inside = [], False
    for line in text.splitlines():
        if line.strip() == BLOCK_START:
            inside = True
        elif inside and line.strip() == BLOCK_END:
            inside = False
        elif not inside:
            lines.append(line)
    return lines


def user_env(path: Path) -> dict[str, str]:
    """What the user set in the env file, make dev's own block left out."""
    if not path.exists():
        return {}
    text = "\n".join(_outside_block(path.read_text()))
    return {k: v for k, v in dotenv_values(stream=io.StringIO(text)).items() if v is not None}


def write_block(path: Path, values: Mapping[str, str]) -> None:
    """Replace make dev's block of the env file with `values` (none: drop the block, and the
    file if nothing else is left), keeping every other line; a new file is readable by its
    owner only (it may hold secrets)."""
    if not path.exists() and not values:
        return
    lines = _outside_block(path.read_text()) if path.exists() else []
    while lines and not lines[-1].strip():
        lines.pop()
    if values:
        lines += ["", BLOCK_START, *(f"{k}={v}" for k, v in values.items()), BLOCK_END]
    elif not any(line.strip() for line in lines):
        # Nothing but make dev's block was in it.
        path.unlink()
        return
    temporary = path.with_name(f".{path.name}.devstack")
    temporary.write_text("\n".join(lines).lstrip("\n") + "\n")
    os.chmod(temporary, stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o600)
    os.replace(temporary, path)


def _kept_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret stored at `path`, or a new one from `make` stored there (owner only)."""
    if path.exists() and path.read_text().strip():
        return path.read_text().strip()
    value = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(value + "\n")
    return value


def _cli(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "promptq"), *args], env={**os.environ, **env}, capture_output=True, text=True
    )


def _demo_key(api: str, env: Mapping[str, str], path: Path) -> tuple[str, bool]:
    """The demo user's API key and whether it is the stored one: kept while the API accepts
    it; otherwise (first start, database reset, key revoked) a new one for a new or existing
    demo user, through the admin CLI."""
    if path.exists():
        key = path.read_text().strip()
        answer = requests.get(
            f"{api}/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=10
        )
        if answer.status_code == 200:
            return key, True
        if answer.status_code != 401:
            raise StartupFailed(f"checking the demo key: {answer.status_code} {answer.text}")
    # Fails harmlessly when the demo user exists.
    _cli(env, "users", "create", DEMO_USER)
    created = _cli(env, "keys", "create", DEMO_USER)
    if created.returncode != 0:
        raise StartupFailed(f"promptq keys create {DEMO_USER}: {created.stderr.strip()}")
    key = created.stdout.strip()
    path.unlink(missing_ok=True)
    return _kept_secret(path, lambda: key), False


def _wait(condition: Callable[[], bool], processes: Sequence[ManagedProcess], what: str) -> None:
    """wait_until, failing at once (with the end of its log) when a process exits."""

    def done() -> bool:
        for process in processes:
            if not process.alive():
                tail = process.log_text().strip().splitlines()[-5:]
                raise StartupFailed(
                    f"{process.name} exited while starting (log: {process.log_path}):\n  "
                    + "\n  ".join(tail)
                )
        return condition()

    try:
        wait_until(done, timeout=START_S, what=what, reraise=(StartupFailed,))
    except TimeoutError:
        raise StartupFailed(f"timed out after {START_S}s waiting for {what}") from None


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    data_dir: Path = args.data_dir
    log_dir = data_dir / "logs"
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    configured = {**user_env(args.env_file), **os.environ}
    use_sim = not (configured.get("OPENAI_API_KEY") or configured.get("ANTHROPIC_API_KEY"))
    ports = {
        "the API": ("API_PORT", args.api_port),
        "Flower": ("FLOWER_PORT", args.flower_port),
        "the job worker's metrics": ("METRICS_PORT", args.metrics_port),
        "the webhook worker's metrics (METRICS_PORT + 1)": ("METRICS_PORT", args.metrics_port + 1),
    }
    if use_sim:
        ports["the simulator"] = ("SIM_PORT", args.sim_port)
    for what, (variable, port) in ports.items():
        if port_taken(port):
            print(
                f"make dev: port {port} ({what}) is already in use; stop what listens there or "
                f"choose another port: make dev {variable}={port + 1}",
                file=sys.stderr,
            )
            return 1

    env: dict[str, str] = {"LOG_JSON": "true"}
    database_url = configured.get("DATABASE_URL")
    redis_url = configured.get("REDIS_URL")
    embedded = None
    processes: list[ManagedProcess] = []
    written = False
    try:
        if not database_url or not redis_url:
            # Imported only when needed: they are the `embedded` extra.
            from devstack.embedded import start_embedded

            print(f"Starting embedded PostgreSQL and Valkey under {data_dir} ...", flush=True)
            embedded = start_embedded(data_dir)
            chosen = {}
            if not database_url:
                database_url = chosen["DATABASE_URL"] = normalize_database_url(
                    embedded.database_url
                )
            if not redis_url:
                redis_url = chosen["REDIS_URL"] = embedded.redis_url
            write_block(args.env_file, chosen)
            written = True
        env["DATABASE_URL"] = normalize_database_url(database_url)
        env["REDIS_URL"] = redis_url

        print("Migrating ...", flush=True)
        migrate(env["DATABASE_URL"])

        flower_auth = configured.get("FLOWER_BASIC_AUTH") or _kept_secret(
            data_dir / "flower-auth", lambda: f"{FLOWER_USER}:{secrets.token_urlsafe(16)}"
        )
        if use_sim:
            sim_url = f"http://127.0.0.1:{args.sim_port}"
            env |= simulator_env(sim_url)
            processes.append(sim_process(args.sim_port, log_dir).start())
        api = f"http://127.0.0.1:{args.api_port}"
        env["PUBLIC_BASE_URL"] = api
        # Webhooks to receivers on this machine (the SSRF guard refuses loopback otherwise).
        env["WEBHOOK_ALLOWED_NETWORKS"] = configured.get(
            "WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128"
        )
        processes.append(api_process(args.api_port, env, log_dir).start())
        processes.append(worker_process(env, log_dir, metrics_port=args.metrics_port).start())
        processes.append(
            worker_process(
                env,
                log_dir,
                name="webhooks",
                queues=(WEBHOOK_QUEUE,),
                metrics_port=args.metrics_port + 1,
            ).start()
        )
        processes.append(beat_process(env, log_dir).start())
        flower_env = env | {"FLOWER_BASIC_AUTH": flower_auth}
        flower = flower_process(args.flower_port, flower_env, log_dir, db=data_dir / "flower.db")
        processes.append(flower.start())

        _wait(lambda: http_ok(f"{api}/health"), processes, "the API")
        key, reused = _demo_key(api, env, data_dir / "demo-key")
        _wait(lambda: http_ok(f"{api}/ready"), processes, "the stack to be ready")
        flower_url = f"http://127.0.0.1:{args.flower_port}"
        _wait(lambda: http_ok(f"{flower_url}/healthcheck"), processes, "Flower")
        login = flower_auth if "FLOWER_BASIC_AUTH" not in configured else None
        print(
            _banner(
                api,
                flower_url,
                login,
                key,
                reused,
                log_dir,
                args.env_file,
                written,
                args.metrics_port,
            ),
            flush=True,
        )
        while not stop.wait(1.0):
            dead = [p.name for p in processes if not p.alive()]
            if dead:
                print(f"Stopped unexpectedly: {', '.join(dead)} (logs in {log_dir})", flush=True)
                return 1
        return 0
    except StartupFailed as exc:
        print(f"make dev: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        print("Stopping ...", flush=True)
        for process in reversed(processes):
            process.stop()
        if embedded is not None:
            embedded.stop()
        if written:
            write_block(args.env_file, {})


def _banner(
    api: str,
    flower_url: str,
    flower_login: str | None,
    key: str,
    reused: bool,
    log_dir: Path,
    env_file: Path,
    written: bool,
    metrics_port: int,
) -> str:
    submit = (
        f"curl -s -X POST {api}/v1/jobs -H 'Authorization: Bearer {key}' "
        "-H 'Content-Type: application/json' "
        '-d \'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello!"}]}\''
    )
    poll = f"curl -s {api}/v1/jobs/<id> -H 'Authorization: Bearer {key}'"
    if flower_login is None:
        login = "credentials: FLOWER_BASIC_AUTH"
    else:
        user, _, password = flower_login.partition(":")
        login = f"user {user}, password {password}"
    lines = [
        "",
        "promptq is up.",
        f"  API     {api}",
        f"  Flower  {flower_url}  ({login})",
        f"  Metrics {api}/metrics, http://127.0.0.1:{metrics_port}/metrics (job worker), "
        f"http://127.0.0.1:{metrics_port + 1}/metrics (webhook worker)",
        f"  Logs    {log_dir}",
        f"  Demo API key: {key}" + (" (the same as last time)" if reused else " (new)"),
    ]
    if written:
        lines += [
            f"  The servers' URLs are in {env_file} while this runs; from {env_file.parent}:",
            f"    {BIN / 'promptq'} users create alice",
        ]
    return "\n".join(
        [
            *lines,
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
