"""`neurocompile lava setup`: create the Python 3.10 environment the lava target runs in."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from neurocompile.cli.common import console, emit_json, report_options


@click.group("lava")
def lava_group() -> None:
    """The Lava environment (a Python 3.10 venv with lava-nc) that the lava target uses."""


@lava_group.command("setup")
@click.option("--python", "python", default=None, metavar="PY310",
              help="Python 3.10 to build the venv from (default: $PYTHON310, python3.10 on "
                   "PATH, then pyenv's newest 3.10).")
@click.option("--dir", "directory", default=None, type=click.Path(path_type=Path),
              help="Where to create the venv (default: $XDG_DATA_HOME/neurocompile/venv-lava, "
                   "where the lava target looks).")
@click.option("--with", "extra", multiple=True, metavar="REQ",
              help="A further requirement to install there (repeatable), e.g. pytest.")
@report_options
def setup_cmd(python: str | None, directory: Path | None, extra: tuple[str, ...],
              json_out: str | None) -> None:
    """Create (or complete) the Lava venv, install lava-nc 0.10.0 and this package's
    dependencies there, then run the demo graph through it as `lava-check` does."""
    import os

    from neurocompile import lava_setup
    from neurocompile.doctor import check_target
    from neurocompile.errors import UnsupportedError
    from neurocompile.targets.lava.target import LAVA_PYTHON_ENV

    target = directory or lava_setup.default_directory()
    log = (lambda line: click.echo(line, err=True)) if not console.quiet else (lambda _: None)
    venv_python = lava_setup.setup(target, python, list(extra), log=log)
    previous = os.environ.get(LAVA_PYTHON_ENV)
    os.environ[LAVA_PYTHON_ENV] = str(venv_python)
    try:
        report = check_target("lava")
    finally:
        if previous is None:
            os.environ.pop(LAVA_PYTHON_ENV, None)
        else:
            os.environ[LAVA_PYTHON_ENV] = previous
    if report["status"] != "ok":
        raise UnsupportedError(f"{target}: created, but the Lava worker {report['status']}: "
                               f"{report['detail']}")
    default = directory is None or Path(directory).resolve() == \
        lava_setup.default_directory().resolve()
    hint = "" if default else f"; use it with {LAVA_PYTHON_ENV}={venv_python}"
    console.print(f"Lava environment ready: {venv_python} (demo graph round trip in "
                  f"{report['wall_s']:.2f} s){hint}")
    emit_json(json_out, {"python": str(venv_python), "directory": str(target),
                         "check": report, "executable": sys.executable})
