"""The Lava target: compile (lower, map onto Loihi 2 cores) here, run in the Lava environment.

Lava 0.10 supports Python 3.10 only, so runs happen in a worker process of that environment
(`neurocompile.targets.worker`): the graph (NIR), the inputs (.npz) and a small JSON request
cross the boundary; outputs (.npz) and counters (.json) come back. The interpreter comes only
from NEUROCOMPILE_LAVA_PYTHON, the package's own `.venv-lava` (beside the source tree it was
installed from) or the environment `neurocompile lava setup` creates (`user_environment()`) —
never from an artifact, an option or the current directory.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nir
import numpy as np

from neurocompile import config, progress
from neurocompile.errors import UnsupportedError
from neurocompile.targets import worker
from neurocompile.targets.base import Artifact, NodeCounters, RunResult, Target, TargetOptions
from neurocompile.targets.inputs import as_dict
from neurocompile.targets.lava.lowering import lower

NAME = "lava"
LAVA_PYTHON_ENV = "NEUROCOMPILE_LAVA_PYTHON"
RUNTIME_MODULE = "neurocompile.targets.lava.runtime"


class LavaWorkerError(worker.WorkerError):
    """The Lava worker process timed out, crashed or reported an error."""


@dataclass(frozen=True)
class LavaOptions(TargetOptions):
    """Options of the Lava (and Loihi 2) target."""

    sparse: str = config.setting("auto", choices=("auto", "dense", "sparse"),
                                 help="Lava connection process: Sparse below 25% density (auto).")
    probe: tuple[str, ...] = config.setting((), help="Neuron nodes whose u and v are recorded.")
    timeout_s: float | None = config.setting(None, min=0, min_open=True,
                                             help="Worker timeout (default: 120 s + 20 ms per "
                                                  "sample-step).")
    in_process: bool = config.setting(False, help="Run Lava in this interpreter (needs lava-nc).")
    keep_worker_dir: bool = config.setting(False, help="Keep the worker's request directory.")
    hardware: str = config.setting("loihi2", help="Hardware description for the core mapping.")
    chips: int = config.setting(1, min=1, help="Chips available to the core mapping.")
    weight_bits: int | None = config.setting(None, min=1, max=8,
                                             help="Precision of float weights in the mapping.")


def package_environment() -> Path | None:
    """The `.venv-lava` interpreter beside the source tree this package runs from, if any."""
    root = worker._package_dir().parent
    cand = root / ".venv-lava" / "bin" / "python"
    return cand if (root / "pyproject.toml").is_file() and cand.is_file() else None


def user_environment() -> Path:
    """Where `neurocompile lava setup` creates the Lava environment by default:
    $XDG_DATA_HOME/neurocompile/venv-lava (~/.local/share/neurocompile/venv-lava)."""
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "neurocompile" / "venv-lava"


SETUP_HINT = ("run `neurocompile lava setup` (or `make lava-venv` in a source checkout), or "
              f"set {LAVA_PYTHON_ENV} to a Python 3.10 interpreter with lava-nc")


def find_lava_python() -> str:
    """The Lava interpreter: $NEUROCOMPILE_LAVA_PYTHON, else the package's own .venv-lava, else
    the environment `neurocompile lava setup` created."""
    env = os.environ.get(LAVA_PYTHON_ENV)
    if env:
        if not Path(env).is_file():
            raise UnsupportedError(f"{LAVA_PYTHON_ENV}={env}: no such interpreter")
        return env
    own = package_environment()
    if own is not None:
        return str(own)
    user = user_environment() / "bin" / "python"
    if user.is_file():
        return str(user)
    raise UnsupportedError(f"no Lava environment: {SETUP_HINT}")


def lava_importable() -> bool:
    """Whether lava-nc can be imported in this interpreter (then runs may stay in process)."""
    import importlib.util

    return importlib.util.find_spec("lava") is not None


def _default_timeout(batch: int, steps: int) -> float:
    return 120.0 + 0.02 * batch * steps


class LavaTarget(Target):
    """Lava CPU simulation of Loihi 2 (floating_pt or bit-accurate fixed_pt process models)."""

    name = NAME
    description = ("Lava (lava-nc) CPU simulation of Loihi 2 in a Python 3.10 worker; "
                   "float or bit-accurate fixed point")
    Options = LavaOptions
    hardware = "loihi2"
    enforce_limits = False

    def __init__(self) -> None:
        self.last_run_info: dict[str, Any] = {}

    @classmethod
    def missing_requirements(cls) -> list[str]:
        """Empty when lava-nc imports here or a Lava interpreter is configured (not started:
        `neurocompile doctor` runs it)."""
        if lava_importable():
            return []
        try:
            find_lava_python()
        except UnsupportedError as exc:
            return [f"a Lava environment ({exc})"]
        return []

    def compile(self, graph: nir.NIRGraph, options=None) -> Artifact:
        """Lower (to check the graph runs on Lava) and map onto Loihi 2 cores."""
        from neurocompile.targets.loihi2.mapping import map_resources

        opts = self.options(options)
        plan = lower(graph, dt=opts.dt, fixed_point=opts.fixed_point)
        resources = map_resources(plan, opts.hardware, chips=opts.chips,
                                  weight_bits=opts.weight_bits, enforce=self.enforce_limits)
        manifest = {"dt": plan.dt, "lowering": plan.summary(), "resources": resources}
        return Artifact(self.name, graph, opts, manifest)

    def run(self, artifact: Artifact, inputs, steps: int | None = None) -> RunResult:
        """Run the artifact on Lava: in a worker (default) or in process (option in_process)."""
        opts = self.options(artifact.options)
        plan = lower(artifact.graph, dt=opts.dt, fixed_point=opts.fixed_point)
        data = {k: np.asarray(v) for k, v in as_dict(artifact.graph, inputs).items()}
        request = {"steps": steps, "dt": plan.dt, "fixed_point": opts.fixed_point,
                   "sparse": opts.sparse, "probe": list(opts.probe)}
        batch = max(int(np.shape(v)[0]) for v in data.values())
        label = f"Lava {'fixed point' if opts.fixed_point else 'float'}"
        if opts.in_process:
            from neurocompile.targets.lava.runtime import run_plan

            start = time.perf_counter()
            with progress.bar(batch, label) as bar:
                result, timing = run_plan(plan, data, steps, sparse=opts.sparse,
                                          probe=opts.probe, on_sample=bar.update)
            self.last_run_info = dict(timing, pid=os.getpid(),
                                      total_s=time.perf_counter() - start, in_process=True)
            result.target = self.name
            return result
        python = find_lava_python()
        length = max(int(np.shape(v)[1]) for v in data.values()) if steps is None else int(steps)
        timeout = float(opts.timeout_s or _default_timeout(batch, length))
        from neurocompile.ir.io import save_graph

        with worker.request_dir("neurocompile-lava-", keep=opts.keep_worker_dir) as tmp:
            save_graph(artifact.graph, tmp / "graph.nir")
            with open(tmp / "inputs.npz", "wb") as f:
                np.savez(f, **data)
            (tmp / "request.json").write_text(json.dumps(request))
            with progress.bar(batch, label) as bar:
                info = worker.run_worker(RUNTIME_MODULE, tmp, python, timeout,
                                         label="Lava worker", error_class=LavaWorkerError,
                                         poll=lambda: bar.update(read_progress(tmp)))
                bar.update(read_progress(tmp))
            result = read_result(tmp)
            order = list(artifact.graph.nodes)
            result.counters = {n: result.counters[n] for n in order if n in result.counters}
            timing = json.loads((tmp / "result.json").read_text()).get("timing", {})
            meta = json.loads((tmp / "result.json").read_text())
            self.last_run_info = dict(timing, pid=info["pid"], total_s=info["wall_s"],
                                      in_process=False, python=python,
                                      python_version=meta.get("python"),
                                      lava_nc=meta.get("lava_nc"))
            result.target = self.name
            return result


PROGRESS_FILE = "progress"  # samples done so far, written by the worker after each one


def write_progress(directory: Path, done: int) -> None:
    """Worker side: record `done` samples finished (atomically: the parent polls the file)."""
    tmp = directory / f"{PROGRESS_FILE}.tmp"
    tmp.write_text(str(done))
    os.replace(tmp, directory / PROGRESS_FILE)


def read_progress(directory: Path) -> int:
    """Parent side: samples the worker has finished (0 before the first)."""
    try:
        return int((directory / PROGRESS_FILE).read_text())
    except (OSError, ValueError):
        return 0


def read_result(directory: Path) -> RunResult:
    """Rebuild a RunResult from the worker's outputs.npz and result.json."""
    meta = json.loads((directory / "result.json").read_text())
    outputs, probes = {}, {}
    with np.load(directory / "outputs.npz", allow_pickle=False) as data:
        for key in data.files:
            kind, _, name = key.partition(":")
            (outputs if kind == "output" else probes)[name] = np.asarray(data[key])
    counters = {n: NodeCounters(**c) for n, c in meta["counters"].items()}
    return RunResult(outputs, counters, int(meta["steps"]), int(meta["batch"]), meta["target"],
                     probes, float(meta["wall_time_s"]))


def _lava_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lava-nc")
    except PackageNotFoundError:
        return None


def write_result(result: RunResult, directory: Path, timing: dict[str, float]) -> None:
    """Worker side: outputs.npz (output:<name>, probe:<name>) and result.json, atomically."""
    from neurocompile.ir.io import atomic_path, write_text

    arrays = {f"output:{k}": v for k, v in result.outputs.items()}
    arrays.update({f"probe:{k}": v for k, v in result.probes.items()})
    with atomic_path(directory / "outputs.npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    meta = {"target": result.target, "steps": result.steps, "batch": result.batch,
            "wall_time_s": result.wall_time_s, "counters": result.counters_dict(),
            "timing": timing, "python": sys.version.split()[0], "lava_nc": _lava_version()}
    write_text(directory / "result.json", json.dumps(meta, indent=1))
