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
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nir
import numpy as np

from neurocompile.errors import InputDataError
from neurocompile.ir.io import load_graph, save_graph, write_text

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


@dataclass
class PipelineConfig:
    """Every setting of the main job; TOML tables [train], [prune], ... map onto the prefixes."""

    out_dir: str = "runs/pipeline"
    seed: int = 0
    # [train]
    model: str = "ff"
    hidden: int = 64
    dataset: str = "digits"
    steps: int = 20
    optimizer: str = "adabreg"
    lam: float = 0.3  # settings from benchmarks/sparse_training.py (docs/training.md)
    lr: float | None = 1e-2
    density: float | None = None  # None: the optimizer's default sparse initialisation
    spike_loss: float = 2e-4
    epochs: int = 60
    patience: int | None = 10
    batch_size: int = 64
    # [prune]
    prune_sparsity: float = 0.0  # extra magnitude pruning on top of the Bregman sparsity
    remove_dead: bool = True
    calibration_samples: int = 512
    # [quantize]
    weight_bits: int = 8
    # [compile]
    target: str = "loihi2"
    # [simulate]
    lava_samples: int = 100  # test samples also run on Lava (float and fixed point)
    lava_timeout_s: float = 600.0
    # [energy]
    hardware: list[str] = field(default_factory=lambda: ["loihi", "loihi2", "truenorth",
                                                         "spinnaker2", "cmos45"])

    @classmethod
    def from_toml(cls, path: str | Path) -> PipelineConfig:
        """Read a config file; unknown tables or keys are errors naming the file and key."""
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib
        path = Path(path)
        if not path.exists():
            raise InputDataError(f"{path}: no such config file")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise InputDataError(f"{path}: not valid TOML ({exc})") from exc
        known = {f.name for f in dataclasses.fields(cls)}
        prefixes = {"prune": "prune_", "quantize": "", "compile": "", "simulate": "",
                    "energy": "", "train": "", "run": ""}
        values: dict[str, Any] = {}
        for table, content in data.items():
            if not isinstance(content, dict):
                content, table = {table: content}, "run"
            if table not in prefixes:
                raise InputDataError(f"{path}: unknown table [{table}]; known: "
                                     f"{', '.join(prefixes)}")
            for key, value in content.items():
                name = key if key in known else prefixes[table] + key
                if name not in known:
                    raise InputDataError(f"{path}: unknown key {key!r} in [{table}]")
                _check_type(path, table, key, value, _FIELD_TYPES[name])
                values[name] = value
        return cls(**values)

    def check(self) -> PipelineConfig:
        """Reject out-of-range settings before any stage runs (names the key and value)."""
        bad = []
        if not 0 <= self.prune_sparsity < 1:
            bad.append(f"prune.sparsity must be in [0, 1), got {self.prune_sparsity}")
        for key in ("hidden", "steps", "epochs", "batch_size", "calibration_samples"):
            if getattr(self, key) < 1:
                bad.append(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.lava_samples < 0:
            bad.append(f"simulate.lava_samples must be >= 0, got {self.lava_samples}")
        if not 2 <= self.weight_bits <= 8:
            bad.append(f"quantize.weight_bits must be in [2, 8] (Loihi), got {self.weight_bits}")
        if self.lam < 0 or self.spike_loss < 0:
            bad.append(f"lam and spike_loss must be >= 0, got {self.lam}, {self.spike_loss}")
        if bad:
            raise InputDataError("config: " + "; ".join(bad))
        return self


_FIELD_TYPES = {f.name: str(f.type) for f in dataclasses.fields(PipelineConfig)}


def _check_type(path: Path, table: str, key: str, value: Any, annotation: str) -> None:
    """One TOML value against its field's annotation; the error names file, table and key."""
    if value is None and "None" in annotation:
        return
    if annotation.startswith("list"):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    elif annotation.startswith("bool"):
        ok = isinstance(value, bool)
    elif annotation.startswith("int"):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif annotation.startswith("float"):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise InputDataError(f"{path}: [{table}] {key} = {value!r} should be {annotation}")


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
             batch: int = 256) -> tuple[np.ndarray, Any]:
    """Class per sample from the reference simulator (readout averaged over time) + counters."""
    from neurocompile.targets.reference import Simulator, build_program

    sim = Simulator(build_program(graph, fixed_point=fixed_point))
    preds, results = [], []
    for start in range(0, len(x), batch):
        result = sim.run({"input": x[start:start + batch]})
        preds.append(result.outputs["output"].mean(axis=1).argmax(axis=1))
        results.append(result)
    return np.concatenate(preds), _merge(results)


