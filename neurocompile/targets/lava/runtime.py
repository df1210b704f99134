"""The part of the Lava target that runs inside the Python 3.10 Lava environment.

`run_plan` builds Lava processes from a `LavaPlan` (see `neurocompile.targets.lava.lowering`) and runs
them on Lava's CPU backend (Loihi2SimCfg, select_tag "floating_pt" or "fixed_pt"). A batch runs
in one Lava network: the samples' inputs sit one after another in the source ring buffers, the
network runs `steps` steps per sample, and between samples every LIF's u and v and every
connection's one-step buffer (a_buff) are set back to zero, so each sample starts from rest.

Worker entry point: ``python -m neurocompile.targets.lava.runtime REQUEST_DIR`` reads
graph.nir, inputs.npz and request.json there and writes outputs.npz and result.json (or
error.json, see `neurocompile.targets.worker`).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nir
import numpy as np

from neurocompile.errors import InputDataError
from neurocompile.semantics.loihi import READOUT_VTH
from neurocompile.targets import worker
from neurocompile.targets.base import RunResult
from neurocompile.targets.inputs import time_major
from neurocompile.targets.lava.lowering import LavaPlan, lower, replay
from neurocompile.targets.lava.target import write_progress, write_result

_RECORDERS: dict[str, type] = {}
_NEURONS: dict[str, type] = {}


def _neuron_models() -> dict[str, type]:
    """What Lava 0.10 lacks for the contract, defined on first use (this module imports without
    lava): LIF models with the subtractive reset or graded spikes, and a constant current.

    The float models (keyed ("float", reset, multi)) are Lava's PyLifModelFloat with the
    semantics' rules: spikes floor(v / vth) where v > 0 for "multi", reset v -= s * vth for
    "subtract", and the "_next" rules (the last step's spikes reset after this step's update);
    the fixed models (("fixed", reset)) are PyLifModelBitAcc with the same rules on
    vth << 6 (semantics.loihi.step). They are chosen per LIF instance. ConstantCurrent sends `value` to
    a LIF's a_in every step (no delay): an Affine bias before a population whose current
    persists (du < 1), which the reference adds to u every step.
    """
    if _NEURONS:
        return _NEURONS
    from lava.magma.core.decorator import implements, requires, tag
    from lava.magma.core.model.py.model import PyLoihiProcessModel
    from lava.magma.core.model.py.ports import PyOutPort
    from lava.magma.core.model.py.type import LavaPyType
    from lava.magma.core.process.ports.ports import OutPort
    from lava.magma.core.process.process import AbstractProcess
    from lava.magma.core.process.variable import Var
    from lava.magma.core.resources import CPU
    from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
    from lava.proc.lif.models import PyLifModelBitAcc, PyLifModelFloat
    from lava.proc.lif.process import LIF

    class _RulesFloat(PyLifModelFloat):
        """Lava's float LIF with the reset rule RESET and the spike rule MULTI."""

        RESET = "zero"
        MULTI = False

        @property
        def SUBTRACT(self) -> bool:  # noqa: N802 - read like the class constants
            return self.RESET == "subtract"

        def subthr_dynamics(self, activation_in: np.ndarray) -> None:
            prev = self.v > self.vth  # last step's spikes (the "_next" rules keep v un-reset)
            super().subthr_dynamics(activation_in)
            if self.RESET == "subtract_next":
                self.v[prev] -= self.vth
            elif self.RESET == "zero_next":
                self.v[prev] = 0

        def spiking_activation(self):
            if not self.MULTI:
                return self.v > self.vth
            return np.where(self.v > 0, np.floor(self.v / self.vth), 0.0)

        def reset_voltage(self, spike_vector: np.ndarray) -> None:
            if self.MULTI and self.SUBTRACT:
                self.v[:] = self.v - spike_vector * self.vth
            elif self.MULTI:
                self.v[spike_vector > 0] = 0
            elif self.SUBTRACT:
                self.v[spike_vector] -= self.vth
            elif self.RESET == "zero":
                self.v[spike_vector] = 0

    def float_model(reset: str, multi: bool) -> type:
        @implements(proc=LIF, protocol=LoihiProtocol)
        @requires(CPU)
        @tag("floating_pt")
        class RulesLifFloat(_RulesFloat):
            RESET, MULTI = reset, multi

        return RulesLifFloat

    class _RulesBitAcc(PyLifModelBitAcc):
        """Lava's bit-accurate LIF with the reset rule RESET (semantics.loihi.step)."""

        RESET = "subtract"

        def subthr_dynamics(self, activation_in: np.ndarray) -> None:
            prev = self.v > self.effective_vth
            super().subthr_dynamics(activation_in)  # ends with the 24-bit clip of v
            if self.RESET == "subtract_next":
                self.v[prev] -= self.effective_vth
            elif self.RESET == "zero_next":
                self.v[prev] = 0

        def reset_voltage(self, spike_vector: np.ndarray) -> None:
            if self.RESET == "subtract":
                self.v[spike_vector] -= self.effective_vth

    def fixed_model(reset: str) -> type:
        @implements(proc=LIF, protocol=LoihiProtocol)
        @requires(CPU)
        @tag("bit_accurate_loihi", "fixed_pt")
        class RulesLifBitAcc(_RulesBitAcc):
            RESET = reset

        return RulesLifBitAcc

    class ConstantCurrent(AbstractProcess):
        """Sends `value` (n,) from a_out every step."""

        def __init__(self, *, value: np.ndarray) -> None:
            super().__init__(value=value)
            self.value = Var(shape=value.shape, init=value)
            self.a_out = OutPort(shape=value.shape)

    @implements(proc=ConstantCurrent, protocol=LoihiProtocol)
    @requires(CPU)
    @tag("floating_pt")
    class PyConstantCurrentModel(PyLoihiProcessModel):
        a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
        value: np.ndarray = LavaPyType(np.ndarray, float)

        def run_spk(self) -> None:
            self.a_out.send(self.value)

    @implements(proc=ConstantCurrent, protocol=LoihiProtocol)
    @requires(CPU)
    @tag("fixed_pt")
    class PyConstantCurrentFixed(PyLoihiProcessModel):
        a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
        value: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)

        def run_spk(self) -> None:
            self.a_out.send(self.value)

    rules = ("zero", "subtract", "zero_next", "subtract_next")
    _NEURONS.update({("float", r, multi): float_model(r, multi)
                     for r in rules for multi in (False, True)})
    _NEURONS.update({("fixed", r): fixed_model(r) for r in rules[1:]})
    _NEURONS.update(
                    ConstantCurrent=ConstantCurrent,
                    models={("float", ConstantCurrent): PyConstantCurrentModel,
                            ("fixed", ConstantCurrent): PyConstantCurrentFixed})
    return _NEURONS


