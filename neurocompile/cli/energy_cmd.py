"""`neurocompile energy`: run the reference simulator for counts, then report energy per hardware."""

from __future__ import annotations

import json
from pathlib import Path

import click

from neurocompile.errors import InputDataError, NIRFileError


def _resolve_model(model: Path) -> tuple[Path, dict | None]:
    """A .nir file, or an artifact directory holding one NIR file (and maybe a manifest)."""
    if not model.exists():
        raise NIRFileError(f"{model}: no such file or directory")
    if not model.is_dir():
        return model, None
    nirs = sorted(p for p in model.iterdir() if p.suffix in (".nir", ".h5", ".hdf5"))
    if len(nirs) != 1:
        raise NIRFileError(f"{model}: artifact directory must hold exactly one .nir file, "
                           f"found {[p.name for p in nirs]}")
    manifest = None
    mpath = model / "manifest.json"
    if mpath.is_file():
        try:
            manifest = json.loads(mpath.read_text())
        except json.JSONDecodeError as exc:
            raise InputDataError(f"{mpath}: not valid JSON ({exc})") from exc
    return nirs[0], manifest


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
@click.option("--format", "fmt", type=click.Choice(["table", "json", "md"]), default="table",
              show_default=True, help="What to print.")
@click.option("--plot", "plot_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write energy_breakdown.png, spikes_per_layer.png and report.md here.")
@click.option("--mapping", "mapping_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Resource map JSON (per-core info) from a compiler.")
@click.option("--dt", type=float, default=None, help="Time step in seconds (default: graph's).")
@click.option("-o", "--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write the JSON report here.")
def energy_cmd(model: Path, input_path: Path, steps: int | None, hw_list: str, fmt: str,
               plot_dir: Path | None, mapping_path: Path | None, dt: float | None,
               out_path: Path | None) -> None:
    """Estimate energy, latency and cores per inference from the real counts of a run."""
    from neurocompile.cli.common import load_graph_warn_dt
    from neurocompile.energy import (
        build_report,
        render_markdown,
        render_tables,
        save_report,
        to_json,
    )
    from neurocompile.ir.graph import quantization_scheme
    from neurocompile.ir.io import load_spikes, write_text
    from neurocompile.targets.reference import simulate

    graph_path, manifest = _resolve_model(model)
    graph = load_graph_warn_dt(graph_path, dt)
    quantized = quantization_scheme(graph) == "loihi"
    try:  # a Loihi-quantized graph is counted in its integer arithmetic, as it would run
        result = simulate(graph, load_spikes(input_path), steps, dt=dt, fixed_point=quantized)
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
    if plot_dir is not None:
        from neurocompile.energy.plots import plot_report

        plots = plot_report(report, plot_dir)
        # report.md sits beside its plots, so it links them by file name
        write_text(plot_dir / "report.md", render_markdown(report, [p.name for p in plots]))
    if out_path is not None:
        save_report(report, out_path)
    if fmt == "json":
        click.echo(to_json(report))
    elif fmt == "md":
        click.echo(render_markdown(report, [str(p) for p in plots]), nl=False)
    else:
        from rich.console import Console

        console = Console()
        for table in render_tables(report):
            console.print(table)
        written = [str(p) for p in ([out_path] if out_path else [])]
        if plot_dir is not None:
            written += [str(p) for p in plots] + [str(plot_dir / "report.md")]
        if written:
            console.print("wrote " + ", ".join(written))
