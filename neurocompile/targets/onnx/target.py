"""The ONNX target: the graph exported as an ONNX model of the contract (export.py) and run
by onnxruntime on the CPU. Float32 by default, float64 where onnxruntime has the kernels."""

from __future__ import annotations

import time
from dataclasses import dataclass

import nir
import numpy as np

from neurocompile import config
from neurocompile.errors import UnsupportedError
from neurocompile.targets import counting
from neurocompile.targets.base import Artifact, RunResult, Target, TargetOptions
from neurocompile.targets.inputs import time_major
from neurocompile.targets.reference.simulator import (
    Program,
    build_program,
    require_plain_neurons,
)

NAME = "onnx"
CONV_TYPES = (nir.Conv1d, nir.Conv2d, nir.SumPool2d, nir.AvgPool2d)


@dataclass(frozen=True)
class OnnxOptions(TargetOptions):
    """Options of the ONNX target."""

    dtype: str = config.setting("float32", choices=("float32", "float64"),
                                help="Tensor type of the model.")
    form: str = config.setting("sequence", choices=("sequence", "step"),
                               help="One model over all steps (Scan), or the step function "
                                    "called once per step with explicit state.")
    threads: int | None = config.setting(None, min=1, help="onnxruntime intra-op threads.")
    counters: bool = config.setting(True, help="Record every node's values (model outputs) "
                                               "and count activity from them.")


def build(graph: nir.NIRGraph, opts: OnnxOptions, record: bool | None = None):
    """(reference Program, checked ONNX model) of a graph under these options."""
    import onnx

    from neurocompile.targets.onnx.export import build_model

    if opts.fixed_point:
        raise UnsupportedError("target 'onnx' exports the float model; fixed point (Loihi "
                               "integer arithmetic) is the reference or Lava target's")
    prog = require_plain_neurons(build_program(graph, opts.dt, opts.dtype), "onnx")
    model = build_model(prog, opts.dtype, opts.form, opts.counters if record is None else record)
    onnx.checker.check_model(model, full_check=True)
    return prog, model


def check_runnable(graph: nir.NIRGraph, opts: OnnxOptions) -> None:
    """Refuse, naming the node, what onnxruntime's CPU provider has no kernel for."""
    if opts.dtype == "float64":
        for name, node in graph.nodes.items():
            if isinstance(node, CONV_TYPES):
                raise UnsupportedError(
                    f"node {name!r}: onnxruntime's CPU provider has no float64 Conv (used for "
                    f"{type(node).__name__}); run the ONNX target with dtype float32")


def session(model, threads: int | None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    if threads is not None:
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(model.SerializeToString(), so,
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise UnsupportedError(f"onnxruntime cannot run this model: "
                               f"{str(exc).splitlines()[0]}") from None


def run_session(sess, model, prog: Program, inputs, steps: int | None, opts: OnnxOptions
                ) -> tuple[dict[str, np.ndarray], int, int]:
    """Every model output as (steps, batch, ...), for either form."""
    from neurocompile.targets.onnx.export import initial_state

    data, steps, batch = time_major(prog.graph, prog.out_shapes, inputs, steps, opts.dtype)
    names = [o.name for o in sess.get_outputs()]
    if opts.form == "sequence":
        feed = {f"x.{k}": np.ascontiguousarray(v) for k, v in data.items()}
        return dict(zip(names, sess.run(None, feed))), steps, batch
    state = {k: np.ascontiguousarray(np.broadcast_to(v, (batch,) + v.shape[1:]), opts.dtype)
             for k, v in initial_state(model).items()}
    per_step = [n for n in names if not n.endswith(".next")]
    out: dict[str, list] = {n: [] for n in per_step}
    for t in range(steps):
        feed = dict(state, **{f"x.{k}": v[t] for k, v in data.items()})
        got = dict(zip(names, sess.run(None, feed)))
        state = {k: got[f"{k}.next"] for k in state}
        for n in per_step:
            out[n].append(got[n])
    return {n: np.stack(v) for n, v in out.items()}, steps, batch


class OnnxTarget(Target):
    """ONNX export of the contract, run by onnxruntime."""

    name = NAME
    description = "ONNX model of the contract (Scan over steps or the step function), onnxruntime"
    Options = OnnxOptions
    requires = ("onnx", "onnxruntime")

    def compile(self, graph: nir.NIRGraph, options=None) -> Artifact:
        opts = self.options(options)
        self.check_available()
        check_runnable(graph, opts)
        prog, model = build(graph, opts)
        return Artifact(NAME, graph, opts, {"dt": prog.dt, "form": opts.form,
                                            "dtype": opts.dtype, "onnx_nodes": _count(model)})

    def run(self, artifact: Artifact, inputs, steps: int | None = None) -> RunResult:
        start = time.perf_counter()
        opts = self.options(artifact.options)
        self.check_available()
        check_runnable(artifact.graph, opts)
        prog, model = build(artifact.graph, opts)
        sess = session(model, opts.threads)
        got, steps, batch = run_session(sess, model, prog, inputs, steps, opts)
        nodes = prog.graph.nodes
        outputs = {n: np.swapaxes(got[f"y.{n}"], 0, 1) for n, node in nodes.items()
                   if isinstance(node, nir.Output)}
        counters = {}
        if opts.counters:
            values = {n: got[f"value.{n}"] for n in nodes if f"value.{n}" in got}
            values.update({n: got[f"y.{n}"] for n in outputs})
            counters = counting.count(prog.graph, values, steps, batch, prog.fan_outs)
        return RunResult(outputs, counters, steps, batch, NAME, {}, time.perf_counter() - start)


def _count(model) -> int:
    return len(model.graph.node) + sum(len(a.g.node) for n in model.graph.node
                                       for a in n.attribute if a.g is not None and a.g.node)