def _recorders() -> dict[str, type]:
    """Lava processes that record a port or a Var every step into memory and save it to .npy.

    Lava's own RingBuffer sink and Monitor hand their data back through Var.get(), which moves
    an array one element per message (seconds for 10^5 values); these write one file instead.
    Defined on first use so that this module imports without lava.
    """
    if _RECORDERS:
        return _RECORDERS
    import os

    from lava.magma.core.decorator import implements, requires, tag
    from lava.magma.core.model.py.model import PyLoihiProcessModel
    from lava.magma.core.model.py.ports import PyInPort, PyRefPort
    from lava.magma.core.model.py.type import LavaPyType
    from lava.magma.core.process.ports.ports import InPort, RefPort
    from lava.magma.core.process.process import AbstractProcess
    from lava.magma.core.resources import CPU
    from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

    class SpikeRecorder(AbstractProcess):
        """Records what arrives at a_in, each step; saves (n, total) to `path` at step total."""

        def __init__(self, *, shape: tuple[int, ...], total: int, path: str) -> None:
            super().__init__(shape=shape, total=total, path=path)
            self.a_in = InPort(shape=shape)

    class VarRecorder(AbstractProcess):
        """Reads a Var through a RefPort after each step; saves (n, total) to `path`."""

        def __init__(self, *, shape: tuple[int, ...], total: int, path: str) -> None:
            super().__init__(shape=shape, total=total, path=path)
            self.ref = RefPort(shape=shape)

    class _Store:
        def _setup(self, proc_params) -> None:
            self.total = int(proc_params["total"])
            self.path = proc_params["path"]
            self.buf = np.zeros(tuple(proc_params["shape"]) + (self.total,))

        def _put(self, value) -> None:
            self.buf[..., self.time_step - 1] = value
            if self.time_step == self.total:
                tmp = self.path + ".tmp.npy"
                np.save(tmp, self.buf)
                os.replace(tmp, self.path)

    @implements(proc=SpikeRecorder, protocol=LoihiProtocol)
    @requires(CPU)
    @tag("floating_pt", "fixed_pt")
    class PySpikeRecorderModel(PyLoihiProcessModel, _Store):
        a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)

        def __init__(self, proc_params) -> None:
            super().__init__(proc_params)
            self._setup(proc_params)

        def run_spk(self) -> None:
            self._put(self.a_in.recv())

    @implements(proc=VarRecorder, protocol=LoihiProtocol)
    @requires(CPU)
    @tag("floating_pt", "fixed_pt")
    class PyVarRecorderModel(PyLoihiProcessModel, _Store):
        ref: PyRefPort = LavaPyType(PyRefPort.VEC_DENSE, float)

        def __init__(self, proc_params) -> None:
            super().__init__(proc_params)
            self._setup(proc_params)

        def post_guard(self) -> bool:
            return True

        def run_post_mgmt(self) -> None:
            self._put(np.asarray(self.ref.read()))

    _RECORDERS.update(SpikeRecorder=SpikeRecorder, VarRecorder=VarRecorder,
                      models={SpikeRecorder: PySpikeRecorderModel,
                              VarRecorder: PyVarRecorderModel})
    return _RECORDERS


