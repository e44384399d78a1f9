"""Whether a command a container runs would start what it names, short of running it: each
program's own argument parser reads the argv (an unknown option fails as it would at start),
and the modules, apps, configuration files and queues it names must exist in this repository."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from tests.deploy.deploy_files import ROOT


@dataclass
class Checked:
    """What a command turned out to run."""

    program: str
    subcommand: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    # Files of the repository the command reads (they must be in the image too).
    files: list[Path] = field(default_factory=list)


def check(argv: list[str]) -> Checked:
    program = Path(argv[0]).name
    checker = _CHECKERS.get(program)
    assert checker, f"{argv[0]} is not a program of this project's image"
    return checker(argv)


def _module_defines(module: str, name: str) -> None:
    spec = importlib.util.find_spec(module)
    assert spec and spec.origin, f"no module {module}"
    tree = ast.parse(Path(spec.origin).read_text())
    assigned = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    assert name in assigned, f"{module} defines no {name}"


def _gunicorn(argv: list[str]) -> Checked:
    from gunicorn.config import Config

    try:
        args = Config().parser().parse_args(argv[1:])
    except SystemExit as exc:
        raise AssertionError(f"gunicorn rejects {argv[1:]}") from exc
    assert args.config, "gunicorn without --config runs without api.gunicorn_conf (metrics, logs)"
    kind, _, module = args.config.partition(":")
    assert kind == "python", f"--config {args.config}: expected python:<module>"
    assert importlib.util.find_spec(module), f"no module {module}"
    (target,) = args.args
    wsgi_module, _, app = target.partition(":")
    _module_defines(wsgi_module, app)
    return Checked("gunicorn", params=vars(args))


def _celery(argv: list[str]) -> Checked:
    from celery.app.utils import find_app
    from celery.bin.base import CLIContext
    from celery.bin.celery import celery as celery_cli

    args = argv[1:]
    at = next(i for i, arg in enumerate(args) if arg in celery_cli.commands)
    name, group_args, sub_args = args[at], args[:at], args[at + 1 :]
    group = celery_cli.make_context("celery", group_args)
    app = find_app(group.params["app"])
    group.obj = CLIContext(app=app, no_color=True, workdir=None, quiet=True)
    subcommand = celery_cli.get_command(group, name)
    try:
        params = subcommand.make_context(name, sub_args, parent=group).params
    except click.ClickException as exc:
        raise AssertionError(f"celery {name} rejects {sub_args}: {exc.format_message()}") from exc
    checked = Checked("celery", name, params)
    if name == "worker":
        known = {queue.name for queue in app.conf.task_queues}
        unknown = set(params["queues"] or ()) - known
        assert not unknown, f"celery worker --queues names queues the app lacks: {unknown}"
    if name == "flower":
        checked.files = _flower_options(params["tornado_argv"])
    return checked


def _flower_options(tornado_argv: tuple[str, ...]) -> list[Path]:
    import flower.options  # noqa: F401  (defines Flower's options in tornado's registry)
    from tornado.options import options

    files = []
    for arg in tornado_argv:
        name, _, value = arg.lstrip("-").partition("=")
        assert arg.startswith("--") and name.replace("_", "-") in options._options, (
            f"flower has no option {arg}"
        )
        if name == "conf":
            path = ROOT / value
            assert path.is_file(), f"flower --conf={value}: no such file in the repository"
            files.append(path)
    return files


def _python(argv: list[str]) -> Checked:
    if argv[1] == "-c":
        compile(argv[2], "<healthcheck>", "exec")
        return Checked("python", params={"code": argv[2]})
    assert argv[1] == "-m", f"python {argv[1]}: expected -m <module> or -c <code>"
    module, args = argv[2], argv[3:]
    assert importlib.util.find_spec(f"{module}.__main__") or importlib.util.find_spec(module)
    main = importlib.import_module(f"{module}.__main__")
    params: dict[str, Any] = {}
    if hasattr(main, "parse_args"):
        try:
            params = vars(main.parse_args(args))
        except SystemExit as exc:
            raise AssertionError(f"python -m {module} rejects {args}") from exc
    return Checked("python", module, params)


def _alembic(argv: list[str]) -> Checked:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    assert argv[1:] == ["upgrade", "head"], f"unexpected alembic command {argv[1:]}"
    ini = ROOT / "alembic.ini"
    script = ScriptDirectory.from_config(Config(str(ini)))
    assert script.get_current_head(), "alembic finds no head revision"
    return Checked("alembic", "upgrade", files=[ini, Path(script.dir)])


_CHECKERS = {
    "gunicorn": _gunicorn,
    "celery": _celery,
    "python": _python,
    "alembic": _alembic,
}
