"""Where the torch target's time goes on a GPU: one profiled run per net and dtype.

    python benchmarks/targets_profile.py --device cuda --batch 10000 \\
        [--out benchmarks/results/targets_cuda_profile.json]

The nets and inputs are benchmarks/targets.py's; inputs are torch tensors on the device and
outputs stay there (the "-dev" variants). Per run: wall time, the CUDA kernels' total time, and
the operators with the most CUDA time (torch.profiler key_averages).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402
from targets import feed_forward, recurrent  # noqa: E402

from neurocompile.ir.io import write_text  # noqa: E402
from neurocompile.targets import get_target  # noqa: E402


def profile(graph, x, dtype: str, device: str, top: int) -> dict:
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    target = get_target("torch")
    artifact = target.compile(graph, {"dtype": dtype, "device": device})
    xt = torch.as_tensor(x, device=device)
    target.run(artifact, {"input": xt})  # warm-up
    start = time.perf_counter()
    target.run(artifact, {"input": xt})
    wall = time.perf_counter() - start
    with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        target.run(artifact, {"input": xt})
    events = [e for e in prof.key_averages() if e.device_time_total > 0]
    kernels = sum(e.self_device_time_total for e in events) / 1e3
    events.sort(key=lambda e: e.self_device_time_total, reverse=True)
    return {"dtype": dtype, "wall_s": wall, "cuda_kernels_ms": kernels,
            "rows": [{"name": e.key[:60], "self_cuda_ms": e.self_device_time_total / 1e3,
                      "calls": e.count} for e in events[:top]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch", type=int, default=10000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--out", type=Path,
                        default=Path("benchmarks/results/targets_cuda_profile.json"))
    args = parser.parse_args()
    import torch

    info = machine()
    info["torch"] = torch.__version__
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    rng = np.random.default_rng(0)
    nets = {"CubaLIF 700-256-20": (feed_forward(rng), 700),
            "recurrent CubaLIF 1000": (recurrent(rng), 100)}
    runs = []
    for label, (graph, n_in) in nets.items():
        x = (rng.random((args.batch, args.steps, n_in)) < 0.05).astype(np.float32)
        for dtype in ("float64", "float32"):
            run = {"net": label, "batch": args.batch, "steps": args.steps,
                   **profile(graph, x, dtype, args.device, args.top)}
            runs.append(run)
            print(f"{label:24s} {dtype}: wall {run['wall_s'] * 1e3:.1f} ms, CUDA kernels "
                  f"{run['cuda_kernels_ms']:.1f} ms", flush=True)
            for r in run["rows"]:
                print(f"    {r['self_cuda_ms']:9.2f} ms  {r['calls']:6d}  {r['name']}")
    write_text(args.out, json.dumps({"benchmark": "targets_profile", "machine": info,
                                     "runs": runs}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
