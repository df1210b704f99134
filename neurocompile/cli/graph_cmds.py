"""Commands on NIR graphs: inspect, simulate, targets, demo."""

from __future__ import annotations

import json
from pathlib import Path

import click
import nir
import numpy as np
from rich.table import Table

from neurocompile.cli.common import (
    Stopwatch,
    check_outputs,
    console,
    emit_json,
    from_option,
    json_file,
    layout_option,
    load_graph_warn_dt,
    load_inputs,
    report_options,
)
from neurocompile.cli.common import table as make_table
from neurocompile.errors import InputDataError
from neurocompile.interop import from_btf
from neurocompile.ir.io import load_graph, load_spikes, save_spikes, write_text


def graph_table(graph: nir.NIRGraph, title: str) -> Table:
    """One row per node: type, input/output shape, parameters, non-zero weights."""
    from neurocompile.ir.shapes import infer_shapes

    in_shapes, out_shapes, _ = infer_shapes(graph)
    table = make_table(title, ["node", "type", "input", "output", "params", "non-zero",
                               "sparsity"], ("params", "non-zero", "sparsity"))
    total = nonzero = 0
    for name, node in graph.nodes.items():
        w = getattr(node, "weight", None)
        params = sum(int(np.size(v)) for k, v in vars(node).items()
                     if isinstance(v, np.ndarray) and k not in ("input_type", "output_type"))
        nz = int(np.count_nonzero(w)) if w is not None else None
        total += params
        nonzero += nz if nz is not None else params
        table.add_row(name, type(node).__name__, str(in_shapes.get(name) or "-"),
                      str(out_shapes.get(name) or "-"), f"{params:,}",
                      f"{nz:,}" if nz is not None else "",
                      f"{1 - nz / max(1, np.size(w)):.1%}" if nz is not None else "")
    table.caption = f"{len(graph.nodes)} nodes, {len(graph.edges)} edges, {total:,} parameters, " \
                    f"{nonzero:,} non-zero"
    return table


@click.command("inspect")
@click.argument("graph_path", type=click.Path(dir_okay=False, path_type=Path))
@report_options
def inspect_cmd(graph_path: Path, json_out: str | None) -> None:
    """Show nodes, shapes, parameter counts and weight sparsity of a NIR graph, and validate it."""
    from neurocompile.ir.validate import validate

    graph = load_graph(graph_path, check=False)
    problems = validate(graph)
    if json_out is not None:
        from neurocompile.ir.shapes import infer_shapes

        _, out_shapes, _ = infer_shapes(graph)
        emit_json(json_out, {
            "nodes": {n: {"type": type(node).__name__, "output": list(out_shapes.get(n) or [])}
                      for n, node in graph.nodes.items()},
            "edges": [list(e) for e in graph.edges],
            "problems": [str(p) for p in problems],
        })
    console.print(graph_table(graph, str(graph_path)))
    for p in problems:
        console.print(f"[red]problem[/red] {p}")
    if not problems:
        console.print("[green]valid[/green]")
    if problems:
        click.echo(f"error: {graph_path}: {len(problems)} problem(s); the first: {problems[0]}",
                   err=True)
        raise SystemExit(2)


@click.command("simulate")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--input", "input_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Input spikes: .npz keyed by Input node name, or a NIR data file; (batch, steps, ...).")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Steps to run (default: input length).")
@click.option("--target", default="reference", show_default=True, help="Backend (see `neurocompile targets`).")
@click.option("--fixed-point", is_flag=True, help="Integer (Loihi fixed-point) arithmetic; graph must be quantized.")
@click.option("--dt", type=float, default=None, help="Time step in seconds (default: graph metadata or 1 ms).")
@click.option("-o", "--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write the output spikes (.npz or a NIR data file).")
@click.option("--device", default=None, help="torch device (cpu, cuda) of the torch and norse targets.")
@from_option
@layout_option
@report_options
def simulate_cmd(model: Path, input_path: Path, steps: int | None, target: str, fixed_point: bool,
                 dt: float | None, out_path: Path | None, device: str | None,
                 json_out: str | None, source: str | None = None,
                 layout: str | None = None) -> None:
    """Run a NIR graph (or a compiled artifact) on input spikes and print per-node activity."""
    from neurocompile.targets import get_target

    if out_path is not None and out_path.suffix == ".json":
        raise InputDataError(f"{out_path}: --out takes the spikes file (.npz or a NIR data "
                             "file); write the summary with --json FILE")
    check_outputs([model, input_path], [out_path, json_file(json_out)])
    backend = get_target(target)
    graph_options = {"dt": dt, "fixed_point": True if fixed_point else None}
    if device is not None:
        graph_options["device"] = device
    clock = Stopwatch()
    if model.is_dir():
        artifact = backend.load_artifact(model, graph_options)
    else:
        graph = load_graph_warn_dt(model, dt, source)
        clock.lap("load")
        artifact = backend.compile(graph, graph_options)
    clock.lap("build")
    inputs, layout = load_inputs(input_path, artifact.graph, layout)
    clock.lap("load")
    try:
        result = backend.run(artifact, inputs, steps)
    except InputDataError as exc:
        raise InputDataError(f"{input_path}: {exc}") from exc
    clock.lap("run")
    cols = ["node", "spikes", "synaptic events", "neuron updates"]
    table = make_table(f"{model} on {result.target}: {result.batch} sample(s) x {result.steps} "
                       "steps", cols, tuple(cols[1:]))
    for name, c in result.counters.items():
        if c.spikes or c.synaptic_events or c.neuron_updates:
            table.add_row(name, f"{c.spikes:,}", f"{c.synaptic_events:,}", f"{c.neuron_updates:,}")
    table.add_row("[bold]total", *(f"{result.total(k):,}" for k in
                                   ("spikes", "synaptic_events", "neuron_updates")))
    console.print(table)
    if out_path is not None:  # in the layout the inputs came in
        save_spikes({k: from_btf(v, layout) for k, v in result.outputs.items()}, out_path)
        console.print(f"wrote {out_path}")
    clock.lap("write")
    console.print(clock.line())
    emit_json(json_out, {**result.summary(), "timing_s": clock.laps_and_total()})


