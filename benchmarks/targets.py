"""Time per step of each backend against the NumPy reference, in one run, with the spikes checked.

    .venv/bin/python benchmarks/targets.py [--threads 1] [--batches 1,64] [--steps 100]
        [--targets reference,torch,torch32,norse,onnx] [--device cpu]
        [--out benchmarks/results/targets.json]
    .venv/bin/python benchmarks/targets.py --agreement 60     # spike agreement, generated graphs

Nets: a 700-256-20 CubaLIF feed-forward net and a 1000-neuron recurrent CubaLIF net (100
inputs), input spikes at 5% per step. Every variant runs the same graph and inputs; the ratio is
the reference's time over the variant's, both measured here and now (best of --repeats; every
variant but the NumPy reference after one warm-up run). Each row also says whether its output
spikes are identical to the reference's (float64) and the fraction of output entries that
agree. Counters are computed in every run unless the variant's name ends in "-nocount".
Variants ending in "-dev" take their inputs as torch tensors already on the device and leave
the outputs there (a dataset evaluated on the GPU: nothing of size batch x steps crosses the
bus); the others take NumPy arrays and return NumPy arrays, host-device copies in their time.
Lava (NEUROCOMPILE_LAVA_PYTHON) runs samples one after the other at about 1 ms a step; it is
left out at batches of 1000 and more.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def _threads_arg(argv: list[str]) -> str:
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return "1"


# BLAS threads are fixed at import: set them from --threads before NumPy loads.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = _threads_arg(sys.argv)

import nir  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from neurocompile.ir.io import write_text  # noqa: E402
from neurocompile.targets import get_target  # noqa: E402

# variant -> (target, options)
VARIANTS = {
    "reference": ("reference", {"dtype": "float64"}),
    "torch": ("torch", {"dtype": "float64"}),
    "torch32": ("torch", {"dtype": "float32"}),
    "torch-nocount": ("torch", {"dtype": "float64", "counters": False}),
    "torch32-nocount": ("torch", {"dtype": "float32", "counters": False}),
    "torch-dev": ("torch", {"dtype": "float64"}),
    "torch32-dev": ("torch", {"dtype": "float32"}),
    "norse": ("norse", {"dtype": "float64"}),
    "onnx": ("onnx", {"dtype": "float32", "form": "sequence"}),
    "onnx-step": ("onnx", {"dtype": "float32", "form": "step"}),
    "lava": ("lava", {}),
}
# Variants whose inputs are torch tensors already on the device and whose outputs stay there
# (a dataset evaluated on the GPU); the others take NumPy inputs and return NumPy outputs.
RESIDENT = ("torch-dev", "torch32-dev")
LAVA_MAX_BATCH = 999
RESULTS = Path(__file__).resolve().parent / "results"


def cuba(n: int) -> nir.CubaLIF:
    """du = 1/4, dv = 1/8, gain (dv*r)*(du*w_in) = 1, threshold 1."""
    return nir.CubaLIF(tau_syn=np.full(n, 4e-3), tau_mem=np.full(n, 8e-3), r=np.full(n, 8.0),
                       v_leak=np.zeros(n), v_threshold=np.ones(n), w_in=np.full(n, 4.0))


def feed_forward(rng) -> nir.NIRGraph:
    nodes = {"input": nir.Input(np.array([700])),
             "fc1": nir.Affine(rng.normal(0, 0.25, (256, 700)), np.zeros(256)), "lif1": cuba(256),
             "fc2": nir.Affine(rng.normal(0, 0.4, (20, 256)), np.zeros(20)), "lif2": cuba(20),
             "output": nir.Output(np.array([20]))}
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), metadata={"dt": 1e-3},
                        type_check=False)


def recurrent(rng) -> nir.NIRGraph:
    n = 1000
    nodes = {"input": nir.Input(np.array([100])),
             "fc1": nir.Affine(rng.normal(0, 0.6, (n, 100)), np.zeros(n)), "lif1": cuba(n),
             "rec1": nir.Linear(rng.normal(0, 0.04, (n, n))),
             "output": nir.Output(np.array([n]))}
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "rec1"), ("rec1", "lif1"),
             ("lif1", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-3}, type_check=False)


def timed(variant: str, graph: nir.NIRGraph, x: np.ndarray, repeats: int, device: str,
          threads: int) -> tuple[float, object]:
    target_name, options = VARIANTS[variant]
    target = get_target(target_name)
    options = dict(options)
    if target_name in ("torch", "norse"):
        options.update(device=device, threads=threads)
    if target_name == "onnx":
        options.update(threads=threads)
    artifact = target.compile(graph, options)
    if variant in RESIDENT:  # placed before the clock starts, as the NumPy inputs are
        import torch

        x = torch.as_tensor(x, device=device)
    if target_name not in ("reference", "lava"):  # warm-up (CUDA, onnxruntime's first run)
        target.run(artifact, {"input": x})
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = target.run(artifact, {"input": x})  # synchronizes before returning
        best = min(best, time.perf_counter() - start)
    if variant in RESIDENT:
        result.outputs = {k: v.cpu().numpy() for k, v in result.outputs.items()}
    return best, result


def agreement(seeds: int, out: Path) -> None:
    """Per target and dtype, on the generated test graphs (tests/backend_graphs.py): how many
    graphs give the reference's spikes, readouts and counters, and the fraction of output
    entries equal to the reference's in the same dtype and in float64."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from backend_graphs import random_graph, spikes

    ref = get_target("reference")
    rows = []
    for target, dtype in (("torch", "float64"), ("torch", "float32"), ("onnx", "float64"),
                          ("onnx", "float32"), ("norse", "float64"), ("norse", "float32")):
        for weights in ("dyadic", "normal"):
            row = {"target": target, "dtype": dtype, "weights": weights, "graphs": 0,
                   "spikes_identical": 0, "readout_identical": 0, "counters_equal": 0,
                   "entries": 0, "entries_equal_same_dtype": 0, "entries_equal_float64": 0}
            for seed in range(seeds):
                graph, shape = random_graph(seed, weights)
                if target == "onnx" and dtype == "float64" and seed % 3:
                    continue  # onnxruntime has no float64 Conv
                x = spikes(seed, 4, 40, shape)
                want = ref.run(ref.compile(graph, {"dtype": dtype}), {"input": x})
                want64 = ref.run(ref.compile(graph), {"input": x})
                t = get_target(target)
                got = t.run(t.compile(graph, {"dtype": dtype}), {"input": x})
                row["graphs"] += 1
                spiking = [k for k in want.outputs if k != "out_v"]
                row["spikes_identical"] += all(np.array_equal(got.outputs[k], want.outputs[k])
                                               for k in spiking)
                row["readout_identical"] += bool(np.array_equal(got.outputs["out_v"],
                                                                want.outputs["out_v"]))
                row["counters_equal"] += got.counters_dict() == want.counters_dict()
                for k in spiking:
                    row["entries"] += got.outputs[k].size
                    row["entries_equal_same_dtype"] += int(np.sum(got.outputs[k] == want.outputs[k]))
                    row["entries_equal_float64"] += int(np.sum(got.outputs[k] == want64.outputs[k]))
            rows.append(row)
            print(row, flush=True)
    write_text(out, json.dumps({"benchmark": "targets_agreement", "machine": machine(),
                                "seeds": seeds, "batch": 4, "steps": 40, "rows": rows}, indent=1))
    print(f"wrote {out}")


