"""Helpers shared by the commands."""

from __future__ import annotations

from pathlib import Path

import click
import nir

from neurocompile.ir.io import load_graph
from neurocompile.semantics.float import dt_fallback_warning


def load_graph_warn_dt(path: Path, dt: float | None = None) -> nir.NIRGraph:
    """Load a NIR graph; warn on stderr when it has no time step and none was given."""
    graph = load_graph(path)
    message = dt_fallback_warning(graph, dt)
    if message:
        click.echo(f"warning: {path}: {message}", err=True)
    return graph


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
