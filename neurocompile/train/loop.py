"""The training loop: task + spike-count loss, validation each epoch, early stopping,
safetensors checkpoints, per-epoch sparsity/activity logging, optional DDP over processes.

    metrics = train(TrainConfig(model="ff", dataset="digits", optimizer="adabreg", lam=0.05,
                                epochs=20, out_dir="runs/x"))

writes runs/x/checkpoint.safetensors (+ .json) of the best validation epoch and
runs/x/metrics.json, and returns the same metrics dict.

Optimizers are pluggable: TRAINERS maps a name to a `Trainer` subclass that builds the
optimizer and may add a loss term, act after each step and epoch, and finalise the weights.
RUNNERS maps a name to a whole training procedure that replaces the gradient loop (the
closed-form ADMM trainer, "admm") and writes the same files.

Multi-process training (``nproc > 1``) spawns that many processes with torch.multiprocessing,
joins them in a gloo process group and wraps the model in DistributedDataParallel; each rank
trains on its shard of every batch order, gradients are averaged, rank 0 writes the files.
"""

from __future__ import annotations

import dataclasses
import json
import math
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from neurocompile import config as settings
from neurocompile.data import DataSplits, SpikeDataset, iterate_batches, load_dataset
from neurocompile.errors import UnsupportedError
from neurocompile.ir.io import write_text
from neurocompile.train.checkpoint import save_checkpoint
from neurocompile.train.config import SELECT_MODES, TrainConfig
from neurocompile.train.losses import layer_spike_counts, total_loss
from neurocompile.train.optim import AdaBreg, LinBreg, bregman_param_groups, sparse_init_

CHECKPOINT_NAME = "checkpoint.safetensors"
METRICS_NAME = "metrics.json"
DEFAULT_LR = {"adam": 2e-3, "linbreg": 0.1, "adabreg": 2e-3}
DEFAULT_DENSITY = {"linbreg": 0.1, "adabreg": 0.1}


def spike_loss_weight(config: TrainConfig, epoch: int) -> float:
    """The spike-penalty weight used in (1-based) `epoch`: 0 during warm-up, then a linear ramp."""
    k = epoch - config.spike_loss_warmup_epochs
    if k <= 0:
        return 0.0
    ramp = config.spike_loss_ramp_epochs
    if ramp > 0 and k < ramp:
        return config.spike_loss * k / ramp
    return config.spike_loss


def _check_config(config: TrainConfig) -> None:
    """Every field's type and range (the config loader's rules), for configs built in code."""
    settings.from_mapping(TrainConfig, settings.to_mapping(config, shallow=True), "TrainConfig")


class _SparseSelector:
    """Online "sparse" epoch selection; keeps only the states that can still be selected.

    An epoch stays a candidate while its accuracy is within `tol` of the best seen so far and
    no other candidate is at least as accurate with at most as many spikes.
    """

    def __init__(self, tol: float) -> None:
        self.tol = tol
        self.max_acc = -1.0
        self.cands: list[tuple[int, float, float, dict]] = []  # epoch, acc, spikes, state

    @staticmethod
    def _key(c: tuple) -> tuple:
        return (c[2], -c[1], c[0])

    def add(self, epoch: int, acc: float, spikes: float, state: dict) -> tuple:
        """Record an epoch; return the selected (epoch, acc, spikes, state)."""
        self.max_acc = max(self.max_acc, acc)
        cands = [*self.cands, (epoch, acc, spikes, state)]
        cands = [c for c in cands if c[1] >= self.max_acc - self.tol - 1e-12]
        self.cands = [c for c in cands if not any(
            d is not c and d[1] >= c[1] and d[2] <= c[2] and self._key(d) < self._key(c)
            for d in cands)]
        return min(self.cands, key=self._key)


