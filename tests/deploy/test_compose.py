"""docker-compose.yml read as the engine would: every promptq command starts something of this
repository, every variable it sets is a promptq setting, every long-running service has a
healthcheck that asks the right process, Flower is guarded and keeps its state, and the
`observability` profile scrapes every service that exports metrics."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from shared.settings import Settings
from tests.deploy import deploy_files as files
from tests.deploy.commands import check

SETTINGS = {name.upper() for name in Settings.model_fields}

# Variables set on promptq services that are not promptq settings, and who reads them.
NOT_SETTINGS = {
    "WEB_CONCURRENCY": "gunicorn itself: its number of worker processes",
}

# The node name Celery gives a process without --hostname.
DEFAULT_NODE_NAMES = {"worker": "celery@%h", "beat": "celerybeat@%h"}

# The services that serve /metrics, by how Prometheus finds their port.
METRICS_PORT_SETTING = "WORKER_METRICS_PORT"

PROMPTQ = files.promptq_services()
LONG_RUNNING = {name: s for name, s in files.services().items() if not files.is_one_shot(s)}


def _commands(service: dict) -> list[list[str]]:
    """The service's command and, for promptq's image, its healthcheck's."""
    argvs = [files.command(service)]
    health = files.healthcheck_argv(service)
    if health is not None:
        argvs.append(health)
    return argvs


@pytest.mark.parametrize("name", sorted(PROMPTQ))
def test_promptq_commands_start_what_they_name(name: str) -> None:
    """Each promptq service's command and healthcheck parse with the program's own parser, and
    the modules, Celery app, queues and configuration files they name exist here and are
    copied into the image."""
    copied = files.dockerfile().copied()
    for argv in _commands(PROMPTQ[name]):
        checked = check(argv)
        for path in checked.files:
            top = path.relative_to(files.ROOT).parts[0]
            assert top in copied, f"{name}: {path} is not copied into the image"


@pytest.mark.parametrize("name", sorted(PROMPTQ))
def test_promptq_environment_is_settings(name: str) -> None:
    """Every variable set on a promptq service is a field of shared/settings.py:Settings (a
    typo would be ignored silently: the settings allow unknown variables), unless listed in
    NOT_SETTINGS with who reads it."""
    unknown = set(files.environment(PROMPTQ[name])) - SETTINGS - set(NOT_SETTINGS)
    assert not unknown, f"{name} sets variables promptq does not read: {sorted(unknown)}"


def test_not_settings_are_not_settings() -> None:
    """A variable listed as read by something else has not since become a promptq setting."""
    assert not set(NOT_SETTINGS) & SETTINGS


@pytest.mark.parametrize("name", sorted(LONG_RUNNING))
def test_long_running_services_have_healthchecks(name: str) -> None:
    """Every service that stays up says whether it is healthy."""
    assert files.healthcheck_argv(LONG_RUNNING[name]) is not None, f"{name} has no healthcheck"


def test_one_shot_services_do_not_run_the_image_healthcheck() -> None:
    """The image's HEALTHCHECK asks the API; a one-shot container (migrations) has nothing to
    answer it, so it turns it off."""
    one_shot = [name for name, s in PROMPTQ.items() if files.is_one_shot(s)]
    assert one_shot == ["migrate"]
    for name in one_shot:
        assert PROMPTQ[name]["healthcheck"] == {"disable": True}


def _listening_port(service: dict) -> int | None:
    """The HTTP port the service's command listens on."""
    argv = files.command(service)
    checked = check(argv)
    if checked.program == "gunicorn":
        (bind,) = checked.params["bind"]
        return int(bind.rpartition(":")[2])
    if checked.program == "python":
        return checked.params.get("port")
    if checked.subcommand == "flower":
        return int(files.option(argv, "--port"))
    return None


def _health_urls(argv: list[str]) -> list[str]:
    return re.findall(r"https?://[^'\" ]+", " ".join(argv))


@pytest.mark.parametrize("name", sorted(PROMPTQ))
def test_http_healthchecks_ask_the_port_the_service_listens_on(name: str) -> None:
    """A healthcheck over HTTP asks the container's own address at the port its command binds."""
    health = files.healthcheck_argv(PROMPTQ[name])
    for url in _health_urls(health or []):
        parts = urlsplit(url)
        assert parts.hostname == "127.0.0.1"
        assert parts.port == _listening_port(PROMPTQ[name]), f"{name}: {url}"


@pytest.mark.parametrize("name", ["worker", "webhooks", "beat"])
def test_celery_healthchecks_ping_their_own_node(name: str) -> None:
    """A Celery process's healthcheck pings its own node name (the --hostname it runs with, or
    Celery's default) in this container, so a ping answered by another replica cannot pass for
    it."""
    service = PROMPTQ[name]
    argv = files.command(service)
    node = files.option(argv, "--hostname", "-n") or DEFAULT_NODE_NAMES[check(argv).subcommand]
    health = check(files.healthcheck_argv(service))
    assert (health.subcommand, health.params["command"]) == ("inspect", "ping")
    assert health.params["destination"] == [node.replace("%h", "$HOSTNAME")]