def _build(plan: LavaPlan, data: dict[str, np.ndarray], steps: int, batch: int, sparse: str,
           probe: tuple[str, ...], rec_dir: str):
    """Create and connect the Lava processes; returns handles for reset and read-out."""
    from lava.proc.dense.process import Dense
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF
    from lava.proc.sparse.process import Sparse
    from lava.utils.weightutils import SignMode
    from scipy.sparse import csr_matrix

    fixed = plan.fixed_point
    total = steps * batch
    sources, lifs, conns, sinks, monitors = {}, {}, [], {}, {}
    special = {}  # process instance -> the model it must run (reset rule, constant current)
    graded = {}
    for name in plan.inputs:
        x = data[name].reshape(steps, batch, -1)
        if fixed and np.any(x != np.rint(x)):
            raise InputDataError(f"input {name!r}: fixed point needs integer input values")
        # sample-major in time: Lava step b*steps + t + 1 sends sample b's step t
        flat = np.ascontiguousarray(x.transpose(2, 1, 0).reshape(x.shape[2], total))
        sources[name] = Source(data=flat.astype(np.int32) if fixed else flat)
        graded[name] = bool(np.any((flat != 0) & (flat != 1)))
    for name, pop in plan.populations.items():
        if fixed:
            vth = READOUT_VTH if pop.vth is None else int(pop.vth)
            lif = LIF(shape=(pop.size,), du=int(pop.du), dv=int(pop.dv), vth=vth,
                      bias_mant=pop.bias.astype(np.int32), bias_exp=pop.bias_exp.astype(np.int32),
                      name=name)
        else:
            vth = np.inf if pop.vth is None else float(pop.vth)
            lif = LIF(shape=(pop.size,), du=float(pop.du), dv=float(pop.dv), vth=vth,
                      bias_mant=pop.bias.astype(np.float64), name=name)
        lifs[name] = lif
        multi = pop.spikes == "multi"
        if pop.reset != "zero" or multi or pop.current is not None:
            models = _neuron_models()
        if pop.reset != "zero" or multi:
            special[lif] = models[("fixed", pop.reset)] if fixed else \
                models[("float", pop.reset, multi)]
        graded[name] = multi
        if pop.current is not None:
            value = np.asarray(pop.current, np.int32 if fixed else np.float64)
            cur = models["ConstantCurrent"](value=value)
            cur.a_out.connect(lif.a_in)
            special[cur] = models["models"][("fixed" if fixed else "float",
                                             models["ConstantCurrent"])]
    for i, syn in enumerate(plan.synapses):
        use_sparse = sparse == "sparse" or (sparse == "auto" and syn.process == "Sparse")
        kwargs = {"num_message_bits": 24 if graded.get(syn.source) else 0,
                  "name": f"syn{i}:{syn.source}->{syn.target}"}
        w = syn.weight
        if fixed:
            # Weights are integer mantissas; MIXED sign with 9 "weight bits" makes Lava's clip
            # (to [-256, 255]) and LSB truncation (8 - 9 + 1 = 0 bits) leave them unchanged, so
            # the synaptic input is exactly sum(mantissas) << weight_exp.
            w = w.astype(np.int32)
            kwargs.update(weight_exp=int(syn.weight_exp), num_weight_bits=9,
                          sign_mode=SignMode.MIXED)
        proc = Sparse(weights=csr_matrix(w), **kwargs) if use_sparse else Dense(weights=w, **kwargs)
        src = sources[syn.source].s_out if syn.source in sources else lifs[syn.source].s_out
        src.connect(proc.s_in)
        proc.a_out.connect(lifs[syn.target].a_in)
        conns.append(proc)
    rec = _recorders()
    for i, (name, pop) in enumerate(plan.populations.items()):
        if pop.spiking:
            sinks[name] = rec["SpikeRecorder"](shape=(pop.size,), total=total,
                                               path=f"{rec_dir}/spikes{i}.npy")
            lifs[name].s_out.connect(sinks[name].a_in)
        wanted = (["v"] if not pop.spiking else []) + (["u", "v"] if name in probe else [])
        for var in dict.fromkeys(wanted):
            mon = rec["VarRecorder"](shape=(pop.size,), total=total,
                                     path=f"{rec_dir}/{var}{i}.npy")
            mon.ref.connect_var(getattr(lifs[name], var))
            monitors[(name, var)] = mon
    return sources, lifs, conns, sinks, monitors, special