class Trainer:
    """The optimizer-specific part of training. Subclass and register in TRAINERS.

    Hooks, in call order: setup() once before training (and before DDP wraps the model);
    per batch extra_loss() (added to the loss; None for nothing), then step(); end_epoch(k)
    after each epoch; finalize() after the last epoch, before the best weights are restored.
    """

    def __init__(self, model: nn.Module, config: TrainConfig) -> None:
        self.model = model
        self.config = config
        self.lr = config.lr if config.lr is not None else DEFAULT_LR.get(config.optimizer, 1e-3)
        self.optimizer: torch.optim.Optimizer | None = None

    def setup(self) -> None:
        """Build the optimizer (and initialise the weights where the method needs it)."""
        self.optimizer = self.make_optimizer()

    def make_optimizer(self) -> torch.optim.Optimizer:
        """The torch optimizer over self.model's parameters."""
        raise NotImplementedError

    def extra_loss(self) -> torch.Tensor | None:
        """A term added to every batch's loss (None: nothing)."""
        return None

    def step(self) -> None:
        """One parameter update after backward."""
        self.optimizer.step()

    def end_epoch(self, epoch: int) -> None:
        """Called after each epoch's last step, before validation."""

    def finalize(self) -> None:
        """Called once on the restored best weights, before the test evaluation."""


class AdamTrainer(Trainer):
    """Dense baseline: torch.optim.Adam."""

    def make_optimizer(self) -> torch.optim.Optimizer:
        density = self.config.density
        if density is not None and density < 1:
            sparse_init_(_weights(self.model), density, seed=self.config.seed,
                         rescale=self.config.init_rescale)
        return torch.optim.Adam(self.model.parameters(), lr=self.lr)


class _BregmanTrainer(Trainer):
    optimizer_class: type = LinBreg

    def make_optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        density = cfg.density if cfg.density is not None else DEFAULT_DENSITY[cfg.optimizer]
        if density < 1:
            sparse_init_(_weights(self.model), density, seed=cfg.seed,
                         structure="row" if cfg.reg == "group" else "element",
                         rescale=cfg.init_rescale)
        groups = bregman_param_groups(self.model, cfg.lam, cfg.reg, cfg.l2, cfg.delta)
        opt = self.optimizer_class(groups, lr=self.lr)
        opt.init_dual()
        return opt


class LinBregTrainer(_BregmanTrainer):
    """Linearized Bregman iterations (LinBreg) from a sparse start."""

    optimizer_class = LinBreg


class AdaBregTrainer(_BregmanTrainer):
    """Adam-preconditioned Bregman iterations (AdaBreg) from a sparse start."""

    optimizer_class = AdaBreg


# name -> Trainer class. The CLI's --optimizer accepts any key registered here.
TRAINERS: dict[str, Callable[[nn.Module, TrainConfig], Trainer]] = {
    "adam": AdamTrainer,
    "linbreg": LinBregTrainer,
    "adabreg": AdaBregTrainer,
}


# name -> "module:function" of a whole training procedure that replaces the gradient loop,
# called as fn(config, data=data) -> (model, metrics) and writing the same files (e.g. the
# closed-form ADMM trainer).
RUNNERS: dict[str, str] = {"admm": "neurocompile.train.admm:train_with_loop_config"}


def _runner(name: str) -> Callable | None:
    """The whole-run trainer registered under `name` in RUNNERS, or None."""
    if name not in RUNNERS:
        return None
    import importlib

    module, attr = RUNNERS[name].split(":")
    return getattr(importlib.import_module(module), attr)


def _check_optimizer(name: str) -> None:
    if name not in TRAINERS and name not in RUNNERS:
        raise UnsupportedError(f"unknown optimizer {name!r}; choose one of "
                               f"{', '.join(sorted({*TRAINERS, *RUNNERS}))}")


def _weights(model: nn.Module) -> list[nn.Parameter]:
    """Synaptic weights: trainable parameters with 2 or more dims."""
    return [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]


def sparsity_stats(model: nn.Module) -> dict[str, float]:
    """Non-zero counts of the synaptic weights (dims >= 2) and of all parameters."""
    weights = [p for p in model.parameters() if p.dim() >= 2]
    nz_w = sum(int(torch.count_nonzero(p)) for p in weights)
    n_w = sum(p.numel() for p in weights)
    nz_p = sum(int(torch.count_nonzero(p)) for p in model.parameters())
    n_p = sum(p.numel() for p in model.parameters())
    return {"nonzero_weights": nz_w, "weight_count": n_w,
            "nonzero_fraction": nz_w / n_w if n_w else 0.0,
            "nonzero_params": nz_p, "param_count": n_p}


