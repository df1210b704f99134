"""The Python API: load, prune, quantize, compile, simulate, energy, train (docs/api.md).

Each function imports what it needs when called, so importing this module (and the package)
stays light: numpy only, torch only inside `train`. The package exposes them all as
`neurocompile.<name>`; `neurocompile.energy` and `neurocompile.train` are also subpackages,
callable as these functions (neurocompile/callable_module.py).

>>> import neurocompile as nc
>>> from neurocompile.demo import demo_graph, demo_input
>>> graph = demo_graph()
>>> x = {"input": demo_input(batch=2, steps=20)}
>>> pruned, report = nc.prune(graph, sparsity=0.5)
>>> quantized, _ = nc.quantize(pruned, scheme="loihi")
>>> result = nc.simulate(nc.compile(quantized, target="reference"), x)
>>> result.outputs["output"].shape
(2, 20, 10)
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers only: nothing heavy is imported at run time
    import nir
    import numpy as np

    from neurocompile.passes.report import PassReport
    from neurocompile.targets.base import Artifact, RunResult

Inputs = "dict[str, np.ndarray] | np.ndarray"


def load(path: str | os.PathLike) -> nir.NIRGraph:
    """Read a NIR graph (.nir / HDF5), checked as the CLI checks it.

    >>> import tempfile, pathlib, neurocompile as nc
    >>> from neurocompile.demo import demo_graph
    >>> path = nc.save(demo_graph(), pathlib.Path(tempfile.mkdtemp()) / "demo.nir")
    >>> sorted(nc.load(path).nodes)
    ['fc1', 'fc2', 'input', 'lif1', 'lif2', 'output', 'rec1']
    """
    from neurocompile.ir.io import load_graph

    return load_graph(path)


def save(graph: nir.NIRGraph, path: str | os.PathLike) -> os.PathLike:
    """Write a NIR graph atomically; returns the path written."""
    from neurocompile.ir.io import save_graph

    return save_graph(graph, path)


def prune(graph: nir.NIRGraph, method: str = "magnitude", *,
          calibration: dict[str, np.ndarray] | None = None, steps: int | None = None,
          **options: Any) -> tuple[nir.NIRGraph, PassReport]:
    """Run a pruning pass (`neurocompile prune --help` lists methods and their options);
    returns the new graph and the per-node report. The input graph is left unchanged.

    >>> import neurocompile as nc
    >>> from neurocompile.demo import demo_graph
    >>> pruned, report = nc.prune(demo_graph(), sparsity=0.5)
    >>> import numpy as np
    >>> w = demo_graph().nodes["fc1"].weight
    >>> int(np.count_nonzero(pruned.nodes["fc1"].weight)), w.size // 2
    (1024, 1024)
    >>> report.to_dict()["totals"]["params_after"] < report.to_dict()["totals"]["params_before"]
    True
    """
    from neurocompile.analysis import run_pass

    return run_pass(method, graph, options, calibration=calibration, steps=steps, kind="prune")


def quantize(graph: nir.NIRGraph, scheme: str = "loihi", *,
             calibration: dict[str, np.ndarray] | None = None, steps: int | None = None,
             **options: Any) -> tuple[nir.NIRGraph, PassReport]:
    """Quantize a graph (schemes: `neurocompile quantize --help`); returns the new graph and
    the per-node report.

    >>> import numpy as np, neurocompile as nc
    >>> from neurocompile.demo import demo_graph
    >>> q, _ = nc.quantize(demo_graph(), scheme="int8")
    >>> w = q.nodes["fc1"].weight
    >>> bool(np.all(w == np.round(w))) or len(np.unique(w)) <= 255
    True
    """
    from neurocompile.analysis import run_pass

    return run_pass(scheme, graph, options, calibration=calibration, steps=steps,
                    kind="quantize")


def compile(graph: nir.NIRGraph, target: str = "reference", **options: Any) -> Artifact:
    """Check and lower `graph` for a target (`neurocompile targets` lists them); the artifact
    runs with `simulate`. Options are the target's (e.g. fixed_point, chips, sparse).

    >>> import neurocompile as nc
    >>> from neurocompile.demo import demo_graph
    >>> art = nc.compile(demo_graph(), target="loihi2")
    >>> art.target, art.manifest["resources"]["cores_used"] >= 1
    ('loihi2', True)
    """
    from neurocompile.targets import get_target

    return get_target(target).compile(graph, options)


def simulate(model: nir.NIRGraph | Artifact, inputs: Inputs, steps: int | None = None, *,
             target: str = "reference", **options: Any) -> RunResult:
    """Run a graph (compiled for `target` first) or an artifact (on the target it was compiled
    for) on `inputs`: {Input name: (batch, steps, *shape)} or one array for a single input.

    >>> import numpy as np, neurocompile as nc
    >>> from neurocompile.demo import demo_graph, demo_input
    >>> x = demo_input(batch=2, steps=20)
    >>> a = nc.simulate(demo_graph(), x)
    >>> b = nc.simulate(nc.compile(demo_graph(), target="torch"), x)
    >>> bool(np.array_equal(a.outputs["output"], b.outputs["output"]))
    True
    >>> int(a.outputs["output"].sum()) > 0
    True
    """
    from neurocompile.targets import get_target
    from neurocompile.targets.base import Artifact

    if isinstance(model, Artifact):
        if options:
            raise TypeError("options apply when compiling; pass them to compile()")
        backend = get_target(model.target)
        return backend.run(model, inputs, steps)
    backend = get_target(target)
    return backend.run(backend.compile(model, options), inputs, steps)


def energy(graph: nir.NIRGraph, inputs: Inputs, steps: int | None = None, *,
           hardware: tuple[str, ...] | list[str] | None = None) -> dict[str, Any]:
    """Energy, latency and resources per inference on each hardware description, from the
    counts of a reference run (as `neurocompile energy`; a Loihi-quantized graph is counted
    in its integer arithmetic).

    >>> import neurocompile as nc
    >>> from neurocompile.demo import demo_graph, demo_input
    >>> report = nc.energy(demo_graph(), demo_input(batch=2, steps=20), hardware=["loihi2"])
    >>> list(report["hardware"])
    ['loihi2']
    >>> report["hardware"]["loihi2"]["energy"]["energy_per_inference_j"] > 0
    True
    """
    from neurocompile.energy import build_report
    from neurocompile.energy.report import DEFAULT_HARDWARE
    from neurocompile.ir.graph import quantization_scheme
    from neurocompile.targets.reference import simulate as reference

    fixed = quantization_scheme(graph) == "loihi"
    result = reference(graph, inputs, steps, fixed_point=fixed, count_active=True)
    return build_report(graph, result, list(hardware or DEFAULT_HARDWARE))


def train(out_dir: str | os.PathLike | None = None, **options: Any
          ) -> tuple[nir.NIRGraph, dict[str, Any]]:
    """Train a zoo model (options: the fields of neurocompile.train.config.TrainConfig, as
    `neurocompile train --help` shows them); returns the trained network as a NIR graph and
    the metrics. Needs the torch and data extras.

    >>> import tempfile, numpy as np, neurocompile as nc
    >>> graph, metrics = nc.train(tempfile.mkdtemp(), epochs=1, progress=False,
    ...                           model_kwargs={"n_hidden": 16})
    >>> len(metrics["epochs"]), 0.0 <= metrics["test_acc"] <= 1.0
    (1, True)
    >>> nc.simulate(graph, np.zeros((1, 5, 64))).outputs["output"].shape
    (1, 5, 10)
    """
    from neurocompile import config as settings
    from neurocompile.train.checkpoint import load_model
    from neurocompile.train.config import TrainConfig
    from neurocompile.train.export import to_nir
    from neurocompile.train.loop import CHECKPOINT_NAME
    from neurocompile.train.loop import train as run

    if out_dir is not None:
        options["out_dir"] = str(out_dir)
    cfg = settings.from_mapping(TrainConfig, options, "train options")
    metrics = run(cfg)
    if cfg.out_dir is None:
        raise TypeError("train() needs out_dir: the checkpoint of the best epoch is read back")
    model, _ = load_model(os.path.join(cfg.out_dir, CHECKPOINT_NAME))
    return to_nir(model), metrics


__all__ = ["compile", "energy", "load", "prune", "quantize", "save", "simulate", "train"]
