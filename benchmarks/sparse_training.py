"""Sparse training on the bundled digits tasks: Adam vs LinBreg vs AdaBreg, and the spike loss.

Part 1: for each task, each optimizer trains the same network from the same seeds; reported are
test accuracy (at the best validation epoch) and the fraction of non-zero synaptic weights,
mean and standard deviation over the seeds.
Part 2: Adam with the spike-count loss at several weights: spikes per test sample vs accuracy.
Part 3: the spike loss with longer training, a spike floor (hinge), a warm-up schedule and the
"sparse" epoch selection, each against the unpenalised network trained as long.
Part 4: the start of Bregman training from a 10 % dense initialisation, with and without
rescaling the kept weights by 1/sqrt(density).

Prints Markdown tables and writes benchmarks/results/sparse_training.json (machine named).

    python benchmarks/sparse_training.py                 # the documented run (docs/training.md)
    python benchmarks/sparse_training.py --epochs 2 --seeds 1   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from neurocompile.data import load_dataset
from neurocompile.ir.io import write_text
from neurocompile.train.loop import TrainConfig, fit

RESULTS = Path(__file__).resolve().parent / "results" / "sparse_training.json"

# task name -> (dataset, dataset options, model, model options)
TASKS = {
    "digits (rate, 16 steps), ff 64": ("digits", {"steps": 16}, "ff", {"n_hidden": 64}),
    "digits-seq (rows x2, 16 steps), rsnn 64": ("digits-seq", {"repeat": 2}, "rsnn",
                                                {"n_hidden": 64}),
}
# optimizer -> TrainConfig options, picked by a small sweep on seed 0 of the rate-coded task
# (Adam lr 2e-3/5e-3; LinBreg lr 3..10, lam 0.05..0.2; AdaBreg lr 2e-3..1e-2, lam 0.1..0.5;
# initial density 0.1/0.3), the same for both tasks
OPTIMIZERS = {
    "adam": {"lr": 5e-3},
    "linbreg": {"lr": 10.0, "lam": 0.2, "density": 0.1},
    "adabreg": {"lr": 1e-2, "lam": 0.3, "density": 0.1},
}
SPIKE_WEIGHTS = (0.0, 1e-4, 2e-4, 3e-4, 5e-4, 1e-3)
ISO_ACCURACY = 0.01  # "iso-accuracy": mean test accuracy within 1 point of the unpenalised run
# Part 3: label -> TrainConfig options (Adam lr 5e-3); settings picked by a sweep on seeds 0, 1
# (weight 3e-4..1e-2, floor 60/80/100 spikes per sample, warm-up 3..5 + ramp 3..5, 15/30 epochs)
SPIKE_EPOCHS = 30
SPIKE_VARIANTS = {
    "none": {},
    "w=3e-4": {"spike_loss": 3e-4},
    "w=5e-4, sparse select": {"spike_loss": 5e-4, "select": "sparse"},
    "w=3e-3, floor 80": {"spike_loss": 3e-3, "spike_floor": 80.0},
    "w=3e-3, floor 80, sparse select": {"spike_loss": 3e-3, "spike_floor": 80.0,
                                        "select": "sparse"},
    "w=3e-3, floor 60, sparse select": {"spike_loss": 3e-3, "spike_floor": 60.0,
                                        "select": "sparse"},
    "w=1e-2, floor 80, sparse select": {"spike_loss": 1e-2, "spike_floor": 80.0,
                                        "select": "sparse"},
    "w=3e-3, floor 80, warm-up 5 + ramp 5, sparse select": {
        "spike_loss": 3e-3, "spike_floor": 80.0, "spike_loss_warmup_epochs": 5,
        "spike_loss_ramp_epochs": 5, "select": "sparse"},
}
START_THRESHOLD = 0.8  # Part 4: first epoch whose validation accuracy reaches this


def machine() -> dict:
    """Where the numbers were measured."""
    return {"processor": platform.processor() or platform.machine(), "node": platform.node(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": 1,
            "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def run_one(data, model: str, model_kwargs: dict, optimizer: str, opts: dict, seed: int,
            epochs: int, spike_loss: float = 0.0, curve: bool = False) -> dict:
    """Train once; the numbers of the selected (best validation) epoch."""
    opts = {"spike_loss": spike_loss, **opts}
    cfg = TrainConfig(model=model, model_kwargs=model_kwargs, optimizer=optimizer, seed=seed,
                      epochs=epochs, patience=None, progress=False, **opts)
    t0 = time.perf_counter()
    _, m = fit(cfg, data=data)
    out = {"seed": seed, "test_acc": m["test_acc"], "val_acc": m["val_acc"],
           "nonzero_fraction": m["nonzero_fraction"], "nonzero_weights": m["nonzero_weights"],
           "weight_count": m["weight_count"], "spikes_per_sample": m["test_spikes_per_sample"],
           "best_epoch": m["best_epoch"], "time_s": time.perf_counter() - t0}
    if curve:
        out["val_acc_per_epoch"] = [r["val_acc"] for r in m["epochs"]]
    return out


def summarise(runs: list[dict]) -> dict:
    out: dict = {"runs": runs}
    for key in ("test_acc", "nonzero_fraction", "spikes_per_sample"):
        out[f"{key}_mean"], out[f"{key}_std"] = _mean_std([r[key] for r in runs])
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--spike-seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    info = machine()
    seeds = list(range(args.seeds))

    sparsity = []
    print("## Part 1: non-zero weights and accuracy (mean +- std over seeds "
          f"{seeds}, {args.epochs} epochs)\n")
    print("| task | optimizer | options | test accuracy | non-zero weights | "
          "non-zero vs Adam | spikes/sample |")
    print("|---|---|---|---|---|---|---|")
    for task, (dataset, dkw, model, mkw) in TASKS.items():
        data = load_dataset(dataset, **dkw)
        adam_nz = None
        for opt, opts in OPTIMIZERS.items():
            s = summarise([run_one(data, model, mkw, opt, opts, seed, args.epochs)
                           for seed in seeds])
            s.update(task=task, optimizer=opt, options=opts)
            if opt == "adam":
                adam_nz = s["nonzero_fraction_mean"]
            s["nonzero_vs_adam"] = s["nonzero_fraction_mean"] / adam_nz
            sparsity.append(s)
            print(f"| {task} | {opt} | {_fmt_opts(opts)} | {s['test_acc_mean']:.3f} +- "
                  f"{s['test_acc_std']:.3f} | {s['nonzero_fraction_mean']:.3f} +- "
                  f"{s['nonzero_fraction_std']:.3f} | {s['nonzero_vs_adam']:.2f} | "
                  f"{s['spikes_per_sample_mean']:.1f} |", flush=True)

    task = next(iter(TASKS))
    dataset, dkw, model, mkw = TASKS[task]
    data = load_dataset(dataset, **dkw)
    spike_seeds = list(range(args.spike_seeds))
    spikes = []
    print(f"\n## Part 2: spike-count loss, {task}, Adam (mean over seeds {spike_seeds})\n")
    print("| spike-loss weight | test accuracy | spikes/sample | spikes vs weight 0 |")
    print("|---|---|---|---|")
    for w in SPIKE_WEIGHTS:
        s = summarise([run_one(data, model, mkw, "adam", OPTIMIZERS["adam"], seed, args.epochs,
                               spike_loss=w) for seed in spike_seeds])
        s["spike_weight"] = w
        s["spikes_vs_unpenalised"] = s["spikes_per_sample_mean"] / max(
            spikes[0]["spikes_per_sample_mean"] if spikes else s["spikes_per_sample_mean"], 1e-9)
        spikes.append(s)
        print(f"| {w:g} | {s['test_acc_mean']:.3f} +- {s['test_acc_std']:.3f} | "
              f"{s['spikes_per_sample_mean']:.1f} | {s['spikes_vs_unpenalised']:.2f} |",
              flush=True)

    base = spikes[0]
    iso = [s for s in spikes[1:] if s["test_acc_mean"] >= base["test_acc_mean"] - ISO_ACCURACY]
    best_iso = min(iso, key=lambda s: s["spikes_per_sample_mean"]) if iso else None

    print(f"\n## Part 3: spike loss with floor / warm-up / sparse selection, {task}, Adam, "
          f"{SPIKE_EPOCHS} epochs (mean over seeds {spike_seeds})\n")
    print("| variant | test accuracy | vs none | spikes/sample | spikes vs none | best epochs |")
    print("|---|---|---|---|---|---|")
    variants = []
    for label, vopts in SPIKE_VARIANTS.items():
        s = summarise([run_one(data, model, mkw, "adam", {**OPTIMIZERS["adam"], **vopts}, seed,
                               SPIKE_EPOCHS) for seed in spike_seeds])
        s.update(variant=label, options=vopts)
        ref = variants[0] if variants else s
        s["accuracy_minus_none"] = s["test_acc_mean"] - ref["test_acc_mean"]
        s["spikes_vs_none"] = s["spikes_per_sample_mean"] / max(ref["spikes_per_sample_mean"],
                                                                1e-9)
        variants.append(s)
        print(f"| {label} | {s['test_acc_mean']:.3f} +- {s['test_acc_std']:.3f} | "
              f"{s['accuracy_minus_none']:+.3f} | {s['spikes_per_sample_mean']:.1f} | "
              f"{s['spikes_vs_none']:.2f} | {[r['best_epoch'] for r in s['runs']]} |",
              flush=True)
    iso3 = [s for s in variants[1:] if s["accuracy_minus_none"] >= -ISO_ACCURACY]
    best3 = min(iso3, key=lambda s: s["spikes_per_sample_mean"]) if iso3 else None

    print(f"\n## Part 4: Bregman start from density 0.1, {task} (seeds {seeds}, "
          f"{args.epochs} epochs)\n")
    print("| optimizer | init | val acc epoch 1 | first epoch val >= "
          f"{START_THRESHOLD} | test accuracy | non-zero weights | spikes/sample |")
    print("|---|---|---|---|---|---|---|")
    starts = []
    for opt in ("linbreg", "adabreg"):
        for rescale in (False, True):
            runs = [run_one(data, model, mkw, opt, {**OPTIMIZERS[opt], "init_rescale": rescale},
                            seed, args.epochs, curve=True) for seed in seeds]
            for r in runs:
                r["first_epoch_above"] = next((i + 1 for i, a in enumerate(r["val_acc_per_epoch"])
                                               if a >= START_THRESHOLD), None)
            s = summarise(runs)
            s.update(optimizer=opt, init_rescale=rescale,
                     val_acc_epoch1_mean=statistics.fmean(r["val_acc_per_epoch"][0]
                                                          for r in runs))
            starts.append(s)
            print(f"| {opt} | {'rescaled' if rescale else 'plain'} | "
                  f"{s['val_acc_epoch1_mean']:.3f} | {[r['first_epoch_above'] for r in runs]} | "
                  f"{s['test_acc_mean']:.3f} +- {s['test_acc_std']:.3f} | "
                  f"{s['nonzero_fraction_mean']:.3f} | {s['spikes_per_sample_mean']:.1f} |",
                  flush=True)
    summary = {
        "nonzero_vs_adam": {f"{s['task']} / {s['optimizer']}": s["nonzero_vs_adam"]
                            for s in sparsity if s["optimizer"] != "adam"},
        "accuracy_minus_adam": {
            f"{s['task']} / {s['optimizer']}": s["test_acc_mean"] - next(
                a["test_acc_mean"] for a in sparsity
                if a["task"] == s["task"] and a["optimizer"] == "adam")
            for s in sparsity if s["optimizer"] != "adam"},
        "iso_accuracy_tolerance": ISO_ACCURACY,
        "spike_weight_at_iso_accuracy": best_iso["spike_weight"] if best_iso else None,
        "spike_reduction_at_iso_accuracy": (1 - best_iso["spikes_vs_unpenalised"])
        if best_iso else None,
        "part3_epochs": SPIKE_EPOCHS,
        "part3_variant_at_iso_accuracy": best3["variant"] if best3 else None,
        "part3_spike_reduction_at_iso_accuracy": (1 - best3["spikes_vs_none"])
        if best3 else None,
        "part3_accuracy_minus_none": best3["accuracy_minus_none"] if best3 else None,
    }
    print("\nsummary: " + json.dumps(summary, indent=2))
    result = {
        "benchmark": "sparse_training",
        "command": "python benchmarks/sparse_training.py " + " ".join(argv or sys.argv[1:]),
        "machine": info,
        "settings": {"epochs": args.epochs, "seeds": seeds, "spike_seeds": spike_seeds,
                     "tasks": {k: {"dataset": v[0], "dataset_options": v[1], "model": v[2],
                                   "model_options": v[3]} for k, v in TASKS.items()},
                     "optimizers": OPTIMIZERS, "batch_size": TrainConfig.batch_size,
                     "spike_variant_epochs": SPIKE_EPOCHS,
                     "selection": "test numbers at the selected epoch: highest validation "
                                  "accuracy, or with select=sparse the fewest validation "
                                  "spikes within 0.01 of it"},
        "sparsity": sparsity,
        "spike_loss": spikes,
        "spike_loss_variants": variants,
        "bregman_start": starts,
        "summary": summary,
        "wall_time_s": time.perf_counter() - t_start,
    }
    write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"\nwall time {result['wall_time_s']:.0f} s; wrote {args.out}")
    return result


def _fmt_opts(opts: dict) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in opts.items())


if __name__ == "__main__":
    main()
