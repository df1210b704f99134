"""Helpers shared by the commands."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import nir
from rich.console import Console
from rich.table import Table

from neurocompile.ir.io import load_graph, load_spikes
from neurocompile.semantics.float import dt_fallback_warning


def load_graph_warn_dt(path: Path, dt: float | None = None, source: str | None = None
                       ) -> nir.NIRGraph:
    """Load a NIR graph through an import profile (`source`, --from; else the one the file
    records) with singleton Input/Output dimensions tolerated; warn on stderr when it has no
    time step and none was given, or when its parameters suggest a profile."""
    from neurocompile.errors import GraphValidationError, Problem
    from neurocompile.interop import import_graph, shape_hint
    from neurocompile.ir.validate import check_graph

    graph, notes = import_graph(load_graph(path, check=False), source, dt)
    try:
        check_graph(graph, str(path))
    except GraphValidationError as exc:
        hint = shape_hint(graph) if source is None else None
        if hint is None:
            raise
        raise GraphValidationError(exc.problems + [Problem("<graph>", hint)], str(path)) from None
    for note in notes:
        click.echo(f"warning: {path}: {note}", err=True)
    if source is None:  # a profile sets dt itself
        message = dt_fallback_warning(graph, dt)
        if message:
            click.echo(f"warning: {path}: {message}", err=True)
    return graph


def from_option(func: Callable) -> Callable:
    """--from FRAMEWORK: the import profile a command loads its graph(s) with."""
    from neurocompile.interop import PROFILES

    return click.option(
        "--from", "source", type=click.Choice(list(PROFILES)), default=None,
        help="Import profile: read the graph by this framework's NIR conventions "
             "(docs/interop.md).")(func)


def layout_option(func: Callable) -> Callable:
    """--layout btf|tbf|bft: the axis order of the input data."""
    return click.option(
        "--layout", type=click.Choice(["btf", "tbf", "bft"]), default=None,
        help="Input axes: btf = (batch, time, ...) (default, or the profile's), "
             "tbf = (time, batch, ...) as snnTorch and Norse, bft = time last (lava-dl).")(func)


def load_inputs(path: Path, graph: nir.NIRGraph, layout: str | None
                ) -> tuple[dict, str]:
    """Input arrays as (batch, time, ...) from `layout` (else the profile's, else btf); warns
    when a shape suggests the other layout. Returns (inputs, layout used)."""
    from neurocompile.interop import graph_layout, layout_warning, to_btf

    data = load_spikes(path)
    used = layout or graph_layout(graph)
    if layout is None and used != "btf":
        click.echo(f"warning: {path}: reading inputs as {used}, the import profile's layout; "
                   "pass --layout to choose", err=True)
    for name, arr in data.items():
        message = layout_warning(name, tuple(arr.shape), used)
        if message:
            click.echo(f"warning: {path}: {message}", err=True)
    return {k: to_btf(v, used) for k, v in data.items()}, used


def check_outputs(inputs: list[Path | None], outputs: list[Path | None]) -> None:
    """Refuse an output path that is one of the inputs or another output (same file after
    resolving links), before any work."""
    from neurocompile.errors import InputDataError

    seen: dict[Path, Path] = {}
    for path in inputs:
        if path is not None:
            seen[Path(path).resolve()] = Path(path)
    for path in outputs:
        if path is None:
            continue
        resolved = Path(path).resolve()
        if resolved in seen:
            raise InputDataError(f"{path}: the output would overwrite {seen[resolved]}; choose "
                                 "another output path")
        seen[resolved] = Path(path)


# -- the CLI's conventions, in one place (docs/user-guide.md, "Conventions") --------------
console = Console()  # every command prints through this one console
VERBOSITY = {"verbose": False}


def report_options(func: Callable) -> Callable:
    """`--json [FILE|-]`, `-q/--quiet` and `-v/--verbose` on a command.

    --json FILE writes the command's report as JSON; `--json -` (or --json alone) prints it on
    standard output instead of the tables. --quiet prints nothing but errors (no progress
    bars either); --verbose shows every table column (tables fit 80 columns by default).
    """
    @functools.wraps(func)
    def wrapper(*args, quiet: bool = False, verbose: bool = False, **kwargs):
        from neurocompile import progress

        json_out = kwargs.get("json_out")
        console.quiet = bool(quiet or json_out == "-")
        VERBOSITY["verbose"] = bool(verbose)
        progress.set_enabled(not quiet)  # progress bars (stderr, terminals only)
        try:
            return func(*args, **kwargs)
        finally:
            console.quiet = False
            VERBOSITY["verbose"] = False
            progress.set_enabled(True)

    wrapper = click.option("-v", "--verbose", is_flag=True,
                           help="Show every table column.")(wrapper)
    wrapper = click.option("-q", "--quiet", is_flag=True,
                           help="Print nothing but errors.")(wrapper)
    return click.option("--json", "json_out", default=None, is_flag=False, flag_value="-",
                        metavar="[FILE|-]",
                        help="Write the report as JSON to FILE, or print it (- or no value).")(
        wrapper)


def emit_json(json_out: str | None, payload: Any) -> None:
    """Write `payload` where --json asked: a file (atomically) or standard output."""
    if json_out is None:
        return
    text = json.dumps(payload, indent=2, default=str) + "\n"
    if json_out == "-":
        click.echo(text, nl=False)
    else:
        from neurocompile.ir.io import write_text

        write_text(json_out, text)
        console.print(f"wrote {json_out}")


def json_file(json_out: str | None) -> Path | None:
    """The file --json writes (None for standard output or no --json)."""
    return None if json_out in (None, "-") else Path(json_out)


def verbose() -> bool:
    """Whether --verbose was given: tables show all their columns."""
    return VERBOSITY["verbose"]


class FitTable(Table):
    """A rich Table whose number columns are never narrower than their widest value, so at 80
    columns names and headers wrap (fold) and numbers stay whole."""

    def add_row(self, *cells, **kwargs) -> None:
        for column, cell in zip(self.columns, cells):
            if getattr(column, "numeric", False):
                column.min_width = max(column.min_width or 0, len(str(cell)))
        super().add_row(*cells, **kwargs)


def table(title: str, columns: list[str], numeric: tuple[str, ...] = ()) -> Table:
    """A table that fits 80 columns: names and text wrap (fold), numbers do not."""
    t = FitTable(title=title, title_justify="left")
    for col in columns:
        t.add_column(col, justify="right" if col in numeric else "left", overflow="fold")
        t.columns[-1].numeric = col in numeric
    return t


class Stopwatch:
    """Wall time of a command's phases (load, build, run, ...) and of the whole command, from
    the CLI's import to now, so start-up and imports are counted too."""

    def __init__(self) -> None:
        from neurocompile.cli import STARTED

        self.started = STARTED
        self.last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, phase: str) -> None:
        """Add the time since the previous lap to `phase` (repeated phases accumulate)."""
        now = time.perf_counter()
        self.laps[phase] = self.laps.get(phase, 0.0) + now - self.last
        self.last = now

    def laps_and_total(self) -> dict[str, float]:
        return {**self.laps, "whole_command": time.perf_counter() - self.started}

    def line(self) -> str:
        parts = [f"{k} {v:.3f}" for k, v in self.laps.items()]
        return "wall time (s): " + ", ".join(parts) + \
            f"; whole command {time.perf_counter() - self.started:.3f}"
