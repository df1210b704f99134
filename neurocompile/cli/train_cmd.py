"""`neurocompile train`: train a zoo SNN (optionally sparse), write checkpoint, metrics and NIR."""

from __future__ import annotations

import json
from pathlib import Path

import click

from neurocompile.errors import NeurocompileError


def _parse_model_opts(items: tuple[str, ...]) -> dict:
    """KEY=VALUE pairs; values parsed as JSON when they are JSON (numbers, lists), else strings."""
    out = {}
    for item in items:
        if "=" not in item:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--model-opt")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


@click.command("train")
@click.option("--model", "model_name", default="ff", show_default=True,
              help="Zoo model: ff, rsnn, hrsnn, conv.")
@click.option("--hidden", type=int, default=None, help="Hidden neurons (model's n_hidden).")
@click.option("--model-opt", multiple=True, metavar="KEY=VALUE",
              help="Extra build_model keyword (repeatable), e.g. --model-opt neuron=cubalif.")
@click.option("--sparse-backward", is_flag=True,
              help="ff only: sparse spiking backward (Perez-Nieves & Goodman 2021); gradient "
                   "only where |v - v_th| < b_th.")
@click.option("--b-th", "b_th", type=float, default=None,
              help="Sparse-backward band half-width (default 0.2 * v_th); needs --sparse-backward.")
@click.option("--dataset", default="digits", show_default=True,
              help="digits | digits-seq | digits-pseq | shd | ssc.")
@click.option("--steps", type=int, default=None,
              help="Time steps (digits: rate-coding steps; shd/ssc: bins).")
@click.option("--data-path", type=click.Path(path_type=Path), default=None,
              help="Directory holding shd_train.h5/shd_test.h5 (or ssc_*.h5).")
@click.option("--optimizer", default="adam", show_default=True,
              help="adam | linbreg | adabreg | admm (or any trainer registered in "
                   "neurocompile.train.loop.TRAINERS / RUNNERS).")
@click.option("--lr", type=float, default=None, help="Learning rate (default per optimizer).")
@click.option("--lambda", "lam", type=float, default=0.05, show_default=True,
              help="Bregman regularisation strength.")
@click.option("--reg", type=click.Choice(["l1", "elastic", "group", "none"]), default="l1",
              show_default=True, help="Bregman regulariser on the synaptic weights.")
@click.option("--l2", type=float, default=0.0, show_default=True,
              help="l2 part of the elastic regulariser.")
@click.option("--density", type=float, default=None,
              help="Initial weight density (default 1 for adam, 0.1 for Bregman).")
@click.option("--spike-loss", type=float, default=0.0, show_default=True,
              help="Weight of the spike-count penalty (spikes per sample).")
@click.option("--normalize-spikes", is_flag=True,
              help="Penalise spikes per neuron and step instead of per sample.")
@click.option("--spike-floor", type=float, default=0.0, show_default=True,
              help="Penalise only a sample's spikes above this count (hinge; stops collapse).")
@click.option("--spike-loss-warmup", type=int, default=0, show_default=True,
              help="Epochs trained without the spike penalty before it starts.")
@click.option("--spike-loss-ramp", type=int, default=0, show_default=True,
              help="Epochs over which the penalty weight then rises linearly to --spike-loss.")
@click.option("--spike-layer-weight", multiple=True, metavar="LAYER=W",
              help="Per-layer penalty factor (repeatable), e.g. --spike-layer-weight lif1=2.")
@click.option("--select", type=click.Choice(["val_acc", "sparse"]), default="val_acc",
              show_default=True,
              help="Best epoch: highest val accuracy, or fewest spikes within --select-tolerance.")
@click.option("--select-tolerance", type=float, default=0.01, show_default=True,
              help="sparse selection: allowed val-accuracy drop from the best epoch.")
@click.option("--init-rescale", is_flag=True,
              help="Scale the kept initial weights of a sparse start by 1/sqrt(density).")
@click.option("--epochs", type=int, default=10, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--patience", type=int, default=5, show_default=True,
              help="Stop after this many epochs without a better validation accuracy "
                   "(0: never).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--nproc", type=int, default=1, show_default=True,
              help="Data-parallel processes (torch DDP, gloo backend).")
