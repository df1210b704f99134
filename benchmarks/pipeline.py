"""The main job (`neurocompile pipeline`, default configuration) end to end: its headline
numbers and wall time, for the figures quoted in README.md and docs (scripts/figures.py).

    NEUROCOMPILE_LAVA_PYTHON=.venv-lava/bin/python .venv/bin/python benchmarks/pipeline.py \
        [--out benchmarks/results/pipeline.json] [--run-dir runs/pipeline-bench]

Runs the pipeline in a process of its own (as `make run` does), times it, and stores the run's
summary.json with the wall time, the per-stage seconds and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from neurocompile.ir.io import write_text  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/pipeline.json")
    parser.add_argument("--run-dir", default="runs/pipeline-bench")
    args = parser.parse_args()
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "neurocompile.cli.main", "pipeline", "-q",
                           "--out", args.run_dir], stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"pipeline failed with status {proc.returncode}")
    summary = json.loads((Path(args.run_dir) / "summary.json").read_text())
    sim = summary["simulate"]
    result = {
        "benchmark": "pipeline",
        "command": "neurocompile pipeline (default configuration)",
        "machine": machine(),
        "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")},
        "wall_s": round(wall, 1),
        "stage_seconds": summary["stage_seconds"],
        "accuracy": sim["accuracy"],
        "test_samples": sim["test_samples"],
        "crosscheck": sim["crosscheck"],
        "train": summary.get("train", {}),
        "nonzero_parameters": summary["nonzero_parameters"],
        "parameters": summary["parameters"],
        "nonzero_fraction_of_dense": summary["nonzero_fraction_of_dense"],
        "checks": summary["checks"],
        "energy_per_inference_J": summary.get("energy_per_inference_J", {}),
    }
    write_text(args.out, json.dumps(result, indent=2) + "\n")
    acc = result["accuracy"]
    print(f"pipeline: {wall:.1f} s; accuracy float {acc['float']:.3f}, pruned "
          f"{acc['pruned']:.3f}, quantized {acc['quantized']:.3f}; non-zero "
          f"{result['nonzero_parameters']['pruned']} of {result['parameters']['pruned']}; "
          f"stages {result['stage_seconds']}; wrote {args.out}")


if __name__ == "__main__":
    main()
