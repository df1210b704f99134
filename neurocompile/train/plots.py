"""Training curves as a PNG: accuracy, non-zero weights and spikes per epoch, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from neurocompile.ir.io import atomic_path


def plot_training(metrics: dict[str, Any], path: str | Path) -> Path:
    """Write the per-epoch curves of a training run's metrics (metrics.json) to `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = metrics.get("epochs") or []
    x = [e["epoch"] for e in epochs]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    axes[0].plot(x, [e.get("train_acc") for e in epochs], label="train")
    axes[0].plot(x, [e.get("val_acc") for e in epochs], label="validation")
    axes[0].set_title("accuracy")
    axes[0].legend()
    axes[1].plot(x, [e.get("nonzero_fraction") for e in epochs], color="tab:green")
    axes[1].set_title("non-zero weights (fraction)")
    axes[1].set_ylim(0, 1.05)
    axes[2].plot(x, [e.get("spikes_per_sample") for e in epochs], color="tab:red")
    axes[2].set_title("spikes per sample (validation)")
    best = metrics.get("best_epoch")
    for ax in axes:
        ax.set_xlabel("epoch")
        if best:
            ax.axvline(best, color="grey", linestyle=":", linewidth=1)
    fig.suptitle(f"{metrics.get('config', {}).get('optimizer', '')} training "
                 f"(dotted: selected epoch {best})", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
