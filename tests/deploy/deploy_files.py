"""The deployment files as data: docker-compose.yml, the Dockerfile, Prometheus' and Grafana's
configuration. No Docker engine is needed: the tests read the files the engine would."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
LOCK_FILE = ROOT / "requirements.lock"
PROMETHEUS_FILE = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD_FILE = ROOT / "deploy" / "grafana" / "dashboards" / "promptq.json"
GRAFANA_PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error} ...: compose's interpolation.
_INTERPOLATION = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
)


@cache
def compose() -> dict[str, Any]:
    # safe_load resolves the `<<: *anchor` merges compose relies on.
    return yaml.safe_load(COMPOSE_FILE.read_text())


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def promptq_services() -> dict[str, dict[str, Any]]:
    """The services that run this repository's image (built from its Dockerfile)."""
    return {name: s for name, s in services().items() if "build" in s}


def is_one_shot(service: dict[str, Any]) -> bool:
    return str(service.get("restart", "no")) == "no"


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.partition("=")[::2] for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def unescape(text: str) -> str:
    """What the container gets for a string compose does not interpolate: `$$` is a `$`."""
    return text.replace("$$", "$")


def interpolation_defaults(text: str) -> dict[str, str]:
    """{variable: its default} of every `${VAR:-default}` in `text`."""
    return {
        m["name"]: m["arg"] or "" for m in _INTERPOLATION.finditer(text) if m["op"] in (":-", "-")
    }


def as_argv(command: str | list[Any]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def command(service: dict[str, Any]) -> list[str]:
    """The argv the service's container runs: its own command, else the image's CMD."""
    if "command" in service:
        return as_argv(service["command"])
    if "build" in service:
        return dockerfile().cmd
    raise AssertionError("a service of another image without a command")


def healthcheck_argv(service: dict[str, Any]) -> list[str] | None:
    """The healthcheck as the argv it runs (CMD-SHELL split as sh would), or None."""
    check = service.get("healthcheck") or {}
    test = check.get("test")
    if check.get("disable") or not test or test == ["NONE"]:
        return None
    if isinstance(test, str):
        return shlex.split(unescape(test))
    kind, *rest = test
    if kind == "CMD-SHELL":
        return shlex.split(unescape(rest[0]))
    assert kind == "CMD", f"healthcheck test must start with CMD or CMD-SHELL, not {kind}"
    return [unescape(part) for part in rest]


def option(argv: list[str], *names: str) -> str | None:
    """The value of `--name value` or `--name=value` in argv (the last one given)."""
    found = None
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                found = argv[i + 1]
            elif arg.startswith(name + "="):
                found = arg[len(name) + 1 :]
    return found


def bind_mounts(service: dict[str, Any]) -> dict[Path, str]:
    """{file or folder of the repository: where it is mounted} for `./...` volumes."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = _volume(volume)
        if source.startswith("."):
            mounts[(ROOT / source).resolve()] = target
    return mounts


def named_volumes(service: dict[str, Any]) -> dict[str, str]:
    """{named volume: where it is mounted}."""
    return {
        source: target
        for source, target in map(_volume, service.get("volumes", []))
        if not source.startswith((".", "/"))
    }


def _volume(volume: str | dict[str, Any]) -> tuple[str, str]:
    if isinstance(volume, dict):
        return volume["source"], volume["target"]
    source, target, *_ = volume.split(":")
    return source, target


@dataclass(frozen=True)
class Dockerfile:
    instructions: list[tuple[str, str]]

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    @property
    def cmd(self) -> list[str]:
        (args,) = self.all("CMD")
        return json.loads(args)

    @property
    def healthcheck(self) -> list[str]:
        """The argv of `HEALTHCHECK [options] CMD [...]` (exec form)."""
        (args,) = self.all("HEALTHCHECK")
        match = re.search(r"(?:^|\s)CMD\s+(\[.*\])\s*$", args)
        assert match, f"HEALTHCHECK needs the exec form CMD [...]: {args}"
        return json.loads(match[1])

    def copied(self) -> set[str]:
        """Every source the image COPYs from the repository."""
        sources: set[str] = set()
        for args in self.all("COPY"):
            *parts, _destination = shlex.split(args)
            sources.update(p for p in parts if not p.startswith("--"))
        return sources


@cache
def dockerfile() -> Dockerfile:
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    instructions = []
    for line in logical:
        keyword, _, args = line.strip().partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    return Dockerfile(instructions)


@cache
def prometheus_config() -> dict[str, Any]:
    return yaml.safe_load(PROMETHEUS_FILE.read_text())


def scrape_jobs() -> dict[str, dict[str, Any]]:
    return {job["job_name"]: job for job in prometheus_config()["scrape_configs"]}


def scrape_targets(job: dict[str, Any]) -> Iterator[tuple[str, int]]:
    """(host, port) of each static target and DNS name of a scrape job."""
    for static in job.get("static_configs", []):
        for target in static["targets"]:
            host, _, port = target.rpartition(":")
            yield host, int(port)
    for dns in job.get("dns_sd_configs", []):
        for name in dns["names"]:
            yield name, int(dns["port"])


def repository_path(service: dict[str, Any], container_path: str) -> Path:
    """The repository file a container path of `service` is (through its bind mounts)."""
    for source, target in bind_mounts(service).items():
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return source / container_path[len(target) :].lstrip("/")
    raise AssertionError(f"{container_path} is not mounted from the repository")


@cache
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD_FILE.read_text())


def dashboard_panels() -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows too."""

    def walk(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in panels:
            yield panel
            yield from walk(panel.get("panels", []))

    yield from walk(dashboard()["panels"])
