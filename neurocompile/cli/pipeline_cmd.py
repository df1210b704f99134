"""`neurocompile pipeline`: the main job, end to end on the bundled default task."""

from __future__ import annotations

import json
from pathlib import Path

import click

from neurocompile.cli.common import console, emit_json, report_options
from neurocompile.pipeline import STAGES


@click.command("pipeline")
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run directory (default: the config's out_dir, else runs/pipeline).")
@click.option("--from", "start", type=click.Choice(STAGES), default="train", show_default=True,
              help="First stage to run; earlier stages' files are read from the run directory.")
@click.option("--to", "stop", type=click.Choice(STAGES), default="energy", show_default=True,
              help="Last stage to run.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Override training epochs.")
@click.option("--verify-samples", type=click.IntRange(min=0), default=None,
              help="Test samples cross-checked on the verify target, Lava by default "
                   "(0: skip).")
@report_options
def pipeline_cmd(config: Path | None, out_dir: Path | None, start: str, stop: str,
                 epochs: int | None, verify_samples: int | None, json_out: str | None) -> None:
    """Train (AdaBreg + spike-count loss) on the bundled digits task, prune, quantize to Loihi
    fixed point, compile for Loihi 2, simulate (reference + Lava) and report energy."""
    import dataclasses

    from neurocompile.pipeline import Pipeline, PipelineConfig

    cfg = PipelineConfig.from_toml(config) if config is not None else PipelineConfig()
    if out_dir is not None:
        cfg.out_dir = str(out_dir)
    if epochs is not None:
        cfg.train = dataclasses.replace(cfg.train, epochs=epochs)
    if verify_samples is not None:
        cfg.simulate = dataclasses.replace(cfg.simulate, verify_samples=verify_samples)
    pipe = Pipeline(cfg, console=console)
    summary = pipe.run(start, stop)
    console.print_json(json.dumps({k: summary[k] for k in (
        "nonzero_fraction_of_dense", "energy_per_inference_J") if k in summary}, default=str))
    console.print(f"[bold green]done[/]: {cfg.out_dir}/summary.json")
    emit_json(json_out, summary)
