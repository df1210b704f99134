"""The `neurocompile` command. Subcommands live in small modules and are imported on use,
so `neurocompile inspect` never pays for importing torch."""

from __future__ import annotations

import importlib
import os
import signal
import sys

import click

from neurocompile import __version__
from neurocompile.errors import NeurocompileError

# command name -> "module:attribute" of a click.Command. One line per command.
COMMANDS: dict[str, str] = {
    "inspect": "neurocompile.cli.graph_cmds:inspect_cmd",
    "simulate": "neurocompile.cli.graph_cmds:simulate_cmd",
    "compare": "neurocompile.cli.graph_cmds:compare_cmd",
    "targets": "neurocompile.cli.graph_cmds:targets_cmd",
    "demo": "neurocompile.cli.graph_cmds:demo_cmd",
    "pipeline": "neurocompile.cli.pipeline_cmd:pipeline_cmd",
    "compile": "neurocompile.cli.lava_cmds:compile_cmd",
    "lava-check": "neurocompile.cli.lava_cmds:lava_check_cmd",
    "prune": "neurocompile.cli.pass_cmds:prune_cmd",
    "quantize": "neurocompile.cli.pass_cmds:quantize_cmd",
    "energy": "neurocompile.cli.energy_cmd:energy_cmd",
    "train": "neurocompile.cli.train_cmd:train_cmd",
    "export": "neurocompile.cli.export_cmd:export_cmd",
    "doctor": "neurocompile.cli.doctor_cmd:doctor_cmd",
    "lava": "neurocompile.cli.lava_setup_cmd:lava_group",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when invoked or listed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="neurocompile")
def cli() -> None:
    """neurocompile: compile spiking neural networks (NIR) to neuromorphic targets,
    simulate them and report what they cost."""


# optional dependency (top-level module) -> the extra that installs it
EXTRAS = {"torch": "torch", "nirtorch": "torch", "safetensors": "torch", "sklearn": "data",
          "matplotlib": "plots", "norse": "norse", "onnx": "onnx", "onnxruntime": "onnx",
          "lava": "lava"}


def _terminate(signum: int, _frame) -> None:
    """SIGTERM/SIGHUP end the run like Ctrl-C: cleanups run, partial outputs are removed."""
    raise SystemExit(128 + signum)


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def main(argv: list[str] | None = None) -> None:
    """Entry point: a user error prints as one line on stderr (no traceback) and exits with
    status 2; an internal error says it is one (set NEUROCOMPILE_DEBUG=1 for the traceback)."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    try:
        cli.main(args=argv, prog_name="neurocompile", standalone_mode=False)
    except NeurocompileError as exc:
        click.echo(f"error: {_one_line(exc)}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        where = f"{exc.ctx.command_path}: " if getattr(exc, "ctx", None) else ""
        click.echo(f"error: {where}{_one_line(exc.format_message())} (see --help)", err=True)
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except (SystemExit, KeyboardInterrupt):
        raise
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top not in EXTRAS:
            raise
        click.echo(f"error: this command needs {top}, which is not installed: "
                   f"pip install 'neurocompile[{EXTRAS[top]}]'", err=True)
        sys.exit(2)
    except Exception as exc:  # noqa: BLE001 - the last resort: say it is ours, not the user's
        if os.environ.get("NEUROCOMPILE_DEBUG"):
            raise
        click.echo(f"internal error: {type(exc).__name__}: {_one_line(exc)[:300]} -- this is a "
                   "bug in neurocompile, not in your input; rerun with NEUROCOMPILE_DEBUG=1 "
                   "and report the traceback", err=True)
        sys.exit(70)


if __name__ == "__main__":
    main()
