"""Commands running graph passes: prune, quantize. Each prints its report as a table."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from neurocompile.cli.common import from_option, layout_option, report_options
from neurocompile.ir.io import save_graph


def report_table(report) -> Table:
    """A PassReport as a table: one row per node, totals in the caption; before -> after in
    one column each by default, all columns with --verbose."""
    from neurocompile.cli.common import table, verbose

    data = report.to_dict()
    title = f"{data['pass']}: " + ", ".join(f"{k}={v}" for k, v in data["options"].items())
    wide = verbose()
    numeric = (("params before", "params after", "neurons before", "neurons after") if wide
               else ("params", "neurons"))
    t = table(title, ["node", "type", *numeric, "details"], numeric)
    for row in data["nodes"]:
        details = ", ".join(f"{k}={_fmt(v)}" for k, v in row["extra"].items())
        counts = [row["params_before"], row["params_after"], row["neurons_before"],
                  row["neurons_after"]]
        cells = ([f"{c:,}" for c in counts] if wide else
                 [f"{counts[0]:,}->{counts[1]:,}", f"{counts[2]:,}->{counts[3]:,}"])
        t.add_row(row["node"], row["type"], *cells, details)
    tot = data["totals"]
    t.caption = (f"non-zero parameters {tot['params_before']:,} -> {tot['params_after']:,}; "
                 f"neurons {tot['neurons_before']:,} -> {tot['neurons_after']:,}")
    return t


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _finish(graph, report, output: Path, json_out: str | None) -> None:
    from neurocompile.cli.common import console, emit_json

    save_graph(graph, output)
    console.print(report_table(report))
    for note in report.notes:
        console.print(f"[yellow]note[/yellow] {note}")
    console.print(f"wrote {output}")
    emit_json(json_out, report.to_dict())


def _pass_command(kind: str, selector: str, default: str | None, doc: str) -> click.Command:
    """A command running any registered pass of `kind`; its options come from the passes'
    Options dataclasses (neurocompile.passes.PASSES)."""
    from neurocompile import config
    from neurocompile.passes import passes

    specs = passes(kind)
    classes = {name: spec.Options for name, spec in specs.items()}
    union = config.union_options(classes, f"--{selector}")

    @click.command(kind, help=doc)
    @click.argument("graph_path", type=click.Path(dir_okay=False, path_type=Path))
    @click.option(f"--{selector}", "method", metavar="|".join(specs),
                  default=default, required=default is None, show_default=True,
                  help=f"{kind.capitalize()} pass: " + "; ".join(
                      f"{n}: {s.summary}" for n, s in specs.items()))
    @union
    @click.option("--calibration", "calibration_path", default=None,
                  type=click.Path(dir_okay=False, path_type=Path),
                  help="Calibration inputs (.npz keyed by Input node name, or NIR data) for "
                       "the passes that need activity.")
    @click.option("--steps", type=click.IntRange(min=1), default=None,
                  help="Calibration steps (default: input length).")
    @click.option("--dt", type=float, default=None,
                  help="Time step in seconds (default: the graph's, else 1 ms).")
    @click.option("-o", "--out", "output", required=True,
                  type=click.Path(dir_okay=False, path_type=Path),
                  help="Where to write the new NIR graph.")
    @from_option
    @layout_option
    @report_options
    def command(graph_path: Path, method: str, calibration_path: Path | None, steps: int | None,
                dt: float | None, output: Path, json_out: str | None,
                source: str | None = None, layout: str | None = None, **kwargs) -> None:
        from neurocompile.analysis import run_pass
        from neurocompile.cli.common import (
            check_outputs,
            json_file,
            load_graph_warn_dt,
            load_inputs,
        )
        from neurocompile.passes import get_pass

        get_pass(method, kind)  # an unknown name: one line listing the known ones
        check_outputs([graph_path, calibration_path], [output, json_file(json_out)])
        options = config.union_values(classes, method, kwargs, f"--{selector}", union.names)
        graph = load_graph_warn_dt(graph_path, dt, source)
        if dt is not None:
            graph.metadata = {**(graph.metadata or {}), "dt": float(dt)}
        calibration = None if calibration_path is None else \
            load_inputs(calibration_path, graph, layout)[0]
        new_graph, report = run_pass(method, graph, options, calibration=calibration,
                                     steps=steps, kind=kind)
        _finish(new_graph, report, output, json_out)

    return command


prune_cmd = _pass_command(
    "prune", "method", "magnitude",
    "Prune a NIR graph's weights or neurons with a registered pass; print the per-node report.")
quantize_cmd = _pass_command(
    "quantize", "scheme", None,
    "Quantize a NIR graph (loihi: fixed point, Lava bit-accurate; int8: symmetric per layer); "
    "print the per-node report.")