def _table(name: str, columns: list[tuple[str, str]]) -> str:
    """One docs table from results/<name>.json: a row per (net, batch), a column per variant
    (header, variant) with us/sample-step and the speed-up over the reference, marked."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _machine import fig

    rows = json.loads((RESULTS / f"{name}.json").read_text())["rows"]
    index = {(r["net"], r["batch"], r["variant"]): i for i, r in enumerate(rows)}
    keys = list(dict.fromkeys((r["net"], r["batch"]) for r in rows))
    lines = ["| net | batch | " + " | ".join(h for h, _ in columns) + " |",
             "|---|---:|" + "---:|" * len(columns)]
    for net, batch in keys:
        cells = []
        for _, variant in columns:
            i = index.get((net, batch, variant))
            if i is None:
                cells.append("—")
                continue
            us = fig(f"{name}.rows.{i}.us_per_sample_step",
                     format(rows[i]["us_per_sample_step"], ".2f"), ".2f")
            if variant == "reference":
                cells.append(us)
                continue
            x = fig(f"{name}.rows.{i}.speedup_vs_reference",
                    format(rows[i]["speedup_vs_reference"], ".2f"), ".2f")
            same = "" if rows[i]["spikes_identical_to_reference"] else " ≠"
            cells.append(f"{us} ({x}x){same}")
        lines.append(f"| {net} | {batch:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown() -> str:
    """The docs/backends.md speed tables (CPU here; CUDA on the GPU host)."""
    cpu = _table("targets", [("reference", "reference"), ("torch f64", "torch"),
                             ("torch f32", "torch32"), ("Norse f64", "norse"),
                             ("ONNX f32 (Scan)", "onnx"), ("ONNX f32 (step)", "onnx-step"),
                             ("Lava", "lava")])
    cuda = "\n\n".join(_table(n, [("reference", "reference"), ("torch CUDA f64", "torch"),
                                   ("torch CUDA f32", "torch32"),
                                   ("f64, data on GPU", "torch-dev"),
                                   ("f32, data on GPU", "torch32-dev")])
                        for n in ("targets_cuda_small", "targets_cuda_10000"))
    return cpu + "\n\n" + cuda


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batches", default="1,64")
    parser.add_argument("--targets", default="reference,torch,torch32,norse,onnx")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--big-repeats", type=int, default=1,
                        help="Repeats at batches of 1000 and more.")
    parser.add_argument("--nets", default="ff,rec")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/targets.json"))
    parser.add_argument("--markdown", action="store_true",
                        help="Print the docs tables from the recorded JSON; run nothing.")
    parser.add_argument("--agreement", type=int, default=0, metavar="SEEDS",
                        help="Instead: spike agreement on SEEDS generated test graphs "
                             "(writes benchmarks/results/targets_agreement.json).")
    args = parser.parse_args()
    if args.markdown:
        print(markdown())
        return
    if args.agreement:
        agreement(args.agreement, Path("benchmarks/results/targets_agreement.json"))
        return
    variants = args.targets.split(",")
    if variants[0] != "reference":
        variants = ["reference"] + [v for v in variants if v != "reference"]
    info = machine()
    if args.device.startswith("cuda"):
        import torch

        info["gpu"] = torch.cuda.get_device_name(0)
        info["torch"] = torch.__version__
    rng = np.random.default_rng(0)
    nets = {"ff": ("CubaLIF 700-256-20", feed_forward(rng), 700),
            "rec": ("recurrent CubaLIF 1000", recurrent(rng), 100)}
    rows = []
    for key in args.nets.split(","):
        label, graph, n_in = nets[key]
        for batch in (int(b) for b in args.batches.split(",")):
            x = (rng.random((batch, args.steps, n_in)) < 0.05).astype(np.float32)
            repeats = args.big_repeats if batch >= 1000 else args.repeats
            ref_s = ref_out = None
            for variant in variants:
                if VARIANTS[variant][0] == "lava" and batch > LAVA_MAX_BATCH:
                    continue
                seconds, result = timed(variant, graph, x, repeats, args.device, args.threads)
                y = result.outputs["output"]
                if variant == "reference":
                    ref_s, ref_out = seconds, y
                row = {"net": label, "batch": batch, "steps": args.steps, "variant": variant,
                       "target": VARIANTS[variant][0], "options": VARIANTS[variant][1],
                       "device": args.device if VARIANTS[variant][0] in ("torch", "norse")
                       else "cpu",
                       "seconds": seconds, "us_per_step": seconds / args.steps * 1e6,
                       "us_per_sample_step": seconds / (args.steps * batch) * 1e6,
                       "speedup_vs_reference": ref_s / seconds,
                       "spikes_identical_to_reference": bool(np.array_equal(y, ref_out)),
                       "output_agreement": float(np.mean(y == ref_out)),
                       "output_spikes": int(np.count_nonzero(y))}
                rows.append(row)
                print(f"{label:24s} b={batch:<6d} {variant:16s} {row['us_per_step']:12.1f} us/step "
                      f"{row['us_per_sample_step']:10.3f} us/sample-step  x{row['speedup_vs_reference']:8.2f}"
                      f"  identical={row['spikes_identical_to_reference']}", flush=True)
    out = {"benchmark": "targets", "machine": info, "threads": args.threads,
           "device": args.device, "input_rate": 0.05, "rows": rows}
    write_text(args.out, json.dumps(out, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
