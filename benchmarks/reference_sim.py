"""Reference simulator at scale: ms/step, peak memory, and the distance to a 1 ns/event floor.

    .venv/bin/python benchmarks/reference_sim.py [--quick] [--out benchmarks/results/reference_sim.json]

Rows (each measured in a fresh subprocess, so its peak resident memory is its own):

* feed-forward 700-256-20 LIF, batch 1 and 64, T = 1000, float64 and float32;
* recurrent LIF nets of 1k, 10k and 50k neurons at 1 % connectivity (scipy.sparse weights in
  memory), 100 Poisson inputs at 5 %, batch 1, float64 and float32; the 1k and 10k nets also
  with the same weights dense, as they ran before sparse synapses;
* a 15-node N-MNIST-sized CNN (2x34x34 input): program build time against its 100-step run;
* the 50k net's NIR file round trip (save, load: chunked, compressed datasets read in blocks
  into CSR), with peak memory.

The floor is 1 ns per synaptic event: floor ms/step = events per step x 1e-6. `vs floor` is
ms/step over that floor. BLAS threads are the simulator's own choice (one thread for stepping
at small batch, see targets/reference/simulator.py); the machine is recorded with the results.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nir
import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import fig, machine  # noqa: E402

from neurocompile.ir.io import load_graph, save_graph, write_text  # noqa: E402
from neurocompile.targets.reference import Simulator, build_program  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "reference_sim.json"
EXC = 0.06
IN_MEAN = 0.25  # input weight mean


def lif(n: int, tau: float = 4e-3) -> nir.LIF:
    return nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / 1e-3), v_leak=np.zeros(n),
                   v_threshold=np.ones(n))


def feed_forward(seed: int = 0) -> nir.NIRGraph:
    rng = np.random.default_rng(seed)
    nodes = {"input": nir.Input(input_type=np.array([700])),
             "fc1": nir.Affine(weight=rng.normal(0, 0.15, (256, 700)), bias=np.zeros(256)),
             "lif1": lif(256),
             "fc2": nir.Affine(weight=rng.normal(0, 0.3, (20, 256)), bias=np.zeros(20)),
             "lif2": lif(20), "output": nir.Output(output_type=np.array([20]))}
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), metadata={"dt": 1e-3},
                        type_check=False)


def _random_sparse(rng, n_out: int, n_in: int, density: float, values) -> sp.csr_matrix:
    """density x n_out x n_in random entries (duplicates summed), without an n_out x n_in
    temporary (scipy.sparse.random draws a permutation of every position)."""
    k = int(round(density * n_out * n_in))
    rows, cols = rng.integers(0, n_out, k), rng.integers(0, n_in, k)
    return sp.csr_matrix((values(k), (rows, cols)), shape=(n_out, n_in))


def recurrent(n: int, dense: bool = False, seed: int = 0) -> nir.NIRGraph:
    """n LIF neurons, 1 % recurrent connectivity (80 % excitatory, inhibition 4x stronger:
    balanced on average), 100 Poisson inputs reaching 10 % of the neurons each."""
    rng = np.random.default_rng(seed)
    scale = EXC / np.sqrt(n / 100)
    w = _random_sparse(rng, n, n, 0.01, lambda k: np.abs(rng.normal(0, 1, k)) * scale *
                       np.where(rng.random(k) < 0.8, 1.0, -4.0))
    w_in = _random_sparse(rng, n, 100, 0.1, lambda k: rng.normal(IN_MEAN, IN_MEAN / 3, k))
    nodes = {"input": nir.Input(input_type=np.array([100])),
             "fc1": nir.Linear(weight=w_in.toarray() if dense else w_in),
             "lif1": lif(n, tau=8e-3),
             "rec1": nir.Linear(weight=w.toarray() if dense else w),
             "output": nir.Output(output_type=np.array([n]))}
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "rec1"), ("rec1", "lif1"),
             ("lif1", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-3}, type_check=False)


def cnn(seed: int = 0) -> nir.NIRGraph:
    """Input 2x34x34 -> (conv5, LIF, sumpool2) x 2 -> flatten -> affine -> LIF -> affine -> LIF."""
    rng = np.random.default_rng(seed)

    def conv(c_in: int, c_out: int) -> nir.Conv2d:
        return nir.Conv2d(input_shape=None, weight=rng.normal(0, 0.35, (c_out, c_in, 5, 5)),
                          stride=1, padding=2, dilation=1, groups=1, bias=np.zeros(c_out))

    def lifc(shape) -> nir.LIF:
        return nir.LIF(tau=np.full(shape, 4e-3), r=np.full(shape, 4.0), v_leak=np.zeros(shape),
                       v_threshold=np.ones(shape))

    pool = {"kernel_size": np.array([2, 2]), "stride": np.array([2, 2]),
            "padding": np.array([0, 0])}
    nodes = {"input": nir.Input(input_type=np.array([2, 34, 34])),
             "conv1": conv(2, 16), "lif1": lifc((16, 34, 34)), "pool1": nir.SumPool2d(**pool),
             "conv2": conv(16, 32), "lif2": lifc((32, 17, 17)), "pool2": nir.SumPool2d(**pool),
             "flat": nir.Flatten(input_type={"input": np.array([32, 8, 8])}, start_dim=0),
             "fc1": nir.Affine(weight=rng.normal(0, 0.05, (128, 2048)), bias=np.zeros(128)),
             "lif3": lifc((128,)),
             "fc2": nir.Affine(weight=rng.normal(0, 0.2, (10, 128)), bias=np.zeros(10)),
             "lif4": lifc((10,)), "extra": nir.Scale(scale=np.ones(10)),
             "output": nir.Output(output_type=np.array([10]))}
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), metadata={"dt": 1e-3},
                        type_check=False)


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_row(spec: dict) -> dict:
    """One measurement (in this process): build the graph, build the program, run, time."""
    kind, steps, batch, dtype = spec["kind"], spec["steps"], spec["batch"], spec["dtype"]
    rng = np.random.default_rng(1)
    if kind == "roundtrip":
        graph = recurrent(spec["n"])
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "net.nir"
            start = time.perf_counter()
            save_graph(graph, path)
            saved = time.perf_counter() - start
            size = path.stat().st_size
            del graph
            base = _peak_mib()
            start = time.perf_counter()
            loaded = load_graph(path)
            load_s = time.perf_counter() - start
        w = loaded.nodes["rec1"].weight
        return {"save_s": saved, "load_s": load_s, "file_mib": size / 2**20,
                "loaded_sparse": bool(sp.issparse(w)), "peak_mib": _peak_mib(),
                "peak_before_load_mib": base}
    graph = {"ff": feed_forward, "cnn": cnn}.get(kind)
    graph = graph() if graph else recurrent(spec["n"], dense=spec.get("dense", False))
    n_in = int(np.prod(graph.nodes["input"].input_type["input"]))
    x = (rng.random((batch, steps, n_in)) < spec.get("rate", 0.05)).astype(np.float32)
    start = time.perf_counter()
    prog = build_program(graph, dtype=dtype)
    build_s = time.perf_counter() - start
    sim = Simulator(prog)
    best = float("inf")
    for _ in range(spec.get("repeats", 3)):
        result = sim.run({"input": x})
        best = min(best, result.wall_time_s)
    events = result.total("synaptic_events")
    floor_ms = events / (steps * batch) * 1e-6
    ms = best / steps * 1e3
    return {"build_s": build_s, "run_s": best, "ms_per_step": ms,
            "synaptic_events_per_step": events / steps / batch,
            "spikes_per_neuron_step": result.total("spikes") / max(
                1, sum(c.neuron_updates for c in result.counters.values())),
            "floor_ms_per_step": floor_ms, "vs_floor": ms / batch / floor_ms if floor_ms else None,
            "peak_mib": _peak_mib(), "spikes": result.total("spikes")}


def specs(quick: bool) -> list[dict]:
    T = 200 if quick else 1000
    rows = []
    for batch in (1, 64):
        for dtype in ("float64", "float32"):
            rows.append({"net": "ff 700-256-20", "kind": "ff", "batch": batch, "steps": T,
                         "dtype": dtype})
    sizes = (1000, 10000) if quick else (1000, 10000, 50000)
    for n in sizes:
        steps = T if n <= 10000 else T // 5
        for dtype in ("float64", "float32"):
            rows.append({"net": f"recurrent {n // 1000}k, 1 %, sparse", "kind": "rec", "n": n,
                         "batch": 1, "steps": steps, "dtype": dtype})
        if n <= 10000:
            rows.append({"net": f"recurrent {n // 1000}k, 1 %, dense", "kind": "rec", "n": n,
                         "dense": True, "batch": 1, "steps": steps // 5, "dtype": "float64",
                         "repeats": 1})
    for dtype in ("float64", "float32"):
        rows.append({"net": "CNN 2x34x34, 15 nodes", "kind": "cnn", "batch": 1, "steps": 100,
                     "dtype": dtype, "repeats": 1})
    rows.append({"net": f"NIR file round trip, recurrent {sizes[-1] // 1000}k",
                 "kind": "roundtrip", "n": sizes[-1], "batch": 1, "steps": 0,
                 "dtype": "float64"})
    return rows


def _print(row: dict) -> None:
    if row["kind"] == "roundtrip":
        print(f"{row['net']:<34} save {row['save_s']:7.1f} s  load {row['load_s']:7.1f} s  "
              f"file {row['file_mib']:8.1f} MiB  peak {row['peak_mib']:8.0f} MiB", flush=True)
        return
    floor = f"{row['vs_floor']:6.1f}x" if row.get("vs_floor") else "     -"
    print(f"{row['net']:<34} b{row['batch']:<3} {row['dtype']:<8} build {row['build_s']:6.3f} s  "
          f"run {row['run_s']:7.3f} s  {row['ms_per_step']:9.4f} ms/step  floor x{floor}  "
          f"peak {row['peak_mib']:7.0f} MiB", flush=True)


def markdown(result: dict) -> str:
    """The docs/benchmarks.md tables, each figure marked with its key in the JSON."""
    def f(i: int, field: str, fmt: str) -> str:
        return fig(f"reference_sim.rows.{i}.{field}", format(result["rows"][i][field], fmt), fmt)

    lines = ["| network | batch | dtype | build s | run s | ms/step | events/step | vs 1 ns/event "
             "| peak MiB |", "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for i, r in enumerate(result["rows"]):
        if r["kind"] == "roundtrip" or "error" in r:
            continue
        lines.append(f"| {r['net']} | {r['batch']} | {r['dtype']} | {f(i, 'build_s', '.3f')} | "
                     f"{f(i, 'run_s', '.3f')} | {f(i, 'ms_per_step', '.4f')} | "
                     f"{f(i, 'synaptic_events_per_step', '.0f')} | {f(i, 'vs_floor', '.1f')}x | "
                     f"{f(i, 'peak_mib', '.0f')} |")
    for i, r in enumerate(result["rows"]):
        if r["kind"] == "roundtrip" and "error" not in r:
            lines += ["", f"{r['net']}: save {f(i, 'save_s', '.1f')} s, load "
                      f"{f(i, 'load_s', '.1f')} s, file {f(i, 'file_mib', '.0f')} MiB, peak "
                      f"{f(i, 'peak_mib', '.0f')} MiB."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Shorter runs, no 50k net.")
    parser.add_argument("--row", help=argparse.SUPPRESS)  # internal: one row, JSON on stdout
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--markdown", action="store_true",
                        help="Print the docs tables from the JSON (figures marked), run nothing.")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(json.loads(args.out.read_text())))
        return
    if args.row:
        print(json.dumps(run_row(json.loads(args.row))))
        return
    rows = []
    for spec in specs(args.quick):
        proc = subprocess.run([sys.executable, __file__, "--row", json.dumps(spec)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            row = {**spec, "error": proc.stderr.strip().splitlines()[-1]}
            print(f"{spec['net']}: {row['error']}", flush=True)
        else:
            row = {**spec, **json.loads(proc.stdout.splitlines()[-1])}
            _print(row)
        rows.append(row)
        write_text(args.out, json.dumps({"benchmark": "reference_sim", "machine": machine(),
                                         "numpy": np.__version__, "quick": args.quick,
                                         "rows": rows}, indent=2))  # after every row
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