@click.option("--threads", type=int, default=1, show_default=True,
              help="Torch threads per process.")
@click.option("--no-progress", is_flag=True, help="No progress bar or per-epoch lines.")
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Run directory: checkpoint.safetensors, metrics.json, model.nir.")
def train_cmd(model_name, hidden, model_opt, sparse_backward, b_th, dataset, steps, data_path, optimizer, lr, lam, reg,
              l2, density, spike_loss, normalize_spikes, spike_floor, spike_loss_warmup,
              spike_loss_ramp, spike_layer_weight, select, select_tolerance, init_rescale, epochs, batch_size, patience, seed,
              nproc, threads, no_progress, out_dir) -> None:
    """Train an SNN on a dataset and export it: checkpoint, metrics.json and model.nir."""
    from neurocompile.ir.io import save_graph
    from neurocompile.train.checkpoint import load_model
    from neurocompile.train.export import to_nir
    from neurocompile.train.loop import CHECKPOINT_NAME, TrainConfig, train

    model_kwargs = _parse_model_opts(model_opt)
    if hidden is not None:
        model_kwargs["n_hidden"] = hidden
    if sparse_backward:
        model_kwargs["sparse_backward"] = True
    if b_th is not None:
        model_kwargs["b_th"] = b_th
    if model_kwargs.get("sparse_backward") and model_name != "ff":
        raise NeurocompileError(f"--sparse-backward applies to model ff only, not {model_name}")
    dataset_kwargs: dict = {}
    if steps is not None:
        if dataset in ("digits-seq", "digits-pseq"):
            raise NeurocompileError(f"--steps does not apply to {dataset} (its steps are the "
                                    f"image rows); use --model-opt or the library's "
                                    f"pixels_per_step/repeat options")
        dataset_kwargs["steps"] = steps
    if data_path is not None:
        if dataset not in ("shd", "ssc"):
            raise NeurocompileError(f"--data-path applies to shd/ssc, not {dataset}")
        dataset_kwargs["path"] = str(data_path)
    layer_weights = {}
    for item in spike_layer_weight:
        name, _, value = item.partition("=")
        try:
            layer_weights[name.strip()] = float(value)
        except ValueError:
            raise click.BadParameter(f"expected LAYER=NUMBER, got {item!r}",
                                     param_hint="--spike-layer-weight") from None
    config = TrainConfig(
        model=model_name, model_kwargs=model_kwargs, dataset=dataset,
        dataset_kwargs=dataset_kwargs, optimizer=optimizer, lr=lr, lam=lam,
        reg=None if reg == "none" else reg, l2=l2, density=density, spike_loss=spike_loss,
        normalize_spikes=normalize_spikes, spike_floor=spike_floor,
        spike_loss_warmup_epochs=spike_loss_warmup, spike_loss_ramp_epochs=spike_loss_ramp,
        spike_layer_weights=layer_weights or None, select=select,
        select_tolerance=select_tolerance, init_rescale=init_rescale, epochs=epochs, batch_size=batch_size,
        patience=patience or None, seed=seed, nproc=nproc, threads=threads,
        out_dir=str(out_dir), progress=not no_progress)
    metrics = train(config)
    model, _ = load_model(out_dir / CHECKPOINT_NAME)
    nir_path = save_graph(to_nir(model), out_dir / "model.nir")
    from neurocompile.train.plots import plot_training

    curves = plot_training(metrics, out_dir / "training.png")
    click.echo(
        f"best epoch {metrics['best_epoch']}: val {metrics['val_acc']:.3f}  "
        f"test {metrics['test_acc']:.3f}  non-zero weights {metrics['nonzero_weights']}/"
        f"{metrics['weight_count']} ({metrics['nonzero_fraction']:.3f})  "
        f"spikes/sample {metrics['test_spikes_per_sample']:.1f}")
    click.echo(f"wrote {out_dir / CHECKPOINT_NAME}, {out_dir / 'metrics.json'}, {nir_path}, "
               f"{curves}")