@click.command("targets")
@report_options
def targets_cmd(json_out: str | None) -> None:
    """List the available backends and whether their dependencies are present here."""
    from neurocompile.targets import available_targets

    emit_json(json_out, available_targets())
    table = make_table("targets", ["name", "ready", "description"])
    for name, info in available_targets().items():
        missing = info["missing"]
        table.add_row(name, "yes" if not missing else "needs " + ", ".join(missing),
                      str(info["description"]))
    console.print(table)


@click.command("demo")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("runs/demo"), show_default=True, help="Directory to write.")
@report_options
def demo_cmd(out_dir: Path, json_out: str | None) -> None:
    """Build the bundled demo graph, simulate it on the reference target, write the results."""
    from neurocompile.demo import demo_graph, demo_input
    from neurocompile.ir.io import save_graph
    from neurocompile.targets.reference import simulate

    graph, spikes = demo_graph(), demo_input()
    save_graph(graph, out_dir / "demo.nir")
    save_spikes({"input": spikes}, out_dir / "input.npz")
    console.print(graph_table(graph, "demo graph"))
    result = simulate(graph, {"input": spikes})
    save_spikes(result.outputs, out_dir / "output.npz")
    write_text(out_dir / "summary.json", json.dumps(result.summary(), indent=2))
    counts = result.outputs["output"].sum(axis=1)
    console.print(f"output spike counts per sample (argmax = class): {counts.argmax(axis=1).tolist()}")
    console.print(f"totals: {result.summary()['totals']}  wall time {result.wall_time_s:.3f} s")
    console.print(f"wrote {out_dir}/demo.nir, input.npz, output.npz, summary.json")
    emit_json(json_out, result.summary())


@click.command("compare")
@click.argument("reference_path", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("transformed_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--input", "input_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Input spikes (.npz keyed by Input node name, or a NIR data file).")
@click.option("--labels", "labels_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help=".npz with an array 'labels' (one class per sample) for accuracy.")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Steps to run.")
@click.option("--dt", type=float, default=None,
              help="Time step in seconds for both graphs (default: each graph's, else 1 ms).")
@from_option
@layout_option
@report_options
def compare_cmd(reference_path: Path, transformed_path: Path, input_path: Path,
                labels_path: Path | None, steps: int | None, json_out: str | None,
                dt: float | None = None, source: str | None = None,
                layout: str | None = None) -> None:
    """Run a graph and its pruned/quantized version on the same inputs; print how they agree.

    A Loihi-quantized second graph runs in fixed point (its non-spiking readouts rescaled)."""
    from neurocompile.analysis import compare

    labels = None
    if labels_path is not None:
        data = load_spikes(labels_path)
        if "labels" not in data:
            raise InputDataError(f"{labels_path}: no array named 'labels' (got {sorted(data)})")
        labels = data["labels"]
    graphs = [load_graph_warn_dt(p, dt, source) for p in (reference_path, transformed_path)]
    if dt is not None:  # compare runs each graph at its metadata dt
        for g in graphs:
            g.metadata = {**(g.metadata or {}), "dt": float(dt)}
    inputs, _ = load_inputs(input_path, graphs[0], layout)
    try:
        result = compare(*graphs, inputs, steps, labels=labels)
    except InputDataError as exc:
        raise InputDataError(f"{input_path}: {exc}") from exc
    table = Table(title=f"{transformed_path} vs {reference_path} "
                        f"({result['batch']} samples x {result['steps']} steps"
                        f"{', fixed point' if result['fixed_point'] else ''})")
    for col in ("output", "identical", "agreement", "class agreement", "accuracy (ref -> new)"):
        table.add_column(col, justify="left" if col == "output" else "right", overflow="fold")
    for name, o in result["outputs"].items():
        agree = o.get("spike_agreement", o.get("value_agreement"))
        acc = (f"{o['accuracy_reference']:.3f} -> {o['accuracy_transformed']:.3f}"
               if "accuracy_reference" in o else "")
        table.add_row(name, str(o.get("identical", "shape differs")),
                      "" if agree is None else f"{agree:.4f}",
                      f"{o['class_agreement']:.3f}" if "class_agreement" in o else "", acc)
    console.print(table)
    for key, t in result["totals"].items():
        change = "" if t["relative_change"] is None else f" ({t['relative_change']:+.1%})"
        console.print(f"{key}: {t['reference']:,} -> {t['transformed']:,}{change}")
    emit_json(json_out, result)
