"""Lava (CPU, floating_pt, worker process) vs the NumPy reference simulator: time per step.

Same graph, same inputs through both; the output spikes must be identical (weights are
multiples of 1/64 and every gain is 1, so float sums are exact). Nets: Input -> Affine -> LIF
-> Affine -> LIF, sizes 100-100-10 and 700-256-20, T = 100 and 1000 steps, batch 1 and 64
(times per sample and step). Goals: Lava / reference at least 100x at batch 1 and 1000x at
batch 64.

    NEUROCOMPILE_LAVA_PYTHON=.venv-lava/bin/python python benchmarks/lava_vs_reference.py

Writes benchmarks/results/lava_vs_reference.json (with the machine named) and prints a table
(--markdown: as Markdown, for docs/lava.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

import nir
import numpy as np

from neurocompile.ir.io import write_text
from neurocompile.targets import get_target
from neurocompile.targets.reference import simulate

RESULTS = Path(__file__).resolve().parent / "results" / "lava_vs_reference.json"


def net(n_in: int, n_h: int, n_out: int, seed: int = 0) -> nir.NIRGraph:
    """Two LIF layers (dv = 0.5, gain 1, threshold 1) with dyadic weights."""
    rng = np.random.default_rng(seed)

    def lif(n: int) -> nir.LIF:
        return nir.LIF(tau=np.full(n, 2e-3), r=np.full(n, 2.0), v_leak=np.zeros(n),
                       v_threshold=np.full(n, 1.0))

    w1 = rng.integers(-64, 60, (n_h, n_in)) / 64 * (100 / n_in) ** 0.5
    w2 = rng.integers(-64, 60, (n_out, n_h)) / 64 * (100 / n_h) ** 0.5
    w1, w2 = np.round(w1 * 64) / 64, np.round(w2 * 64) / 64
    return nir.NIRGraph(
        nodes={"input": nir.Input(np.array([n_in])), "fc1": nir.Affine(w1, np.zeros(n_h)),
               "lif1": lif(n_h), "fc2": nir.Affine(w2, np.zeros(n_out)), "lif2": lif(n_out),
               "output": nir.Output(np.array([n_out]))},
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
               ("lif2", "output")],
        metadata={"dt": 1e-3}, type_check=False)


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict:
    return {"processor": platform.processor() or platform.machine(), "node": platform.node(),
            "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "python": sys.version.split()[0], "numpy": np.__version__,
            "torch": _version("torch"), "lava_python": os.environ.get("NEUROCOMPILE_LAVA_PYTHON"),
            "load_average_1_5_15": list(os.getloadavg())}


def bench(sizes: tuple[int, int, int], steps: int, batch: int = 1, rate: float = 0.05,
          repeats: int = 3, lava_repeats: int = 2) -> dict:
    g = net(*sizes)
    rng = np.random.default_rng(1)
    x = {"input": (rng.random((batch, steps, sizes[0])) < rate).astype(np.float64)}
    ref_times = []
    for _ in range(repeats):
        ref = simulate(g, x)
        ref_times.append(ref.wall_time_s)
    target = get_target("lava")
    artifact = target.compile(g)
    runs = []
    for _ in range(lava_repeats):
        start = time.perf_counter()
        res = target.run(artifact, x)
        runs.append((target.last_run_info["steady_run_s"], time.perf_counter() - start,
                     dict(target.last_run_info)))
    _, total, info = min(runs, key=lambda r: r[0])
    same = all(np.array_equal(res.outputs[k], ref.outputs[k]) for k in ref.outputs)
    same_counters = res.counters_dict() == ref.counters_dict()
    ref_step = min(ref_times) / (steps * batch)  # per sample and step
    lava_step = info["steady_run_s"] / max(1, info["steady_steps"])  # Lava runs samples in turn
    return {
        "net": "-".join(map(str, sizes)), "steps": steps, "batch": batch,
        "spikes_identical": bool(same), "counters_identical": bool(same_counters),
        "output_spikes": int(ref.outputs["output"].sum()),
        "hidden_spikes": int(ref.counters["lif1"].spikes),
        "reference_ms_per_step": ref_step * 1e3,
        "lava_ms_per_step": lava_step * 1e3,
        "ratio_lava_over_reference": lava_step / ref_step,
        "lava_compile_and_first_step_s": info["compile_and_first_step_s"],
        "lava_total_s": total,
        "reference_total_s": min(ref_times),
    }


def markdown(result: dict) -> str:
    """The docs table, each figure marked with its key in the JSON (scripts/figures.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _machine import fig

    def f(i: int, field: str, fmt: str) -> str:
        key = f"lava_vs_reference.rows.{i}.{field}"
        return fig(key, format(result["rows"][i][field], fmt), fmt)

    lines = ["| net | steps | batch | reference ms/step | Lava ms/step | Lava / reference | "
             "spikes identical |", "|---|---:|---:|---:|---:|---:|---|"]
    for i, r in enumerate(result["rows"]):
        lines.append(f"| {r['net']} | {r['steps']} | {r['batch']} | "
                     f"{f(i, 'reference_ms_per_step', '.4f')} | {f(i, 'lava_ms_per_step', '.2f')}"
                     f" | {f(i, 'ratio_lava_over_reference', '.0f')}x | "
                     f"{'yes' if r['spikes_identical'] else 'NO'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true",
                        help="print the docs table from the recorded JSON (run nothing)")
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 1000])
    args = parser.parse_args()
    from rich.console import Console
    from rich.progress import track
    from rich.table import Table

    if args.markdown and RESULTS.is_file():  # the docs table from the recorded JSON
        print(markdown(json.loads(RESULTS.read_text())))
        return
    cases = [(s, t, b) for b in (1, 64) for s in ((100, 100, 10), (700, 256, 20))
             for t in args.steps]
    rows = [bench(s, t, b, lava_repeats=2 if b == 1 else 1)
            for s, t, b in track(cases, description="lava vs reference")]
    result = {"benchmark": "lava_vs_reference", "machine": machine(), "rows": rows,
              "notes": "ms per step are per sample: the reference runs a batch at once, Lava "
                       "its samples one after the other. lava_ms_per_step: steady state after "
                       "Lava's compile and first step, worker process, Loihi2SimCfg "
                       "floating_pt, best of 2 runs at batch 1, one run at batch 64; "
                       "reference: NumPy float64, best of 3; lava_total_s (the same run) "
                       "includes worker start-up and Lava compile."}
    write_text(RESULTS, json.dumps(result, indent=2) + "\n")
    cols = ["net", "steps", "batch", "reference ms/step", "Lava ms/step", "Lava / reference",
            "Lava total s", "spikes identical"]
    cells = [[r["net"], str(r["steps"]), str(r["batch"]), f"{r['reference_ms_per_step']:.4f}",
              f"{r['lava_ms_per_step']:.2f}", f"{r['ratio_lava_over_reference']:.0f}x",
              f"{r['lava_total_s']:.1f}", "yes" if r["spikes_identical"] else "NO"]
             for r in rows]
    if args.markdown:
        print("| " + " | ".join(cols) + " |")
        print("|" + "---|" * len(cols))
        for c in cells:
            print("| " + " | ".join(c) + " |")
    else:
        table = Table(title=f"Lava vs reference on {result['machine']['processor']} "
                            f"({result['machine']['cpu_count']} CPUs)")
        for c in cols:
            table.add_column(c, justify="left" if c == "net" else "right")
        for c in cells:
            table.add_row(*c)
        Console().print(table)
    print(f"wrote {RESULTS}")
    if not all(r["spikes_identical"] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