def default_model_factory(config: TrainConfig, data: DataSplits) -> nn.Module:
    """build_model(config.model, n_in/in_shape, n_out, seed, **config.model_kwargs)."""
    from neurocompile.models import build_model

    kwargs: dict[str, Any] = {"n_out": data.n_classes, "seed": config.seed}
    if config.model == "conv":
        side = int(round(math.sqrt(data.n_features)))
        if side * side != data.n_features and "in_shape" not in config.model_kwargs:
            raise UnsupportedError(f"model 'conv' needs square images; dataset "
                                   f"{config.dataset!r} has {data.n_features} features "
                                   f"(pass model_kwargs in_shape=(C, H, W))")
        kwargs["in_shape"] = (1, side, side)
    else:
        kwargs["n_in"] = data.n_features
    kwargs.update(config.model_kwargs)
    return build_model(config.model, **kwargs)


def _default_classify(out: torch.Tensor) -> torch.Tensor:
    from neurocompile.models import classify

    return classify(out)


def _input_shape(model: nn.Module) -> tuple[int, ...] | None:
    cfg = getattr(model, "config", None) or {}
    shape = cfg.get("in_shape")
    return tuple(int(s) for s in shape) if shape is not None else None


def _to_tensor(x: np.ndarray, in_shape: tuple[int, ...] | None) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(x))
    if in_shape is not None:
        t = t.reshape(t.shape[0], t.shape[1], *in_shape)
    return t


def _all_reduce(values: list[float], world_size: int) -> list[float]:
    if world_size <= 1:
        return values
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


@torch.no_grad()
def evaluate(model: nn.Module, data: SpikeDataset, classify: Callable, *, batch_size: int = 256,
             rank: int = 0, world_size: int = 1) -> dict[str, Any]:
    """Accuracy, mean cross-entropy and spikes per sample (total and per layer) on `data`."""
    was_training = model.training
    model.eval()
    in_shape = _input_shape(model)
    names: list[str] | None = None
    sums: list[float] = []
    for xb, yb in iterate_batches(data, batch_size, rank=rank, world_size=world_size, pad=False):
        out, spikes = model(_to_tensor(xb, in_shape))
        logits = classify(out)
        y = torch.from_numpy(yb)
        if names is None:
            names = sorted(spikes)
            sums = [0.0] * (3 + len(names))
        sums[0] += float((logits.argmax(-1) == y).sum())
        sums[1] += float(torch.nn.functional.cross_entropy(logits, y, reduction="sum"))
        sums[2] += len(yb)
        for i, k in enumerate(names):
            sums[3 + i] += float(spikes[k].sum())
    if names is None:  # this rank had no samples: learn the layer names from a dummy call
        x0 = np.zeros((1,) + data.x.shape[1:], dtype=data.x.dtype)
        names = sorted(model(_to_tensor(x0, in_shape))[1])
        sums = [0.0] * (3 + len(names))
    sums = _all_reduce(sums, world_size)
    model.train(was_training)
    n = max(sums[2], 1.0)
    per_layer = {k: sums[3 + i] / n for i, k in enumerate(names)}
    return {"acc": sums[0] / n, "loss": sums[1] / n, "n": int(sums[2]),
            "spikes_per_sample": sum(per_layer.values()), "spikes_per_layer": per_layer}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _checked_data(config: TrainConfig, data: DataSplits | None) -> DataSplits:
    """Validate the config (optimizer, sizes) and load its dataset unless one is given."""
    _check_optimizer(config.optimizer)
    _check_config(config)
    return load_dataset(config.dataset, **config.dataset_kwargs) if data is None else data


def train(config: TrainConfig, *, data: DataSplits | None = None,
          model_factory: Callable[[TrainConfig, DataSplits], nn.Module] | None = None,
          classify: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, Any]:
    """Train, validate each epoch, stop early, checkpoint the best epoch; return the metrics.

    `data` (default: load_dataset(config.dataset, **config.dataset_kwargs)), `model_factory`
    (default: the model zoo) and `classify` (default: neurocompile.models.classify) can be
    replaced; with nproc > 1 they must be picklable (module-level functions).
    """
    data = _checked_data(config, data)
    runner = _runner(config.optimizer)
    if runner is not None:
        return runner(config, data=data)[1]
    if config.nproc == 1:
        return _run(0, 1, config, data, model_factory, classify, None)[1]
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory(prefix="neurocompile-ddp-") as tmp:
        cfg = config
        if cfg.out_dir is None:
            cfg = dataclasses.replace(config, out_dir=tmp)
        port = _free_port()
        mp.spawn(_ddp_worker, args=(cfg, data, model_factory, classify, port),
                 nprocs=config.nproc, join=True)
        return json.loads((Path(cfg.out_dir) / METRICS_NAME).read_text())