def test_beat_answers_pings() -> None:
    """Beat answers `inspect ping` only with remote control on."""
    assert check(files.command(PROMPTQ["beat"])).params["remote_control"] is True


def test_flower_is_guarded_and_keeps_its_state() -> None:
    """Flower runs with worker/flower_config.py, basic auth from FLOWER_BASIC_AUTH (user:password
    by default too) and its state file on a named volume."""
    flower = PROMPTQ["flower"]
    argv = files.command(flower)
    assert files.option(argv, "--conf") == "worker/flower_config.py"
    env = files.environment(flower)
    (default,) = files.interpolation_defaults(env["FLOWER_BASIC_AUTH"]).values()
    user, _, password = default.partition(":")
    assert user and password
    state = Path(env["FLOWER_DB"])
    assert state.is_absolute()
    volumes = files.named_volumes(flower)
    assert str(state.parent) in volumes.values(), "FLOWER_DB is not on a named volume"
    assert set(volumes) <= set(files.compose()["volumes"])


def test_the_postgres_password_is_one_variable() -> None:
    """PostgreSQL's password and every DATABASE_URL come from POSTGRES_PASSWORD, with the same
    default."""
    server = files.environment(files.services()["postgres"])["POSTGRES_PASSWORD"]
    expected = files.interpolation_defaults(server)
    assert set(expected) == {"POSTGRES_PASSWORD"}
    for name, service in PROMPTQ.items():
        url = files.environment(service)["DATABASE_URL"]
        assert files.interpolation_defaults(url) == expected, name
        assert urlsplit(url).password == server, name


def test_the_observability_profile_has_prometheus_and_grafana() -> None:
    """Prometheus and Grafana run in the `observability` profile only, with their configuration
    mounted from the repository; every promptq service runs without a profile."""
    profiled = {
        name: s for name, s in files.services().items() if "observability" in s.get("profiles", [])
    }
    images = {s["image"].partition(":")[0] for s in profiled.values()}
    assert images == {"prom/prometheus", "grafana/grafana"}
    for name, service in profiled.items():
        for source in files.bind_mounts(service):
            assert source.exists(), f"{name} mounts {source}, which is not in the repository"
    assert not any("profiles" in s for s in PROMPTQ.values())
    prometheus = files.services()["prometheus"]
    config = files.option(files.command(prometheus), "--config.file")
    assert files.repository_path(prometheus, config) == files.PROMETHEUS_FILE


def _metrics_port(name: str) -> int:
    service = PROMPTQ[name]
    env = files.environment(service)
    if METRICS_PORT_SETTING in env and check(files.command(service)).subcommand == "worker":
        return int(env[METRICS_PORT_SETTING])
    port = _listening_port(service)
    assert port is not None
    return port


@pytest.mark.parametrize(
    ("job", "service"),
    [("api", "api"), ("worker", "worker"), ("webhooks", "webhooks"), ("flower", "flower")],
)
def test_prometheus_scrapes_each_service_at_its_metrics_port(job: str, service: str) -> None:
    """Each service with /metrics is a scrape job aimed at its compose name and the port it
    serves metrics on; the scalable ones (API and workers) are found by DNS, so every replica
    is its own target."""
    scrape = files.scrape_jobs()[job]
    assert list(files.scrape_targets(scrape)) == [(service, _metrics_port(service))]
    assert scrape.get("metrics_path", "/metrics") == "/metrics"
    if service != "flower":
        assert "dns_sd_configs" in scrape and "static_configs" not in scrape


def test_every_worker_serves_metrics() -> None:
    """Every Celery worker service sets a metrics port, and it is not 0 (off)."""
    for name, service in PROMPTQ.items():
        if check(files.command(service)).subcommand == "worker":
            assert int(files.environment(service)[METRICS_PORT_SETTING]) > 0, name


def test_prometheus_gets_flowers_credentials(tmp_path: Path) -> None:
    """Prometheus' entrypoint writes FLOWER_BASIC_AUTH's first user and password (which may hold
    a colon) to the files its Flower job reads, then execs Prometheus with the command's flags."""
    prometheus = files.services()["prometheus"]
    shell, flag, script, arg0 = prometheus["entrypoint"]
    assert (shell, flag) == ("/bin/sh", "-c")
    auth = files.scrape_jobs()["flower"]["basic_auth"]
    paths = {auth["username_file"], auth["password_file"]}
    (folder,) = {str(Path(p).parent) for p in paths}
    assert folder in prometheus["tmpfs"]
    script = files.unescape(script).replace(folder, str(tmp_path))
    script = script.replace("exec /bin/prometheus", "exec echo")
    command = files.command(prometheus)
    result = subprocess.run(
        ["sh", "-c", script, arg0, *command],
        env={**os.environ, "FLOWER_BASIC_AUTH": "ops:pa:ss,other:secret"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == command
    written = {Path(p).name: (tmp_path / Path(p).name).read_text() for p in paths}
    assert written == {
        Path(auth["username_file"]).name: "ops",
        Path(auth["password_file"]).name: "pa:ss",
    }
    assert (
        files.environment(prometheus)["FLOWER_BASIC_AUTH"]
        == files.environment(PROMPTQ["flower"])["FLOWER_BASIC_AUTH"]
    )
