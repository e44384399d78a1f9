"""The image and the installs: the Dockerfile's healthcheck asks the API it starts, every
install (image, `make install`, `make dev`) takes its versions from requirements.lock, and the
lock pins every dependency pyproject.toml declares, within what it allows."""

from __future__ import annotations

import re
import subprocess
import tomllib
from urllib.parse import urlsplit

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy import deploy_files as files
from tests.deploy.commands import check

PYPROJECT = tomllib.loads((files.ROOT / "pyproject.toml").read_text())


def _locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in files.LOCK_FILE.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep, f"requirements.lock: {line!r} is not name==version"
        assert canonicalize_name(name) not in pins, f"requirements.lock pins {name} twice"
        pins[canonicalize_name(name)] = version.strip()
    return pins


def _declared() -> list[Requirement]:
    project = PYPROJECT["project"]
    extras = project.get("optional-dependencies", {}).values()
    return [Requirement(r) for r in [*project["dependencies"], *(r for e in extras for r in e)]]


def test_the_healthcheck_asks_the_api_the_image_starts() -> None:
    """HEALTHCHECK asks /health on the port the default CMD's gunicorn binds, with Python (a
    slim image has no curl)."""
    argv = files.dockerfile().healthcheck
    checked = check(argv)
    assert checked.program == "python"
    (url,) = re.findall(r"http://[^'\"]+", checked.params["code"])
    (bind,) = check(files.dockerfile().cmd).params["bind"]
    assert urlsplit(url).port == int(bind.rpartition(":")[2])
    assert urlsplit(url).path == "/health"


def test_the_image_installs_from_the_lock() -> None:
    """The image copies requirements.lock and every pip install in it is constrained by it or
    installs no dependencies."""
    dockerfile = files.dockerfile()
    assert files.LOCK_FILE.name in dockerfile.copied()
    installs = [
        cmd for run in dockerfile.all("RUN") for cmd in run.split("&&") if "pip install" in cmd
    ]
    assert installs
    for install in installs:
        assert f"-c {files.LOCK_FILE.name}" in install or "--no-deps" in install, install


def test_the_lock_pins_every_declared_dependency() -> None:
    """Each dependency and extra of pyproject.toml is pinned in requirements.lock at a version
    it allows (after a change to pyproject.toml: `make lock`)."""
    locked = _locked()
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement} is not in requirements.lock: run make lock"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"requirements.lock pins {name}=={locked[name]}, outside {requirement}: run make lock"
        )


def _make_dry_run(target: str) -> str:
    # -B: print the install recipes even though the stamps are up to date.
    return subprocess.run(
        ["make", "-n", "-B", target], cwd=files.ROOT, capture_output=True, text=True, check=True
    ).stdout


def test_make_installs_are_constrained_by_the_lock() -> None:
    """`make install` installs every extra and `make dev` only the embedded servers, both with
    the lock as constraints."""
    install = [line for line in _make_dry_run("install").splitlines() if " -e " in line]
    dev = [line for line in _make_dry_run("dev").splitlines() if " -e " in line]
    assert install and dev
    assert all("-c requirements.lock" in line for line in install + dev)
    assert any("-e '.[dev,embedded,bench,semantic]'" in line for line in install)
    assert all("-e '.[embedded]'" in line for line in dev)
