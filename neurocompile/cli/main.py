"""The `neurocompile` command. Subcommands live in small modules and are imported on use,
so `neurocompile inspect` never pays for importing torch."""

from __future__ import annotations

import importlib
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


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors print as one line (no traceback) and exit with status 2."""
    try:
        cli.main(args=argv, standalone_mode=False)
    except NeurocompileError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
