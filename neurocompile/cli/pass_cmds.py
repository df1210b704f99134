"""Commands running graph passes: prune, quantize. Each prints its report as a table."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from neurocompile.ir.io import load_graph, load_spikes, save_graph, write_text


def report_table(report) -> Table:
    """A PassReport as a rich table: one row per node, totals in the caption."""
    data = report.to_dict()
    table = Table(title=f"{data['pass']}: " + ", ".join(f"{k}={v}" for k, v in
                                                      data["options"].items()))
    for col in ("node", "type", "params before", "params after", "neurons before",
                "neurons after", "details"):
        table.add_column(col, justify="left" if col in ("node", "type", "details") else "right")
    for row in data["nodes"]:
        details = ", ".join(f"{k}={_fmt(v)}" for k, v in row["extra"].items())
        table.add_row(row["node"], row["type"], f"{row['params_before']:,}",
                      f"{row['params_after']:,}", f"{row['neurons_before']:,}",
                      f"{row['neurons_after']:,}", details)
    t = data["totals"]
    table.caption = (f"non-zero parameters {t['params_before']:,} -> {t['params_after']:,}; "
                     f"neurons {t['neurons_before']:,} -> {t['neurons_after']:,}")
    return table


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _finish(graph, report, output: Path, json_path: Path | None) -> None:
    save_graph(graph, output)
    console = Console()
    console.print(report_table(report))
    for note in report.notes:
        console.print(f"[yellow]note[/yellow] {note}")
    if json_path is not None:
        write_text(json_path, json.dumps(report.to_dict(), indent=2) + "\n")
    console.print(f"wrote {output}")


@click.command("prune")
@click.argument("graph_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--sparsity", "--target-sparsity", "sparsity", type=float, default=None,
              help="Target fraction of zero weights, in [0, 1).")
@click.option("--method", default="magnitude", show_default=True,
              help="Pruning method: magnitude, activity, dead, lnp (neurocompile.targets."
                   "calibrate.PRUNE_METHODS).")
@click.option("--threshold", type=float, default=None,
              help="magnitude: zero every |w| below this instead of a sparsity.")
@click.option("--scope", default="layer", show_default=True,
              help="layer: sparsity per weighted node; global: over all weights together.")
@click.option("--calibration", "calibration_path", default=None,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Calibration inputs (.npz keyed by Input node name, or NIR data) for "
                   "activity and dead.")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Calibration steps (default: input length).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the pruned NIR graph.")
@click.option("--json", "json_path", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the report as JSON.")
def prune_cmd(graph_path: Path, sparsity: float | None, method: str, threshold: float | None,
              scope: str, calibration_path: Path | None, steps: int | None, output: Path,
              json_path: Path | None) -> None:
    """Prune a NIR graph's weights or dead neurons; print the per-node report."""
    from neurocompile.errors import UnsupportedError
    from neurocompile.passes.prune import check_sparsity
    from neurocompile.targets.calibrate import PruneOptions, get_prune_method

    run = get_prune_method(method)
    if sparsity is not None:
        check_sparsity(sparsity)
    if method == "magnitude" and sparsity is None and threshold is None:
        raise UnsupportedError("--method magnitude needs --sparsity or --threshold")
    graph = load_graph(graph_path)
    calibration = load_spikes(calibration_path) if calibration_path is not None else None
    options = PruneOptions(sparsity=sparsity, threshold=threshold, scope=scope,
                           calibration=calibration, steps=steps)
    new_graph, report = run(graph, options)
    _finish(new_graph, report, output, json_path)


@click.command("quantize")
@click.argument("graph_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--scheme", required=True,
              help="loihi (fixed point, Lava bit-accurate) or int8 (symmetric per layer).")
@click.option("--bits", type=int, default=8, show_default=True, help="Weight bits, 2..8.")
@click.option("--clip", is_flag=True,
              help="Clip values Loihi cannot represent instead of failing.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the quantized NIR graph.")
@click.option("--json", "json_path", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the report as JSON.")
def quantize_cmd(graph_path: Path, scheme: str, bits: int, clip: bool, output: Path,
                 json_path: Path | None) -> None:
    """Quantize a NIR graph's weights (and, for loihi, neuron parameters); print the report."""
    from neurocompile.passes.quantize import get_quantize_scheme

    run = get_quantize_scheme(scheme)
    graph = load_graph(graph_path)
    new_graph, report = run(graph, bits=bits, clip=clip)
    _finish(new_graph, report, output, json_path)