def _merge(results: list) -> Any:
    """One RunResult with outputs concatenated and counters summed over batches."""
    from neurocompile.targets.base import NodeCounters, RunResult

    first = results[0]
    counters = {n: NodeCounters(*(sum(getattr(r.counters[n], k) for r in results)
                                  for k in ("spikes", "synaptic_events", "neuron_updates")))
                for n in first.counters}
    outputs = {k: np.concatenate([r.outputs[k] for r in results]) for k in first.outputs}
    return RunResult(outputs, counters, first.steps, sum(r.batch for r in results),
                     first.target, {}, sum(r.wall_time_s for r in results))


class Pipeline:
    """Runs the stages in order, each a method that reads and writes the run directory."""

    def __init__(self, config: PipelineConfig, console=None):
        self.cfg = config.check()
        self.dir = Path(config.out_dir)
        self.console = console or _console()
        self._data = None

    # -- helpers ---------------------------------------------------------------------------
    @property
    def data(self):
        if self._data is None:
            from neurocompile.data import load_dataset

            kwargs = {"steps": self.cfg.steps} if self.cfg.dataset == "digits" else {}
            self._data = load_dataset(self.cfg.dataset, **kwargs)
        return self._data

    def _need(self, name: str, stage: str) -> Path:
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
        from neurocompile.train.loop import TrainConfig, fit

        cfg = self.cfg
        tc = TrainConfig(model=cfg.model, model_kwargs={"n_hidden": cfg.hidden},
                         dataset=cfg.dataset, dataset_kwargs={"steps": cfg.steps}
                         if cfg.dataset == "digits" else {},
                         optimizer=cfg.optimizer, lr=cfg.lr, lam=cfg.lam, density=cfg.density,
                         spike_loss=cfg.spike_loss, epochs=cfg.epochs, patience=cfg.patience,
                         batch_size=cfg.batch_size, seed=cfg.seed,
                         out_dir=str(self.dir / "train"))
        model, metrics = fit(tc, data=self.data)
        save_graph(to_nir(model), self.dir / "model.nir")
        from neurocompile.train.plots import plot_training

        plot_training(metrics, self.dir / "train" / "training.png")
        if metrics["test_spikes_per_sample"] == 0 or metrics["test_acc"] < 2 / self.data.n_classes:
            self.say("train", "[bold yellow]warning[/]: the trained network is silent or near "
                              "chance; train longer (epochs) or raise lr before deploying it")
        self.say("train", f"test accuracy {metrics['test_acc']:.3f}, spikes/sample "
                          f"{metrics['test_spikes_per_sample']:.1f}, non-zero weights "
                          f"{metrics['nonzero_fraction']:.1%} (best epoch {metrics['best_epoch']})")

    def prune(self) -> None:
        from neurocompile.passes.prune import magnitude_prune, remove_dead_neurons
        from neurocompile.passes.report import count_neurons
        from neurocompile.targets.reference import record_activity

        graph = load_graph(self._need("model.nir", "prune"))
        reports = []
        if self.cfg.prune_sparsity > 0:
            graph, rep = magnitude_prune(graph, self.cfg.prune_sparsity)
            reports.append(rep)
        if self.cfg.remove_dead:
            calib = self.data.train.x[: self.cfg.calibration_samples]
            graph, rep = remove_dead_neurons(graph, record_activity(graph, {"input": calib}))
            reports.append(rep)
        save_graph(graph, self.dir / "pruned.nir")
        _json(self.dir / "prune_report.json", [r.to_dict() for r in reports])
        nz, total = _nonzero_params(graph)
        self.say("prune", f"{nz:,} of {total:,} parameters non-zero; "
                          f"{sum(count_neurons(n) for n in graph.nodes.values())} neurons")

    def quantize(self) -> None:
        from neurocompile.passes.quantize import quantize_loihi

        graph = load_graph(self._need("pruned.nir", "quantize"))
        qgraph, rep = quantize_loihi(graph, bits=self.cfg.weight_bits)
        save_graph(qgraph, self.dir / "quantized.nir")
        _json(self.dir / "quantize_report.json", rep.to_dict())
        self.say("quantize", f"Loihi fixed point, {self.cfg.weight_bits}-bit weight mantissas")

    def compile(self) -> None:
        from neurocompile.targets import get_target
        from neurocompile.targets.artifact import write_artifact

        graph = load_graph(self._need("quantized.nir", "compile"))
        artifact = get_target(self.cfg.target).compile(graph, {"fixed_point": True})
        write_artifact(artifact, self.dir / "artifact")
        res = artifact.manifest.get("resources", {})
        self.say("compile", f"{self.cfg.target}: {res.get('cores_used', '?')} core(s); "
                            f"artifact in {self.dir / 'artifact'}")

    def simulate(self) -> None:
        """Reference simulator on the whole test set per stage; Lava on a subset."""
        from neurocompile.targets import get_target

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
        n = min(self.cfg.lava_samples, len(test))
        out["lava"] = {"samples": n}
        if n > 0:
            lava = get_target("lava")
            x = test.x[:n]
            for mode, (graph, fixed) in (("float", graphs["pruned"]), ("fixed", graphs["quantized"])):
                start = time.perf_counter()
                artifact = lava.compile(graph, {"fixed_point": fixed,
                                                "timeout_s": self.cfg.lava_timeout_s})
                got = lava.run(artifact, {"input": x})
                ref = get_target("reference").run(
                    get_target("reference").compile(graph, {"fixed_point": fixed}), {"input": x})
                same = [bool(np.array_equal(got.outputs["output"][i], ref.outputs["output"][i]))
                        for i in range(n)]
                lava_pred = got.outputs["output"].mean(axis=1).argmax(axis=1)
                ref_pred = ref.outputs["output"].mean(axis=1).argmax(axis=1)
                diff = float(np.max(np.abs(got.outputs["output"] - ref.outputs["output"])))
                out["lava"][mode] = {
                    # fixed point: integer readouts, compared exactly; float: the readout
                    # membrane differs in the last bits where Lava sums in another order
                    "samples_identical_to_reference": int(sum(same)),
                    "all_identical": all(same),
                    "max_abs_readout_difference": diff,
                    "class_agreement": float(np.mean(lava_pred == ref_pred)),
                    "spike_totals_equal": got.total("spikes") == ref.total("spikes"),
                    "accuracy": float(np.mean(lava_pred == test.y[:n])),
                    "wall_time_s": time.perf_counter() - start,
                }
                self.say("simulate", f"Lava {mode}: {sum(same)}/{n} samples bit-identical to "
                                     f"the reference {'fixed-point' if fixed else 'float'} run, "
                                     f"max readout difference {diff:.2g}, class agreement "
                                     f"{np.mean(lava_pred == ref_pred):.0%}")
        _json(self.dir / "simulate.json", out)
        acc = out["accuracy"]
        self.say("simulate", f"test accuracy float {acc['float']:.3f}, pruned {acc['pruned']:.3f}, "
                             f"quantized {acc['quantized']:.3f} ({len(test)} samples, reference)")

    def energy(self) -> None:
        from neurocompile.energy.plots import plot_report
        from neurocompile.energy.report import build_report, render_markdown, save_report
        from neurocompile.targets.artifact import read_manifest

        graph = load_graph(self._need("quantized.nir", "energy"))
        manifest = read_manifest(self._need("artifact", "energy"))
        _, result = _predict(graph, self.data.test.x, fixed_point=True)
        mapping = manifest.get("resources")
        report = build_report(graph, result, self.cfg.hardware, mapping=mapping,
                              source=str(self.dir / "quantized.nir"))
        energy_dir = self.dir / "energy"
        save_report(report, energy_dir / "report.json")
        plots = [p.name for p in plot_report(report, energy_dir)]
        write_text(energy_dir / "report.md", render_markdown(report, plots))
        from neurocompile.energy.report import render_tables

        for table in render_tables(report):
            self.console.print(table)

    # -- driver ----------------------------------------------------------------------------
    def run(self, start: str = "train", stop: str = "energy") -> dict[str, Any]:
        """Run stages start..stop; write and return summary.json."""
        for name in (start, stop):
            if name not in STAGES:
                raise InputDataError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
        first, last = STAGES.index(start), STAGES.index(stop)
        self.dir.mkdir(parents=True, exist_ok=True)
        for stage in STAGES[first:]:
            for name in STAGE_OUTPUTS[stage]:
                path = self.dir / name
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
        _json(self.dir / "config.json", dataclasses.asdict(self.cfg))
        timings = {}
        for stage in STAGES[first:last + 1]:
            t0 = time.perf_counter()
            getattr(self, stage)()
            timings[stage] = round(time.perf_counter() - t0, 2)
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


def _neuron_spikes(graph: nir.NIRGraph, result: Any) -> int:
    """Spikes emitted by the network's neurons (input spikes not counted)."""
    return sum(c.spikes for name, c in result.counters.items()
               if not isinstance(graph.nodes[name], nir.Input))


def _checks(s: dict[str, Any]) -> dict[str, bool | None]:
    """The deployment promises, each True/False (None where the stage has not run)."""
    sim = s.get("simulate", {})
    acc = sim.get("accuracy", {})
    fixed = sim.get("lava", {}).get("fixed")
    nz = s.get("nonzero_fraction_of_dense", {})
    return {
        "lava_fixed_point_identical_to_reference": fixed["all_identical"] if fixed else None,
        "accuracy_within_2_points_after_prune_and_quantize":
            (acc["float"] - acc["quantized"] <= 0.02) if "quantized" in acc else None,
        "nonzero_parameters_at_most_half_of_dense":
            (nz["quantized"] <= 0.5) if "quantized" in nz else None,
    }
