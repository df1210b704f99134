"""The main job: train -> prune -> quantize -> compile -> simulate -> energy report.

Every stage reads what the stage before it wrote into the run directory, so any stage can be
rerun from the saved artifacts (`neurocompile pipeline --from quantize`); a rerun first removes
the outputs of the stages it reruns and of every later stage, so no stale result survives. Like
the CLI, this module sits above the layers and may import all of them.

Run directory (every file written atomically):

    config.json            the resolved configuration
    train/                 checkpoint.safetensors (+ .json), metrics.json, training.png
    model.nir              the trained float model
    pruned.nir             after dead-neuron removal (and magnitude pruning, if asked)
    prune_report.json      parameters and neurons before/after, per node
    quantized.nir          Loihi fixed point
    quantize_report.json   the integer formats chosen, per node
    artifact/              compiled for Loihi 2: graph.nir + manifest.json (resource map)
    simulate.json          accuracy per stage, Lava agreement
    energy/                report.json, report.md, energy_breakdown.png, spikes_per_layer.png
    summary.json           one page of the numbers above
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nir
import numpy as np

from neurocompile import config
from neurocompile.config import setting
from neurocompile.energy.report import DEFAULT_HARDWARE
from neurocompile.errors import InputDataError
from neurocompile.ir.io import load_graph, save_graph, write_text
from neurocompile.rundir import commit, run_lock, staging_dir
from neurocompile.train.config import TrainConfig

STAGES = ("train", "prune", "quantize", "compile", "simulate", "energy")
# What each stage writes, relative to the run directory (removed before it reruns).
STAGE_OUTPUTS = {
    "train": ("train", "model.nir"),
    "prune": ("pruned.nir", "prune_report.json"),
    "quantize": ("quantized.nir", "quantize_report.json"),
    "compile": ("artifact",),
    "simulate": ("simulate.json",),
    "energy": ("energy",),
}


def main_job_training() -> TrainConfig:
    """The main job's training: AdaBreg + spike-count loss, settings from
    benchmarks/sparse_training.py (docs/training.md)."""
    return TrainConfig(model="ff", model_kwargs={"n_hidden": 64}, dataset="digits",
                       dataset_kwargs={"steps": 20}, optimizer="adabreg", lr=1e-2, lam=0.3,
                       spike_loss=2e-4, epochs=60, patience=10, batch_size=64, seed=0)


@dataclass
class PruneStage:
    """[prune]: magnitude pruning on top of the Bregman sparsity, then dead-neuron removal."""

    sparsity: float = setting(0.0, min=0, max=1, max_open=True,
                              help="Extra magnitude pruning (0: none).")
    remove_dead: bool = setting(True, help="Remove neurons silent on the calibration data.")
    calibration_samples: int = setting(512, min=1, help="Training samples for calibration.")


@dataclass
class QuantizeStage:
    """[quantize]: Loihi fixed point."""

    bits: int = setting(8, min=2, max=8, help="Weight mantissa bits.")


@dataclass
class CompileStage:
    """[compile]: the target the artifact is compiled for."""

    target: str = setting("loihi2", help="Target (see `neurocompile targets`).")


@dataclass
class SimulateStage:
    """[simulate]: the whole test set on the reference; a subset cross-checked on a target."""

    verify_target: str = setting("lava", help="Target cross-checked against the reference.")
    verify_samples: int = setting(100, min=0, help="Test samples cross-checked (0: skip).")
    timeout_s: float = setting(600.0, min=0, min_open=True, help="Worker timeout per run.")


@dataclass
class EnergyStage:
    """[energy]: hardware descriptions to report."""

    hardware: list[str] = setting(default_factory=lambda: list(DEFAULT_HARDWARE),
                                  help="Hardware descriptions (names or .toml paths).")


@dataclass
class PipelineConfig:
    """Every setting of the main job; one TOML table per stage (neurocompile.config)."""

    out_dir: str = setting("runs/pipeline", help="Run directory.")
    train: TrainConfig = setting(default_factory=main_job_training)
    prune: PruneStage = setting(default_factory=PruneStage)
    quantize: QuantizeStage = setting(default_factory=QuantizeStage)
    compile: CompileStage = setting(default_factory=CompileStage)
    simulate: SimulateStage = setting(default_factory=SimulateStage)
    energy: EnergyStage = setting(default_factory=EnergyStage)

    @classmethod
    def from_toml(cls, path: str | Path) -> PipelineConfig:
        """Read a config file; a table replaces only the keys it names (the rest keep the main
        job's values); unknown tables or keys, wrong types and ranges name the file and key."""
        data = config.read_toml(path)
        base = cls()
        values = {}
        for table, content in data.items():
            current = getattr(base, table, None)
            if isinstance(content, dict) and dataclasses.is_dataclass(current):
                values[table] = {**config.to_mapping(current, shallow=True), **content}
            else:
                values[table] = content
        return config.from_mapping(cls, values, str(path))


def _console():
    from rich.console import Console

    return Console()


def _json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, default=_to_builtin) + "\n")