def run_plan(plan: LavaPlan, inputs: dict[str, np.ndarray], steps: int | None = None, *,
             sparse: str = "auto", probe: tuple[str, ...] = (), work_dir: str | None = None,
             on_sample: Callable[[int], None] | None = None) -> tuple[RunResult, dict]:
    """Run a lowered graph on Lava; returns (RunResult like the reference's, timing in seconds).

    work_dir: where the recorders write (default: a temporary directory, removed afterwards).
    on_sample(done): called after each sample of the batch (progress).
    """
    t0 = time.perf_counter()
    unknown = set(probe) - set(plan.populations)
    if unknown:
        raise InputDataError(f"can only probe neuron nodes; {sorted(unknown)} are not")
    data, steps, batch = time_major(plan.graph, plan.out_shapes, inputs, steps, np.float64)
    if not plan.populations:
        raise InputDataError("graph has no neuron node: nothing to run on Lava")
    rec_dir = tempfile.mkdtemp(prefix="neurocompile-lava-rec-", dir=work_dir)
    try:
        return _run(plan, data, steps, batch, sparse, probe, rec_dir, t0, on_sample)
    finally:
        shutil.rmtree(rec_dir, ignore_errors=True)


def _run(plan: LavaPlan, data, steps: int, batch: int, sparse: str, probe: tuple[str, ...],
         rec_dir: str, t0: float, on_sample: Callable[[int], None] | None = None
         ) -> tuple[RunResult, dict]:
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    sources, lifs, conns, sinks, monitors, special = _build(plan, data, steps, batch, sparse,
                                                            probe, rec_dir)
    t_build = time.perf_counter()
    models = _recorders()["models"]
    exceptions = dict(models)  # keyed by class (run config) and by instance (compiler)
    exceptions.update({p: models[type(p)] for p in [*sinks.values(), *monitors.values()]})
    exceptions.update(special)
    cfg = Loihi2SimCfg(select_tag="fixed_pt" if plan.fixed_point else "floating_pt",
                       exception_proc_model_map=exceptions)
    runner = next(iter(lifs.values()))
    state_dtype = np.int32 if plan.fixed_point else np.float64
    t_first = None
    try:
        for b in range(batch):
            if b:
                for name, lif in lifs.items():
                    zeros = np.zeros(plan.populations[name].size, state_dtype)
                    lif.u.set(zeros)
                    lif.v.set(zeros)
                for proc in conns:
                    proc.a_buff.set(np.zeros(proc.a_buff.shape, state_dtype))
            if t_first is None:
                # First step alone, so that Lava's compile time can be told from the steady
                # per-step time; the network just continues, nothing else changes.
                runner.run(condition=RunSteps(num_steps=1), run_cfg=cfg)
                t_first = time.perf_counter()
                if steps > 1:
                    runner.run(condition=RunSteps(num_steps=steps - 1), run_cfg=cfg)
            else:
                runner.run(condition=RunSteps(num_steps=steps), run_cfg=cfg)
            if on_sample is not None:
                on_sample(b + 1)
        t_run = time.perf_counter()
        recorded = {name: np.load(sink.proc_params["path"]) for name, sink in sinks.items()}
        watched = {key: np.load(mon.proc_params["path"]) for key, mon in monitors.items()}
    finally:
        try:
            runner.stop()
        except Exception:  # noqa: BLE001 - a failed run may already have torn the runtime down
            pass
    t_end = time.perf_counter()

    values: dict[str, np.ndarray] = {name: data[name] for name in plan.inputs}
    for name, rec in recorded.items():
        pop = plan.populations[name]  # rec: (n, batch*steps), sample-major in time
        arr = np.asarray(rec).reshape(pop.size, batch, steps).transpose(2, 1, 0)
        values[name] = arr.reshape((steps, batch) + pop.shape).astype(np.float64)
    probes = {}
    for (name, var), rec in watched.items():
        pop = plan.populations[name]  # rec: (n, batch*steps), sample-major in time
        arr = np.asarray(rec).reshape(pop.size, batch, steps).transpose(2, 1, 0)
        arr = arr.reshape((steps, batch) + pop.shape).astype(np.float64)
        if var == "v" and not pop.spiking:
            values[name] = arr
        if name in probe:
            probes[f"{name}.{var}"] = np.swapaxes(arr, 0, 1)
    all_values, counters = replay(plan, values, steps, batch)
    outputs = {n: np.swapaxes(all_values[n], 0, 1) for n, node in plan.graph.nodes.items()
               if isinstance(node, nir.Output) and n in all_values}
    t_first = t_first or t_run
    timing = {"build_s": t_build - t0, "compile_and_first_step_s": t_first - t_build,
              "steady_run_s": t_run - t_first, "steady_steps": steps * batch - 1,
              "run_s": t_run - t_build, "stop_s": t_end - t_run, "steps": steps, "batch": batch}
    result = RunResult(outputs, counters, steps, batch, "lava", probes, t_end - t0)
    return result, timing


