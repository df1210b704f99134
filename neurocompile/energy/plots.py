"""PNG plots of an energy report (matplotlib, Agg backend; optional dependency)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from neurocompile.errors import NeurocompileError
from neurocompile.ir.io import atomic_path


class PlotDependencyError(NeurocompileError):
    """matplotlib is needed for plots and is not installed."""


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise PlotDependencyError(
            "plots need matplotlib, which is not installed: pip install matplotlib "
            "(or the 'torch' extra), or leave out --plot") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_report(report: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Write energy_breakdown.png (per node per hardware, with ranges) and spikes_per_layer.png; return paths."""
    plt = _pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [_energy_plot(plt, report, out_dir / "energy_breakdown.png"),
             _spikes_plot(plt, report, out_dir / "spikes_per_layer.png")]
    return paths


def _save(plt, fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def _energy_plot(plt, report: dict[str, Any], path: Path) -> Path:
    """Stacked bars per hardware (nominal profile, by node) with the range over profiles as a
    black bar from the lowest to the highest profile's total."""
    hws = [h for h, v in report["hardware"].items() if v["energy"]["available"]]
    nodes = [n for n in report["nodes"]
             if any(n in report["hardware"][h]["energy"]["nodes"] for h in hws)]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(hws) + 3), 4.8))
    labels = [report["hardware"][h].get("label", h).replace(" (", "\n(") for h in hws]
    x = list(range(len(hws)))
    bottom = [0.0] * len(hws)
    cmap = plt.get_cmap("tab20")
    for i, node in enumerate(nodes):
        vals = [report["hardware"][h]["energy"]["nodes"].get(node, {}).get("energy_j", 0.0) * 1e9
                for h in hws]
        ax.bar(x, vals, bottom=bottom, label=node, color=cmap(i % 20))
        bottom = [b + v for b, v in zip(bottom, vals)]
    lows = [report["hardware"][h]["energy"]["energy_range_j"][0] * 1e9 for h in hws]
    highs = [report["hardware"][h]["energy"]["energy_range_j"][1] * 1e9 for h in hws]
    mids = [(lo + hi) / 2 for lo, hi in zip(lows, highs)]
    ax.errorbar(x, mids, yerr=[[m - lo for m, lo in zip(mids, lows)],
                               [hi - m for m, hi in zip(mids, highs)]],
                fmt="none", ecolor="black", elinewidth=2, capsize=6,
                label="range over profiles")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("energy per inference (nJ)")
    top, low = max(highs + bottom, default=0.0), min(lows + bottom, default=0.0)
    ax.set_yscale("log" if top > 100 * max(low, 1e-12) else "linear")
    missing = [h for h in report["hardware"] if h not in hws]
    title = "energy per inference: nominal profile by node, range over profiles"
    if missing:
        title += f"\n(no per-op energy: {', '.join(missing)})"
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(plt, fig, path)


def _spikes_plot(plt, report: dict[str, Any], path: Path) -> Path:
    names = [n for n, v in report["nodes"].items() if "spike_rate" in v]
    spikes = [report["nodes"][n]["per_inference"]["spikes"] for n in names]
    rates = [report["nodes"][n]["spike_rate"] for n in names]
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(names) + 2), 4))
    bars = ax.bar(names, spikes, color="tab:blue")
    for bar, rate in zip(bars, rates):
        ax.annotate(f"{100 * rate:.1f}%", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("spikes per inference")
    ax.set_title("spikes per layer (label: spikes per neuron per step)")
    return _save(plt, fig, path)


__all__ = ["PlotDependencyError", "plot_report"]