def _to_builtin(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    return str(obj)


def _nonzero_params(graph: nir.NIRGraph) -> tuple[int, int]:
    """(non-zero, total) weights and biases of the graph's synaptic nodes."""
    nz = total = 0
    for node in graph.nodes.values():
        for attr in ("weight", "bias"):
            arr = getattr(node, attr, None)
            if isinstance(arr, np.ndarray):
                nz += int(np.count_nonzero(arr))
                total += int(arr.size)
    return nz, total


def _predict(graph: nir.NIRGraph, x: np.ndarray, *, fixed_point: bool = False,
             batch: int = 256, count_active: bool = False) -> tuple[np.ndarray, Any]:
    """Class per sample (readout averaged over time) + counters. Float graphs run on the torch
    target on CUDA where torch sees a GPU (float64: the reference's spikes); otherwise, and in
    fixed point, on the reference simulator (on a CPU the torch target is no faster:
    benchmarks/results/targets.json)."""
    from neurocompile.targets import get_target

    target = get_target("reference")
    options = {"fixed_point": fixed_point, "count_active": count_active}
    if not fixed_point and not count_active and not get_target("torch").missing_requirements():
        import torch

        if torch.cuda.is_available():
            target, options = get_target("torch"), {"dtype": "float64", "device": "cuda"}
    artifact = target.compile(graph, options)
    preds, results = [], []
    for start in range(0, len(x), batch):
        result = target.run(artifact, {"input": x[start:start + batch]})
        preds.append(result.outputs["output"].mean(axis=1).argmax(axis=1))
        results.append(result)
    return np.concatenate(preds), _merge(results)


def _merge(results: list) -> Any:
    """One RunResult with outputs concatenated and counters summed over batches."""
    from neurocompile.targets.base import NodeCounters, RunResult

    first = results[0]
    def total(n: str, k: str) -> int | None:
        values = [getattr(r.counters[n], k) for r in results]
        return None if any(v is None for v in values) else sum(values)

    counters = {n: NodeCounters(**{f.name: total(n, f.name) for f in dataclasses.fields(NodeCounters)})
                for n in first.counters}
    outputs = {k: np.concatenate([r.outputs[k] for r in results]) for k in first.outputs}
    return RunResult(outputs, counters, first.steps, sum(r.batch for r in results),
                     first.target, {}, sum(r.wall_time_s for r in results))


class Pipeline:
    """Runs the stages in order, each a method that reads and writes the run directory."""

    def __init__(self, cfg: PipelineConfig, console=None):
        self.cfg = config.from_mapping(PipelineConfig, config.to_mapping(cfg, shallow=True),
                                       "pipeline config")
        self.dir = Path(cfg.out_dir)
        self.work = self.dir  # where stages write: a staging directory while run() runs
        self.console = console or _console()
        self._data = None

    # -- helpers ---------------------------------------------------------------------------
    @property
    def data(self):
        if self._data is None:
            from neurocompile.data import load_dataset

            t = self.cfg.train
            self._data = load_dataset(t.dataset, **t.dataset_kwargs)
        return self._data

    def _need(self, name: str, stage: str) -> Path:
        """An earlier stage's output: this run's, else the run directory's."""
        staged = self.work / name
        if staged.exists():
            return staged
        path = self.dir / name
        if not path.exists():
            raise InputDataError(f"{path}: missing; run the pipeline from an earlier stage "
                                 f"than {stage!r} (e.g. --from train)")
        return path

    def say(self, stage: str, message: str) -> None:
        self.console.print(f"[bold cyan]{stage:>9}[/] {message}")

    # -- stages ----------------------------------------------------------------------------
    def train(self) -> None:
        from neurocompile.train.export import to_nir
        from neurocompile.train.loop import fit

        # --quiet (the console's quiet) silences the training progress and epoch lines too
        progress = self.cfg.train.progress and not getattr(self.console, "quiet", False)
        tc = dataclasses.replace(self.cfg.train, out_dir=str(self.work / "train"),
                                 progress=progress)
        model, metrics = fit(tc, data=self.data)
        save_graph(to_nir(model), self.work / "model.nir")
        from neurocompile.train.plots import plot_training

        plot_training(metrics, self.work / "train" / "training.png")
        if metrics["test_spikes_per_sample"] == 0 or metrics["test_acc"] < 2 / self.data.n_classes:
            self.say("train", "[bold yellow]warning[/]: the trained network is silent or near "
                              "chance; train longer (epochs) or raise lr before deploying it")
        self.say("train", f"test accuracy {metrics['test_acc']:.3f}, spikes/sample "
                          f"{metrics['test_spikes_per_sample']:.1f}, non-zero weights "
                          f"{metrics['nonzero_fraction']:.1%} (best epoch {metrics['best_epoch']})")

    def prune(self) -> None:
        from neurocompile.analysis import run_pass
        from neurocompile.passes.report import count_neurons

        graph = load_graph(self._need("model.nir", "prune"))
        cfg = self.cfg.prune
        reports = []
        if cfg.sparsity > 0:
            graph, rep = run_pass("magnitude", graph, {"sparsity": cfg.sparsity})
            reports.append(rep)
        if cfg.remove_dead:
            calib = self.data.train.x[: cfg.calibration_samples]
            graph, rep = run_pass("dead", graph, calibration={"input": calib})
            reports.append(rep)
        save_graph(graph, self.work / "pruned.nir")
        _json(self.work / "prune_report.json", [r.to_dict() for r in reports])
        nz, total = _nonzero_params(graph)
        self.say("prune", f"{nz:,} of {total:,} parameters non-zero; "
                          f"{sum(count_neurons(n) for n in graph.nodes.values())} neurons")

    def quantize(self) -> None:
        from neurocompile.analysis import run_pass

        graph = load_graph(self._need("pruned.nir", "quantize"))
        qgraph, rep = run_pass("loihi", graph, {"bits": self.cfg.quantize.bits})
        save_graph(qgraph, self.work / "quantized.nir")
        _json(self.work / "quantize_report.json", rep.to_dict())
        self.say("quantize", f"Loihi fixed point, {self.cfg.quantize.bits}-bit weight mantissas")

    def compile(self) -> None:
        from neurocompile.targets import get_target
        from neurocompile.targets.artifact import write_artifact

        graph = load_graph(self._need("quantized.nir", "compile"))
        target = self.cfg.compile.target
        artifact = get_target(target).compile(graph, {"fixed_point": True})
        write_artifact(artifact, self.work / "artifact")
        res = artifact.manifest.get("resources", {})
        self.say("compile", f"{target}: {res.get('cores_used', '?')} core(s); "
                            f"artifact in {self.dir / 'artifact'}")

    def simulate(self) -> None:
        """Reference simulator on the whole test set per stage; Lava on a subset."""

        test = self.data.test
        graphs = {"float": (load_graph(self._need("model.nir", "simulate")), False),
                  "pruned": (load_graph(self._need("pruned.nir", "simulate")), False),
                  "quantized": (load_graph(self._need("quantized.nir", "simulate")), True)}
        out: dict[str, Any] = {"test_samples": len(test), "accuracy": {}, "spikes_per_sample": {}}
        preds = {}
        for stage, (graph, fixed) in graphs.items():
            pred, result = _predict(graph, test.x, fixed_point=fixed)
            preds[stage] = pred
            out["accuracy"][stage] = float(np.mean(pred == test.y))
            out["spikes_per_sample"][stage] = _neuron_spikes(graph, result) / len(test)
        sim = self.cfg.simulate
        n = min(sim.verify_samples, len(test))
        out["crosscheck"] = {"target": sim.verify_target, "samples": n}
        if n > 0:
            from neurocompile.analysis import crosscheck
            from neurocompile.targets import target_class

            known = {f.name for f in dataclasses.fields(target_class(sim.verify_target).Options)}
            x = {"input": test.x[:n]}
            runs = {"float": graphs["pruned"], "fixed": graphs["quantized"]}

            def run(mode: str) -> dict[str, Any]:
                graph, fixed = runs[mode]
                start = time.perf_counter()
                options = {"fixed_point": fixed}
                if "timeout_s" in known:
                    options["timeout_s"] = sim.timeout_s
                check = crosscheck(graph, sim.verify_target, x, options=options)
                return dict(check, wall_time_s=time.perf_counter() - start)

            # The two runs are independent (each a worker process for Lava): side by side where
            # there are cores for both; results, messages and the first error in the same order.
            with ThreadPoolExecutor(max_workers=min(len(runs), _cores())) as pool:
                futures = {mode: pool.submit(run, mode) for mode in runs}
                checks = {mode: futures[mode].result() for mode in runs}
            for mode, check in checks.items():
                fixed = runs[mode][1]
                o = check["outputs"]["output"]
                got = check["result"]
                out["crosscheck"][mode] = {
                    # fixed point: integer readouts, compared exactly; float: the readout
                    # membrane differs in the last bits where Lava sums in another order
                    "samples_identical_to_reference": o["samples_identical"],
                    "all_identical": o["all_identical"],
                    "max_abs_readout_difference": o["max_abs_difference"],
                    "class_agreement": o["class_agreement"],
                    "spike_totals_equal": check["totals"]["spikes"]["target"]
                    == check["totals"]["spikes"]["reference"],
                    "accuracy": float(np.mean(got.outputs["output"].mean(axis=1).argmax(axis=1)
                                              == test.y[:n])),
                    "wall_time_s": check["wall_time_s"],
                }
                self.say("simulate", f"{sim.verify_target} {mode}: {o['samples_identical']}/{n} "
                                     f"samples bit-identical to the reference "
                                     f"{'fixed-point' if fixed else 'float'} run, max readout "
                                     f"difference {o['max_abs_difference']:.2g}, class agreement "
                                     f"{o['class_agreement']:.0%}")
        _json(self.work / "simulate.json", out)
        acc = out["accuracy"]
        self.say("simulate", f"test accuracy float {acc['float']:.3f}, pruned {acc['pruned']:.3f}, "
                             f"quantized {acc['quantized']:.3f} ({len(test)} samples, reference)")

    def energy(self) -> None:
        from neurocompile.energy.plots import plot_report
        from neurocompile.energy.report import build_report, render_markdown, save_report
        from neurocompile.targets.artifact import read_manifest

        graph = load_graph(self._need("quantized.nir", "energy"))
        manifest = read_manifest(self._need("artifact", "energy"))
        _, result = _predict(graph, self.data.test.x, fixed_point=True, count_active=True)
        mapping = manifest.get("resources")
        report = build_report(graph, result, self.cfg.energy.hardware, mapping=mapping,
                              source=str(self.dir / "quantized.nir"))
        energy_dir = self.work / "energy"
        save_report(report, energy_dir / "report.json")
        plots = [p.name for p in plot_report(report, energy_dir)]
        write_text(energy_dir / "report.md", render_markdown(report, plots))
        from neurocompile.energy.report import render_tables

        for table in render_tables(report):
            self.console.print(table)

    # -- driver ----------------------------------------------------------------------------
    def run(self, start: str = "train", stop: str = "energy") -> dict[str, Any]:
        """Run stages start..stop as one transaction; write and return summary.json.

        Stages write into a staging directory inside the run directory; only when all of
        them succeed do their outputs replace the old ones (and the now stale outputs of later
        stages go). A failed, interrupted or killed run leaves the run directory as it was. One
        run at a time per directory (a lock); a second is refused with the holder's pid.
        """
        for name in (start, stop):
            if name not in STAGES:
                raise InputDataError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
        first, last = STAGES.index(start), STAGES.index(stop)
        if last < first:
            raise InputDataError(f"--to {stop} comes before --from {start}; stages in order: "
                                 f"{', '.join(STAGES)}")
        self.dir.mkdir(parents=True, exist_ok=True)
        with run_lock(self.dir), staging_dir(self.dir) as work:
            self.work = work
            try:
                _json(work / "config.json", dataclasses.asdict(self.cfg))
                timings = {}
                for stage in STAGES[first:last + 1]:
                    t0 = time.perf_counter()
                    getattr(self, stage)()
                    timings[stage] = round(time.perf_counter() - t0, 2)
                stale = [n for stage in STAGES[last + 1:] for n in STAGE_OUTPUTS[stage]]
                commit(work, self.dir, stale)
            finally:
                self.work = self.dir
        summary = self.summary()
        summary["stage_seconds"] = timings
        _json(self.dir / "summary.json", summary)
        return summary

    def summary(self) -> dict[str, Any]:
        """Collect the headline numbers from whatever the run directory holds."""
        s: dict[str, Any] = {"run_dir": str(self.dir)}
        for name in ("model", "pruned", "quantized"):
            path = self.dir / f"{name}.nir"
            if path.exists():
                nz, total = _nonzero_params(load_graph(path))
                s.setdefault("nonzero_parameters", {})[name] = nz
                s.setdefault("parameters", {})[name] = total
        if "nonzero_parameters" in s and "model" in s["parameters"]:
            dense = s["parameters"]["model"]
            s["nonzero_fraction_of_dense"] = {k: v / dense for k, v in
                                              s["nonzero_parameters"].items()}
        metrics = self.dir / "train" / "metrics.json"
        if metrics.exists():
            m = json.loads(metrics.read_text())
            s["train"] = {k: m[k] for k in ("test_acc", "test_spikes_per_sample",
                                            "nonzero_fraction", "best_epoch", "train_time_s")
                          if k in m}
        sim = self.dir / "simulate.json"
        if sim.exists():
            s["simulate"] = json.loads(sim.read_text())
        s["checks"] = _checks(s)
        report = self.dir / "energy" / "report.json"
        if report.exists():
            r = json.loads(report.read_text())
            s["energy_per_inference_J"] = {
                name: hw["energy"].get("energy_per_inference_j")
                for name, hw in r.get("hardware", {}).items()}
            s["per_inference"] = r["totals"]["per_inference"]
        return s


def _cores() -> int:
    """CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _neuron_spikes(graph: nir.NIRGraph, result: Any) -> int:
    """Spikes emitted by the network's neurons (input spikes not counted)."""
    return sum(c.spikes for name, c in result.counters.items()
               if not isinstance(graph.nodes[name], nir.Input))


def _checks(s: dict[str, Any]) -> dict[str, bool | None]:
    """The deployment promises, each True/False (None where the stage has not run)."""
    sim = s.get("simulate", {})
    acc = sim.get("accuracy", {})
    fixed = sim.get("crosscheck", {}).get("fixed")
    nz = s.get("nonzero_fraction_of_dense", {})
    return {
        "crosscheck_fixed_point_identical_to_reference": fixed["all_identical"] if fixed else None,
        "accuracy_within_2_points_after_prune_and_quantize":
            (acc["float"] - acc["quantized"] <= 0.02) if "quantized" in acc else None,
        "nonzero_parameters_at_most_half_of_dense":
            (nz["quantized"] <= 0.5) if "quantized" in nz else None,
    }
