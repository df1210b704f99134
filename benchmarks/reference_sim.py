"""Reference simulator throughput: neuron-steps/s and synaptic events/s.

    .venv/bin/python benchmarks/reference_sim.py [--steps 1000] [--out benchmarks/results/reference_sim.json]

Nets: 700-256-20 feed-forward LIF, and a 1000-neuron recurrent LIF net (100 inputs); input
spikes at 5% activity per step; batch 1 and 64.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import nir
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from neurocompile.ir.io import write_text  # noqa: E402
from neurocompile.targets.reference import Simulator, build_program  # noqa: E402


def lif(n: int) -> nir.LIF:
    return nir.LIF(tau=np.full(n, 4e-3), r=np.full(n, 4.0), v_leak=np.zeros(n),
                   v_threshold=np.ones(n))


def feed_forward(rng) -> nir.NIRGraph:
    nodes = {"input": nir.Input(input_type=np.array([700])),
             "fc1": nir.Affine(weight=rng.normal(0, 0.15, (256, 700)), bias=np.zeros(256)),
             "lif1": lif(256),
             "fc2": nir.Affine(weight=rng.normal(0, 0.3, (20, 256)), bias=np.zeros(20)),
             "lif2": lif(20), "output": nir.Output(output_type=np.array([20]))}
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), metadata={"dt": 1e-3},
                        type_check=False)


def recurrent(rng) -> nir.NIRGraph:
    n = 1000
    nodes = {"input": nir.Input(input_type=np.array([100])),
             "fc1": nir.Affine(weight=rng.normal(0, 0.4, (n, 100)), bias=np.zeros(n)),
             "lif1": lif(n), "rec1": nir.Linear(weight=rng.normal(0, 0.03, (n, n))),
             "output": nir.Output(output_type=np.array([n]))}
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "rec1"), ("rec1", "lif1"),
             ("lif1", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-3}, type_check=False)


def measure(graph: nir.NIRGraph, n_in: int, batch: int, steps: int, rng, repeats: int) -> dict:
    x = (rng.random((batch, steps, n_in)) < 0.05).astype(np.float32)
    sim = Simulator(build_program(graph))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = sim.run({"input": x})
        best = min(best, time.perf_counter() - start)
    neurons = sum(c.neuron_updates for c in result.counters.values())
    events = result.total("synaptic_events")
    return {"batch": batch, "steps": steps, "seconds": best,
            "neuron_steps_per_s": neurons / best, "synaptic_events_per_s": events / best,
            "spikes": result.total("spikes")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/reference_sim.json"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for name, graph, n_in in (("ff 700-256-20", feed_forward(rng), 700),
                              ("recurrent 1000", recurrent(rng), 100)):
        for batch in (1, 64):
            row = {"net": name, **measure(graph, n_in, batch, args.steps, rng, args.repeats)}
            rows.append(row)
            print(f"{row['net']:<16} batch {batch:>3}  T={row['steps']}  {row['seconds']:8.3f} s  "
                  f"{row['neuron_steps_per_s']:12.3e} neuron-steps/s  "
                  f"{row['synaptic_events_per_s']:12.3e} syn-events/s", flush=True)
    write_text(args.out, json.dumps({"benchmark": "reference_sim", "machine": machine(),
                                     "numpy": np.__version__, "rows": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
