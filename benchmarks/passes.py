"""Graph passes: sparsity vs output agreement and synaptic events; pass run time at 10M weights.

    .venv/bin/python benchmarks/passes.py [--out benchmarks/results/passes.json]

Part 1: a random 700-256-20 LIF network (tau 4 ms, r 4, threshold 1, dt 1 ms; weights
N(0, 0.15) and N(0, 0.3)). Calibration: 32 samples of 100 steps of 5% Poisson input spikes;
evaluation: 64 other samples. Each pass's graph is compared with the float original on the
reference simulator (Loihi graphs in fixed-point mode): spike-for-spike agreement of the
20 output neurons, classification agreement (argmax of output spike counts), synaptic events.
Part 2: wall time of each pass on a 1000-5000-1000 network (10 million weights).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import nir
import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from neurocompile.analysis import compare, record_activity  # noqa: E402
from neurocompile.ir.io import write_text  # noqa: E402
from neurocompile.passes import (  # noqa: E402
    activity_prune,
    magnitude_prune,
    quantize_int8,
    quantize_loihi,
    remove_dead_neurons,
)
from neurocompile.passes.report import count_params  # noqa: E402


def lif(n: int) -> nir.LIF:
    return nir.LIF(tau=np.full(n, 4e-3), r=np.full(n, 4.0), v_leak=np.zeros(n),
                   v_threshold=np.ones(n))


def network(sizes: tuple[int, ...], stds: tuple[float, ...], seed: int = 0) -> nir.NIRGraph:
    rng = np.random.default_rng(seed)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array([sizes[0]])})}
    for i, (n_in, n_out, std) in enumerate(zip(sizes, sizes[1:], stds), start=1):
        nodes[f"fc{i}"] = nir.Affine(weight=rng.normal(0, std, (n_out, n_in)), bias=np.zeros(n_out))
        nodes[f"lif{i}"] = lif(n_out)
    nodes["output"] = nir.Output(output_type={"output": np.array([sizes[-1]])})
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), metadata={"dt": 1e-3},
                        type_check=False)


def poisson(seed: int, batch: int, steps: int, n: int, rate: float = 0.05) -> np.ndarray:
    return (np.random.default_rng(seed).random((batch, steps, n)) < rate).astype(np.float64)


def nonzero(graph: nir.NIRGraph) -> int:
    return sum(int(np.count_nonzero(n.weight)) for n in graph.nodes.values()
               if hasattr(n, "weight"))


def agreement_table(console: Console) -> list[dict]:
    g = network((700, 256, 20), (0.15, 0.3))
    cal = {"input": poisson(1, 32, 100, 700)}
    x = {"input": poisson(2, 64, 100, 700)}
    activity = record_activity(g, cal)
    runs: list[tuple[str, str, nir.NIRGraph]] = [("none", "-", g)]
    for s in (0.5, 0.8, 0.9, 0.95):
        runs.append(("magnitude (layer)", f"{s}", magnitude_prune(g, s)[0]))
        runs.append(("magnitude (global)", f"{s}", magnitude_prune(g, s, scope="global")[0]))
        runs.append(("activity |w|*rate", f"{s}", activity_prune(g, activity, s)[0]))
    runs.append(("dead neurons", "-", remove_dead_neurons(g, activity)[0]))
    runs.append(("int8", "-", quantize_int8(g)[0]))
    runs.append(("loihi 8-bit (fixed pt)", "-", quantize_loihi(g)[0]))
    runs.append(("loihi 4-bit (fixed pt)", "-", quantize_loihi(g, bits=4)[0]))
    runs.append(("magnitude 0.9 + loihi 8-bit", "0.9", quantize_loihi(magnitude_prune(g, 0.9)[0])[0]))
    rows = []
    table = Table(title="700-256-20 LIF, 64 samples x 100 steps, 5% input spikes")
    for col in ("pass", "sparsity", "non-zero weights", "spike agreement", "class agreement",
                "synaptic events", "events vs float"):
        table.add_column(col, justify="left" if col == "pass" else "right")
    for name, s, graph in runs:
        rep = compare(g, graph, x)
        out = rep["outputs"]["output"]
        ev = rep["totals"]["synaptic_events"]
        row = {"pass": name, "sparsity": s, "nonzero_weights": nonzero(graph),
               "spike_agreement": out.get("spike_agreement"),
               "class_agreement": out.get("class_agreement"),
               "synaptic_events": ev["transformed"],
               "events_ratio": ev["transformed"] / ev["reference"],
               "output_spikes": int(rep["nodes"].get("lif2", {}).get("spikes", [0, 0])[1])}
        rows.append(row)
        table.add_row(name, s, f"{row['nonzero_weights']:,}", f"{row['spike_agreement']:.4f}",
                      f"{row['class_agreement']:.3f}", f"{row['synaptic_events']:,}",
                      f"{row['events_ratio']:.3f}")
    console.print(table)
    return rows


def timing_table(console: Console) -> list[dict]:
    g = network((1000, 5000, 1000), (0.05, 0.05))
    n_weights = sum(int(np.size(n.weight)) for n in g.nodes.values() if hasattr(n, "weight"))
    cal = {"input": poisson(3, 4, 20, 1000)}
    jobs = [("magnitude 0.9 (layer)", lambda: magnitude_prune(g, 0.9)),
            ("magnitude 0.9 (global)", lambda: magnitude_prune(g, 0.9, scope="global")),
            ("magnitude threshold", lambda: magnitude_prune(g, threshold=0.01)),
            ("activity 0.9 (4x20-step calibration run)",
             lambda: activity_prune(g, record_activity(g, cal), 0.9)),
            ("dead neurons (4x20-step calibration run)",
             lambda: remove_dead_neurons(g, record_activity(g, cal))),
            ("int8", lambda: quantize_int8(g)),
            ("loihi 8-bit", lambda: quantize_loihi(g))]
    table = Table(title=f"pass run time, 1000-5000-1000 network ({n_weights:,} weights)")
    table.add_column("pass")
    table.add_column("seconds", justify="right")
    rows = []
    for name, job in jobs:
        start = time.perf_counter()
        out, _ = job()
        seconds = time.perf_counter() - start
        rows.append({"pass": name, "weights": n_weights, "seconds": seconds,
                     "params_after": sum(count_params(n) for n in out.nodes.values())})
        table.add_row(name, f"{seconds:.2f}")
    console.print(table)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/passes.json")
    args = parser.parse_args()
    console = Console()
    result = {"benchmark": "passes", "machine": machine(),
              "agreement": agreement_table(console), "timing": timing_table(console),
              # other processes share the CPU: timings are upper bounds when this is high
              "load_average_1min": os.getloadavg()[0]}
    write_text(args.out, json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