def handle(directory: Path) -> None:
    """Run the request in `directory` (graph.nir, inputs.npz, request.json)."""
    from neurocompile.ir.io import load_graph

    start = time.perf_counter()
    request = json.loads((directory / "request.json").read_text())
    graph = load_graph(directory / "graph.nir")
    with np.load(directory / "inputs.npz", allow_pickle=False) as f:
        inputs = {k: np.asarray(f[k]) for k in f.files}
    t_import = time.perf_counter()
    import lava  # noqa: F401  (fail early, clearly, where lava-nc is missing)

    t_lava = time.perf_counter()
    plan = lower(graph, dt=request.get("dt"), fixed_point=bool(request.get("fixed_point")))
    result, timing = run_plan(plan, inputs, request.get("steps"),
                              sparse=request.get("sparse", "auto"),
                              probe=tuple(request.get("probe", ())), work_dir=str(directory),
                              on_sample=lambda done: write_progress(directory, done))
    timing["import_lava_s"] = t_lava - t_import
    timing["worker_s"] = time.perf_counter() - start
    write_result(result, directory, timing)


def _describe(exc: BaseException) -> str | None:
    if isinstance(exc, ModuleNotFoundError) and exc.name and exc.name.startswith("lava"):
        return f"lava-nc is not installed in {sys.executable} ({exc})"
    return None


if __name__ == "__main__":
    sys.exit(worker.serve(handle, describe=_describe))