def fit(config: TrainConfig, *, data: DataSplits | None = None,
        model_factory: Callable[[TrainConfig, DataSplits], nn.Module] | None = None,
        classify: Callable[[torch.Tensor], torch.Tensor] | None = None
        ) -> tuple[nn.Module, dict[str, Any]]:
    """Single-process train() that also returns the trained model (best validation epoch)."""
    if config.nproc != 1:
        raise UnsupportedError(f"fit() trains in this process (nproc=1), got nproc="
                               f"{config.nproc}; use train() and load the checkpoint")
    data = _checked_data(config, data)
    runner = _runner(config.optimizer)
    if runner is not None:
        return runner(config, data=data)
    return _run(0, 1, config, data, model_factory, classify, None)


def _ddp_worker(rank: int, config: TrainConfig, data: DataSplits, model_factory, classify,
                port: int) -> None:
    """One process of a data-parallel run (started by torch.multiprocessing.spawn)."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=config.nproc)
    try:
        _run(rank, config.nproc, config, data, model_factory, classify, dist)
    finally:
        dist.destroy_process_group()


def _run(rank: int, world_size: int, config: TrainConfig, data: DataSplits,
         model_factory, classify, dist) -> tuple[nn.Module, dict[str, Any]]:
    """The loop proper, on one rank (world_size 1: plain single-process training)."""
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    classify = classify or _default_classify
    model = (model_factory or default_model_factory)(config, data)
    trainer = TRAINERS[config.optimizer](model, config)
    trainer.setup()
    net: nn.Module = model
    if world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model)
    main = rank == 0
    out_dir = Path(config.out_dir) if config.out_dir else None
    ckpt = out_dir / CHECKPOINT_NAME if out_dir else None
    in_shape = _input_shape(model)
    n_batches = math.ceil(math.ceil(len(data.train) / world_size) / config.batch_size)

    history: list[dict[str, Any]] = []
    best_acc, best_epoch, best_state, bad_epochs = -1.0, -1, None, 0
    selector = _SparseSelector(config.select_tolerance) if config.select == "sparse" else None
    stopped_early = False
    t_start = time.perf_counter()
    progress = _make_progress(config.progress and main)
    with progress:
        task = progress.add_task("training", total=config.epochs * n_batches)
        for epoch in range(1, config.epochs + 1):
            t0 = time.perf_counter()
            sums = [0.0, 0.0, 0.0, 0.0, 0.0]  # loss*n, task*n, correct, n, spikes
            batches = iterate_batches(data.train, config.batch_size, shuffle=True,
                                      seed=config.seed * 100003 + epoch, rank=rank,
                                      world_size=world_size)
            net.train()
            spike_weight = spike_loss_weight(config, epoch)
            for xb, yb in batches:
                y = torch.from_numpy(yb)
                out, spikes = net(_to_tensor(xb, in_shape))
                loss, parts = total_loss(out, spikes, y, classify, spike_weight,
                                         config.spike_layer_weights, config.normalize_spikes,
                                         config.spike_floor)
                extra = trainer.extra_loss()
                if extra is not None:
                    loss = loss + extra
                trainer.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                trainer.step()
                nb = len(yb)
                with torch.no_grad():
                    sums[0] += float(loss.detach()) * nb
                    sums[1] += parts["task"] * nb
                    sums[2] += float((classify(out).argmax(-1) == y).sum())
                    sums[3] += nb
                    sums[4] += float(sum(layer_spike_counts(spikes).values())) * nb
                progress.advance(task)
                progress.update(task, description=f"epoch {epoch}/{config.epochs} "
                                                  f"loss {float(loss.detach()):.3f}")
            trainer.end_epoch(epoch)
            sums = _all_reduce(sums, world_size)
            val = evaluate(model, data.val, classify, rank=rank, world_size=world_size)
            n = max(sums[3], 1.0)
            row = {"epoch": epoch, "spike_loss_weight": spike_weight, "train_loss": sums[0] / n, "train_task_loss": sums[1] / n,
                   "train_acc": sums[2] / n, "train_spikes_per_sample": sums[4] / n,
                   "val_acc": val["acc"], "val_loss": val["loss"],
                   "spikes_per_sample": val["spikes_per_sample"],
                   "spikes_per_layer": val["spikes_per_layer"],
                   **sparsity_stats(model), "time_s": time.perf_counter() - t0}
            history.append(row)
            if main and config.progress:
                progress.console.print(
                    f"epoch {epoch:3d}  loss {row['train_loss']:.4f}  "
                    f"train {row['train_acc']:.3f}  val {row['val_acc']:.3f}  "
                    f"nonzero {row['nonzero_weights']}/{row['weight_count']} "
                    f"({row['nonzero_fraction']:.3f})  spikes/sample "
                    f"{row['spikes_per_sample']:.1f}")
            if selector is not None:
                sel = selector.add(epoch, val["acc"], val["spikes_per_sample"], _snapshot(model))
                improved = sel[0] != best_epoch
                if improved:
                    best_epoch, best_acc, best_state = sel[0], sel[1], sel[3]
            else:
                improved = val["acc"] > best_acc
                if improved:
                    best_epoch, best_acc, best_state = epoch, val["acc"], _snapshot(model)
            if improved:
                bad_epochs = 0
                if main and ckpt is not None:
                    meta = {"epoch": best_epoch, "val_acc": best_acc, "config": config.to_json()}
                    if best_epoch == epoch:  # the model holds the selected weights
                        save_checkpoint(ckpt, model, meta)
                    else:
                        _save_state(ckpt, model, best_state, meta)
            else:
                bad_epochs += 1
                if config.patience is not None and bad_epochs >= config.patience:
                    stopped_early = epoch < config.epochs
                    break
    model.load_state_dict(best_state)
    trainer.finalize()  # e.g. a pruning trainer's final projection, on the best weights
    test = evaluate(model, data.test, classify, rank=rank, world_size=world_size)
    metrics: dict[str, Any] = {
        "config": config.to_json(),
        "world_size": world_size,
        "dataset": {"name": config.dataset, "train": len(data.train), "val": len(data.val),
                    "test": len(data.test), "steps": data.steps, "features": data.n_features,
                    "classes": data.n_classes},
        "epochs": history,
        "best_epoch": best_epoch,
        "selection": {"criterion": config.select, "tolerance": config.select_tolerance,
                      "max_val_acc": max(r["val_acc"] for r in history)},
        "stopped_early": stopped_early,
        "val_acc": best_acc,
        "test_acc": test["acc"],
        "test_loss": test["loss"],
        "test_spikes_per_sample": test["spikes_per_sample"],
        "test_spikes_per_layer": test["spikes_per_layer"],
        **sparsity_stats(model),
        "train_time_s": time.perf_counter() - t_start,
        "checkpoint": str(ckpt) if ckpt is not None else None,
    }
    if main and out_dir is not None:
        save_checkpoint(ckpt, model, {"epoch": best_epoch, "val_acc": best_acc,
                                      "test_acc": test["acc"], "config": config.to_json()})
        write_text(out_dir / METRICS_NAME, json.dumps(metrics, indent=2, default=str) + "\n")
    return model, metrics


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the model's weights and buffers."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _save_state(ckpt: Path, model: nn.Module, state: dict, meta: dict) -> None:
    """Checkpoint `state` (an earlier epoch's weights) through `model`, then restore the model."""
    current = _snapshot(model)
    model.load_state_dict(state)
    try:
        save_checkpoint(ckpt, model, meta)
    finally:
        model.load_state_dict(current)


def _make_progress(enabled: bool):
    """A rich progress bar (or a silent stand-in with the same methods)."""
    if not enabled:
        return _NoProgress()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), transient=False)


class _NoProgress:
    console = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def add_task(self, *a, **k) -> int:
        return 0

    def advance(self, *a, **k) -> None:
        pass

    def update(self, *a, **k) -> None:
        pass


__all__ = ["CHECKPOINT_NAME", "METRICS_NAME", "RUNNERS", "SELECT_MODES", "TRAINERS", "TrainConfig",
           "Trainer", "evaluate", "fit", "sparsity_stats", "spike_loss_weight", "train"]
