"""`neurocompile train`: train a zoo SNN (optionally sparse), write checkpoint, metrics and NIR.

Its options are generated from `neurocompile.train.loop.TrainConfig` (neurocompile.config), so
the command's defaults are the library's; a few shortcuts write into model_kwargs and
dataset_kwargs and have no defaults of their own.
"""

from __future__ import annotations

from pathlib import Path

import click

from neurocompile import config
from neurocompile.cli.common import console, emit_json, report_options
from neurocompile.errors import NeurocompileError
from neurocompile.train.config import TrainConfig


@click.command("train")
@config.click_options(TrainConfig, skip=("out_dir",))
@click.option("--hidden", type=int, default=None,
              help="Shortcut: hidden neurons (model option n_hidden).")
@click.option("--sparse-backward", is_flag=True, default=False,
              help="Shortcut, ff only: sparse spiking backward (Perez-Nieves & Goodman 2021); "
                   "gradient only where |v - v_th| < b_th (model option sparse_backward).")
@click.option("--b-th", "b_th", type=float, default=None,
              help="Shortcut: sparse-backward band half-width (model option b_th).")
@click.option("--steps", type=int, default=None,
              help="Shortcut: time steps (dataset option steps; digits: rate-coding steps, "
                   "shd/ssc: bins).")
@click.option("--data-path", type=click.Path(path_type=Path), default=None,
              help="Shortcut: directory holding shd_train.h5/shd_test.h5 (dataset option path).")
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Run directory: checkpoint.safetensors, metrics.json, model.nir.")
@report_options
def train_cmd(hidden, sparse_backward, b_th, steps, data_path, out_dir, json_out, **kwargs
              ) -> None:
    """Train an SNN on a dataset and export it: checkpoint, metrics.json and model.nir."""
    from neurocompile.ir.io import save_graph
    from neurocompile.train.checkpoint import load_model
    from neurocompile.train.export import to_nir
    from neurocompile.train.loop import CHECKPOINT_NAME, train

    cfg = config_from_options(kwargs, hidden=hidden, sparse_backward=sparse_backward, b_th=b_th,
                              steps=steps, data_path=data_path, out_dir=out_dir)
    if console.quiet:
        cfg = config.replace(cfg, "train options", progress=False)
    metrics = train(cfg)
    model, _ = load_model(out_dir / CHECKPOINT_NAME)
    nir_path = save_graph(to_nir(model), out_dir / "model.nir")
    from neurocompile.train.plots import plot_training

    curves = plot_training(metrics, out_dir / "training.png")
    emit_json(json_out, metrics)
    console.print(
        f"best epoch {metrics['best_epoch']}: val {metrics['val_acc']:.3f}  "
        f"test {metrics['test_acc']:.3f}  non-zero weights {metrics['nonzero_weights']}/"
        f"{metrics['weight_count']} ({metrics['nonzero_fraction']:.3f})  "
        f"spikes/sample {metrics['test_spikes_per_sample']:.1f}")
    console.print(f"wrote {out_dir / CHECKPOINT_NAME}, {out_dir / 'metrics.json'}, {nir_path}, "
               f"{curves}")


def config_from_options(kwargs: dict, *, hidden: int | None = None, sparse_backward: bool = False,
                        b_th: float | None = None, steps: int | None = None,
                        data_path: Path | None = None, out_dir: Path | str = "run"
                        ) -> TrainConfig:
    """The TrainConfig of the command's options: given options over TrainConfig's defaults,
    the shortcuts written into model_kwargs / dataset_kwargs."""
    values = config.cli_values(TrainConfig, kwargs)
    model_kwargs = dict(values.get("model_kwargs", {}))
    dataset_kwargs = dict(values.get("dataset_kwargs", {}))
    model_name = values.get("model", TrainConfig.model)
    dataset = values.get("dataset", TrainConfig.dataset)
    if hidden is not None:
        model_kwargs["n_hidden"] = hidden
    if sparse_backward:
        if model_name != "ff":
            raise NeurocompileError(f"--sparse-backward applies to model ff only, not "
                                    f"{model_name}")
        model_kwargs["sparse_backward"] = True
    if b_th is not None:
        model_kwargs["b_th"] = b_th
    if steps is not None:
        if dataset in ("digits-seq", "digits-pseq"):
            raise NeurocompileError(f"--steps does not apply to {dataset} (its steps are the "
                                    f"image rows); use --dataset-opt pixels_per_step=... or "
                                    f"repeat=...")
        dataset_kwargs["steps"] = steps
    if data_path is not None:
        if dataset not in ("shd", "ssc"):
            raise NeurocompileError(f"--data-path applies to shd/ssc, not {dataset}")
        dataset_kwargs["path"] = str(data_path)
    values.update(model_kwargs=model_kwargs, dataset_kwargs=dataset_kwargs,
                  out_dir=str(out_dir))
    return config.from_mapping(TrainConfig, values, "train options")
