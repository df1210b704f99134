"""`neurocompile export`: a NIR graph as a model file of another format (ONNX)."""

from __future__ import annotations

from pathlib import Path

import click

from neurocompile.cli.common import from_option, load_graph_warn_dt

FORMATS = ("onnx",)


@click.command("export")
@click.argument("graph_path", metavar="GRAPH", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="onnx", show_default=True,
              help="Model format.")
@click.option("-o", "--out", "out_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="File to write.")
@click.option("--form", type=click.Choice(("sequence", "step")), default="sequence",
              show_default=True, help="ONNX: one model over all steps (Scan), or the step "
                                      "function with explicit state inputs and outputs.")
@click.option("--dtype", type=click.Choice(("float32", "float64")), default="float32",
              show_default=True, help="Tensor type.")
@click.option("--record", is_flag=True, help="Also output every node's value (value.<node>).")
@click.option("--dt", type=float, default=None, help="Time step in seconds (default: graph "
                                                      "metadata or 1 ms).")
@from_option
def export_cmd(graph_path: Path, fmt: str, out_path: Path, form: str, dtype: str, record: bool,
               dt: float | None, source: str | None = None) -> None:
    """Write GRAPH as an ONNX model of the contract; onnx.checker passes on what is written."""
    from neurocompile.ir.io import atomic_path
    from neurocompile.targets import get_target

    target = get_target("onnx")
    target.check_available()
    graph = load_graph_warn_dt(graph_path, dt, source)
    opts = target.options({"dt": dt, "dtype": dtype, "form": form, "counters": record})
    from neurocompile.targets.onnx.target import build

    prog, model = build(graph, opts)
    with atomic_path(out_path) as tmp:
        tmp.write_bytes(model.SerializeToString())
    inputs = ", ".join(i.name for i in model.graph.input)
    click.echo(f"wrote {out_path}: ONNX {form} model ({dtype}, dt = {prog.dt:g} s, opset "
               f"{model.opset_import[0].version}); inputs {inputs}")
