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
