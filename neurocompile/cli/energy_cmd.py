"""`neurocompile energy`: run the reference simulator for counts, then report energy per hardware."""

from __future__ import annotations

import json
from pathlib import Path

import click

from neurocompile.cli.common import console, emit_json, from_option, layout_option, report_options
from neurocompile.errors import InputDataError, NIRFileError


def _resolve_model(model: Path) -> tuple[Path, dict | None]:
    """A .nir file, or a compiled artifact directory (its manifest and hashes checked by
    `read_artifact` before anything in it is read)."""
    from neurocompile.targets.artifact import GRAPH_FILE, read_artifact

    if not model.exists():
        raise NIRFileError(f"{model}: no such file or directory")
    if not model.is_dir():
        return model, None
    stored = read_artifact(model)
    return model / GRAPH_FILE, stored.manifest


def _mapping_from(manifest: dict | None, mapping_path: Path | None) -> dict | None:
    if mapping_path is not None:
        try:
            data = json.loads(mapping_path.read_text())
        except json.JSONDecodeError as exc:
            raise InputDataError(f"{mapping_path}: not valid JSON ({exc})") from exc
        if isinstance(data, dict) and "files" in data and "target" in data:
            return _mapping_from(data, None)  # an artifact's manifest.json
        return data
    if manifest:
        for key in ("resource_map", "resources", "mapping"):
            if isinstance(manifest.get(key), (dict, list)):
                m = manifest[key]
                if isinstance(m, dict) and "hardware" not in m and "target" in manifest:
                    m = {**m, "target": manifest["target"]}
                return m
    return None


@click.command("energy")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--input", "input_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Input spikes: .npz keyed by Input node name, or a NIR data file.")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Steps to run (default: input length).")
@click.option("--targets", "hw_list", default="loihi,loihi2,truenorth,spinnaker2,snn-cmos45,cmos45",
              show_default=True, help="Hardware descriptions, comma separated (or .toml paths).")
@click.option("--format", "fmt", type=click.Choice(["table", "md"]), default="table",
              show_default=True, help="How to print the report (JSON: --json).")
@click.option("--mapping", "mapping_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Resource map JSON (per-core info) from a compiler.")
@click.option("--dt", type=float, default=None, help="Time step in seconds (default: graph's).")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Write report.json, report.md and the plots into this directory.")
@from_option
@layout_option
@report_options
def energy_cmd(model: Path, input_path: Path, steps: int | None, hw_list: str, fmt: str,
               mapping_path: Path | None, dt: float | None, out_dir: Path | None,
               json_out: str | None, source: str | None = None,
               layout: str | None = None) -> None:
    """Estimate energy, latency and cores per inference from the real counts of a run."""
    from neurocompile.cli.common import load_graph_warn_dt, load_inputs
    from neurocompile.energy import (
        build_report,
        render_markdown,
        render_tables,
        save_report,
        to_json,
    )
    from neurocompile.ir.graph import quantization_scheme
    from neurocompile.ir.io import write_text
    from neurocompile.semantics.float import graph_dt
    from neurocompile.targets.reference import simulate

    graph_path, manifest = _resolve_model(model)
    if dt is None and manifest and isinstance(manifest.get("options"), dict):
        stored_dt = manifest["options"].get("dt")  # the time step the artifact was compiled at
        dt = float(stored_dt) if isinstance(stored_dt, (int, float)) and stored_dt > 0 else None
    graph = load_graph_warn_dt(graph_path, dt, source)
    # the report records the time step the run used (given, the artifact's, or the graph's)
    dt = graph_dt(graph, dt)
    graph.metadata = {**(graph.metadata or {}), "dt": dt}
    quantized = quantization_scheme(graph) == "loihi"
    inputs, _ = load_inputs(input_path, graph, layout)
    try:  # a Loihi-quantized graph is counted in its integer arithmetic, as it would run
        result = simulate(graph, inputs, steps, dt=dt, fixed_point=quantized,
                          count_active=True)
    except InputDataError as exc:
        raise InputDataError(f"{input_path}: {exc}") from exc
    hardware = [h.strip() for h in hw_list.split(",") if h.strip()]
    try:
        report = build_report(graph, result, hardware, _mapping_from(manifest, mapping_path),
                              source=str(model))
    except InputDataError as exc:
        if mapping_path is None:
            raise
        raise InputDataError(f"{mapping_path}: {exc}") from exc
    plots = []
    if out_dir is not None:
        from neurocompile.energy.plots import plot_report

        plots = plot_report(report, out_dir)
        save_report(report, out_dir / "report.json")
        # report.md sits beside its plots, so it links them by file name
        write_text(out_dir / "report.md", render_markdown(report, [p.name for p in plots]))
    if fmt == "md":
        if not console.quiet:
            click.echo(render_markdown(report, [str(p) for p in plots]), nl=False)
    else:
        from neurocompile.cli.common import verbose

        for table in render_tables(report, wide=verbose()):
            console.print(table)
    if out_dir is not None:
        console.print("wrote " + ", ".join(str(p) for p in [out_dir / "report.json",
                                                           out_dir / "report.md", *plots]))
    emit_json(json_out, json.loads(to_json(report)))
