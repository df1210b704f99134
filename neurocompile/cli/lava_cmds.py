"""Commands for compiled targets: `compile` (NIR -> artifact directory) and `lava-check`."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from neurocompile.cli.common import console, emit_json, from_option, report_options
from neurocompile.cli.common import table as make_table


def resource_table(resources: dict) -> Table:
    """One row per neuron population: cores, neurons, synapses and memory, dense vs non-zero."""
    lim = resources["limits"]
    from neurocompile.cli.common import verbose

    wide = verbose()
    cols = ["node", "kind", "neurons", "cores", "synapses", "KiB"] + (
        ["synapses dense", "KiB dense", "peak core memory"] if wide else [])
    table = make_table(f"{resources['hardware']}: {resources['cores_used']} of "
                       f"{lim['cores_available']} cores (non-zero synapses; dense: -v)", cols,
                       tuple(cols[2:]))
    for name, p in resources["populations"].items():
        peak = max((c["synaptic_memory_bits"] for c in p["core_usage"]), default=0)
        cells = [name, p["kind"], f"{p['neurons']:,}", str(p["cores"]),
                 f"{p['synapses_nonzero']:,}", f"{p['memory_bits_nonzero'] / 8192:,.1f}"]
        if wide:
            cells += [f"{p['synapses_dense']:,}", f"{p['memory_bits_dense'] / 8192:,.1f}",
                      f"{peak / lim['synaptic_memory_bits_per_core']:.1%}"]
        table.add_row(*cells)
    t = resources["totals"]
    saved = t["memory_bits_saved_by_pruning"]
    dense_cores = resources.get("cores_if_dense")
    table.caption = (
        f"pruning saves {saved / 8192:,.1f} KiB of synaptic memory "
        f"({saved / max(1, t['memory_bits_dense']):.1%}); cores if stored dense: "
        f"{dense_cores if dense_cores is not None else 'does not fit'}; "
        f"per core: {lim['neurons_per_core']:,} neurons, "
        f"{lim['synaptic_memory_bits_per_core'] / 8192:,.0f} KiB, "
        f"{lim['fan_in_axons_per_core']:,} input axons")
    return table


@click.command("compile")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--target", default="loihi2", show_default=True,
              help="Backend to compile for (see `neurocompile targets`).")
@click.option("-o", "--out", "out_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path), help="Artifact directory to write.")
@click.option("--fixed-point", is_flag=True,
              help="Lower for Lava's bit-accurate fixed_pt models (graph quantized with the "
                   "Loihi scheme).")
@click.option("--dt", type=float, default=None, help="Time step in seconds (default: graph's).")
@click.option("--chips", type=click.IntRange(min=1), default=None,
              help="Number of Loihi 2 chips the graph may use (default 1).")
@click.option("--weight-bits", type=click.IntRange(min=1, max=8), default=None,
              help="Weight precision of a float graph for the memory estimate (default 8).")
@click.option("--sparse", type=click.Choice(["auto", "dense", "sparse"]), default=None,
              help="Lava connection process: Sparse when pruned (default auto).")
@from_option
@report_options
def compile_cmd(model: Path, target: str, out_dir: Path, fixed_point: bool, dt: float | None,
                chips: int | None, weight_bits: int | None, sparse: str | None,
                json_out: str | None, source: str | None = None) -> None:
    """Compile a NIR graph for a target and write an artifact directory (graph + manifest)."""
    from neurocompile.cli.common import load_graph_warn_dt
    from neurocompile.targets import get_target
    from neurocompile.targets.artifact import read_manifest, write_artifact

    backend = get_target(target)
    options = {"dt": dt, "fixed_point": fixed_point or None, "chips": chips,
               "weight_bits": weight_bits, "sparse": sparse}
    artifact = backend.compile(load_graph_warn_dt(model, dt, source), options)
    write_artifact(artifact, out_dir)
    manifest = read_manifest(out_dir)
    if "resources" in manifest:
        console.print(resource_table(manifest["resources"]))
    console.print(f"wrote {out_dir} (target {artifact.target}); run it with "
                  f"`neurocompile simulate {out_dir} --target lava --input DATA`")
    emit_json(json_out, manifest)


@click.command("lava-check")
@report_options
def lava_check_cmd(json_out: str | None) -> None:
    """Run the demo graph through the Lava worker and compare it with the reference: shows
    which interpreter the lava target uses and that the worker really imports there."""
    from neurocompile.doctor import check_target
    from neurocompile.errors import UnsupportedError
    from neurocompile.targets.lava.target import SETUP_HINT

    report = check_target("lava")
    if report["status"] != "ok":
        raise UnsupportedError(f"Lava environment {report['status']}: {report['detail']}"
                               + ("" if "neurocompile lava setup" in report["detail"]
                                  else f"; {SETUP_HINT}"))
    console.print(f"Lava worker {report['environment']}: demo graph round trip in "
                  f"{report['wall_s']:.2f} s, outputs equal to the reference")
    emit_json(json_out, report)
