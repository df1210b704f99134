"""Lava target: lower a NIR graph to Lava processes and run it on Lava's CPU backend (Loihi 2 sim).

This module imports no Lava: it holds the lowering plan (pure NumPy, shared with the resource
mapper in `loihi2.py`), the target class, and the worker that runs `lava_runtime.py` in the
Python 3.10 Lava environment. Only the NIR file, the input data (.npz) and a small JSON request
cross the process boundary; outputs (.npz) and counters (.json) come back.

Lowering (docs/lava.md has the full table):

* Every neuron node (LIF, CubaLIF, IF, LI, CubaLI) becomes one Lava ``LIF`` process with
  scalar ``du``, ``dv``, ``vth`` from `neurocompile.ir.semantics.neuron_step` and a per-neuron
  bias. LI/CubaLI readouts are ``LIF`` processes with an unreachable threshold (float: +inf;
  fixed: mantissa 2**17, i.e. 2**23 after the 6-bit shift, above the 24-bit v range) whose
  ``v`` is recorded by a ``Monitor`` every step.
* All stateless nodes between a source (Input or spiking neuron) and a neuron (Affine, Linear,
  Scale, Flatten, Conv1d/Conv2d, SumPool2d/AvgPool2d) are folded into one weight matrix per
  (source, neuron) pair, together with the neuron's input gain. Convolutions and pools are
  unrolled into that matrix (Lava's Conv process is not used). The matrix becomes a ``Dense``
  process, or a ``Sparse`` one when at most a quarter of its entries are non-zero; pruned zeros
  stay exactly zero either way. Lava's Dense delays its output by one step, which is the
  reference simulator's rule for a neuron's input.
* Affine biases on the path into a neuron are folded into the neuron's bias (gain * bias); that
  is exact only when the current does not persist (du = 1: LIF, IF), otherwise UnsupportedError.
* Input nodes become ``RingBuffer`` spike sources; spiking neurons are recorded by ``RingBuffer``
  sinks; Output nodes (and any stateless node after the last neuron) are evaluated host-side from
  the recorded values within the same step, as the reference simulator does.
* Fixed point (``fixed_point=True``): the graph must be quantized with the Loihi scheme (see the
  "Loihi fixed-point graphs" contract); each synapse is exactly one Affine/Linear holding integer
  mantissas with ``loihi.weight_exp``, run by Lava's bit-accurate models.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nir
import numpy as np

from neurocompile.errors import NeurocompileError, UnsupportedError
from neurocompile.ir.graph import (
    LATCHED_TYPES,
    NEURON_TYPES,
    predecessors,
    topological_order,
)
from neurocompile.ir.semantics import graph_dt, neuron_step
from neurocompile.ir.shapes import infer_shapes
from neurocompile.ir.validate import check_graph
from neurocompile.targets import numpy_ops
from neurocompile.targets.base import Artifact, NodeCounters, RunResult

NAME = "lava"
LAVA_PYTHON_ENV = "NEUROCOMPILE_LAVA_PYTHON"
SPARSE_DENSITY = 0.25  # a synapse matrix at or below this density becomes a Lava Sparse process
MAX_UNROLLED = 2**26  # entries of one unrolled conv/pool matrix (512 MiB of float64)
FIXED_READOUT_VTH = 2**17  # << 6 = 2**23 > the largest 24-bit membrane value (2**23 - 1)


class LavaWorkerError(NeurocompileError):
    """The Lava worker process timed out, crashed or reported an error."""

    def __init__(self, message: str, pid: int | None = None):
        super().__init__(message)
        self.pid = pid


# --------------------------------------------------------------------------------------------
# Lowering plan (pure NumPy)


@dataclass
class Synapse:
    """One Lava connection process: source population/input -> target neuron population."""

    source: str
    target: str
    weight: np.ndarray  # (target size, source size): float weights, or integer mantissas
    nodes: tuple[str, ...]  # the NIR nodes folded into it
    weight_exp: int = 0
    num_weight_bits: int = 8

    @property
    def nonzero(self) -> int:
        return int(np.count_nonzero(self.weight))

    @property
    def dense(self) -> int:
        return int(self.weight.size)

    @property
    def process(self) -> str:
        """'Sparse' when pruning left at most SPARSE_DENSITY of the entries, else 'Dense'."""
        return "Sparse" if self.nonzero <= SPARSE_DENSITY * max(1, self.dense) else "Dense"


@dataclass
class Population:
    """One Lava LIF process standing for a NIR neuron node (flattened to one axis)."""

    name: str
    kind: str
    shape: tuple[int, ...]
    du: float
    dv: float
    vth: float | None  # None: readout (LI/CubaLI), v recorded, threshold unreachable
    bias: np.ndarray  # float bias, or bias mantissas in fixed point
    bias_exp: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def spiking(self) -> bool:
        return self.vth is not None


@dataclass
class LavaPlan:
    """A graph lowered to Lava processes; built identically on both sides of the worker boundary."""

    graph: nir.NIRGraph
    dt: float
    fixed_point: bool
    inputs: dict[str, tuple[int, ...]]
    populations: dict[str, Population]
    synapses: list[Synapse]
    out_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    in_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-ready description of the processes the runtime will build."""
        return {
            "dt": self.dt,
            "fixed_point": self.fixed_point,
            "inputs": {n: list(s) for n, s in self.inputs.items()},
            "populations": {
                p.name: {"kind": p.kind, "process": "LIF", "neurons": p.size,
                         "readout": not p.spiking, "du": float(p.du), "dv": float(p.dv),
                         "vth": None if p.vth is None else float(p.vth)}
                for p in self.populations.values()},
            "synapses": [
                {"source": s.source, "target": s.target, "process": s.process,
                 "nodes": list(s.nodes), "shape": list(s.weight.shape), "nonzero": s.nonzero,
                 "weight_exp": s.weight_exp, "num_weight_bits": s.num_weight_bits}
                for s in self.synapses],
        }


def _meta(node: nir.NIRNode) -> dict[str, Any]:
    return getattr(node, "metadata", None) or {}


def _uniform(name: str, what: str, arr: np.ndarray) -> float:
    """The single value of a per-neuron parameter that Lava's LIF holds as a scalar."""
    arr = np.asarray(arr, dtype=np.float64).reshape(-1)
    if arr.size and np.any(arr != arr[0]):
        raise UnsupportedError(
            f"node {name!r}: Lava's LIF holds one {what} per population; this node has values "
            f"in [{arr.min()}, {arr.max()}] (split the population or make {what} uniform)")
    return float(arr[0]) if arr.size else 0.0


def linear_operator(name: str, node: nir.NIRNode, in_shape: tuple[int, ...]
                    ) -> tuple[np.ndarray | None, np.ndarray]:
    """(matrix out x in, bias) of a stateless linear node; matrix None means identity."""
    n_in = int(np.prod(in_shape))
    if isinstance(node, nir.Affine):
        return np.asarray(node.weight, np.float64), np.asarray(node.bias, np.float64).reshape(-1)
    if isinstance(node, nir.Linear):
        w = np.asarray(node.weight, np.float64)
        return w, np.zeros(w.shape[0])
    if isinstance(node, nir.Scale):
        scale = np.broadcast_to(np.asarray(node.scale, np.float64), in_shape).reshape(-1)
        return np.diag(scale), np.zeros(n_in)
    if isinstance(node, (nir.Flatten, nir.Output)):
        return None, np.zeros(n_in)
    if isinstance(node, (nir.Conv1d, nir.Conv2d, nir.SumPool2d, nir.AvgPool2d)):
        zero = np.zeros((1,) + tuple(in_shape))
        bias = numpy_ops.apply(node, zero).reshape(-1)
        n_out = bias.size
        if n_in * n_out > MAX_UNROLLED:
            raise UnsupportedError(
                f"node {name!r}: unrolling this {type(node).__name__} into a Dense matrix needs "
                f"{n_out} x {n_in} = {n_in * n_out:,} entries (limit {MAX_UNROLLED:,})")
        basis = np.eye(n_in).reshape((n_in,) + tuple(in_shape))
        if isinstance(node, (nir.Conv1d, nir.Conv2d)):
            out = numpy_ops.conv(node, basis, bias=False)
        else:
            out = numpy_ops.pool(node, basis)
        return out.reshape(n_in, n_out).T.copy(), bias
    raise UnsupportedError(
        f"node {name!r}: {type(node).__name__} on the path into a neuron is not lowered to Lava "
        "(Lava connections are linear: Affine, Linear, Scale, Flatten, Conv, SumPool, AvgPool)")


class _Folder:
    """Folds every stateless path between sources and a neuron into one matrix per source."""

    def __init__(self, graph: nir.NIRGraph, in_shapes, out_shapes):
        self.graph, self.in_shapes, self.out_shapes = graph, in_shapes, out_shapes
        self.preds = predecessors(graph)
        self.memo: dict[str, tuple[dict[str, tuple[np.ndarray | None, set]], np.ndarray]] = {}

    def size(self, name: str) -> int:
        return int(np.prod(self.out_shapes[name]))

    def input_of(self, name: str) -> tuple[dict[str, tuple[np.ndarray | None, set]], np.ndarray]:
        """Sum of the contributions of a node's predecessors: {source: (matrix, nodes)}, bias."""
        total: dict[str, tuple[np.ndarray | None, set]] = {}
        bias = np.zeros(int(np.prod(self.in_shapes[name])))
        for p in self.preds[name]:
            contrib, b = self.output_of(p)
            bias = bias + b
            for src, (mat, nodes) in contrib.items():
                if src in total:
                    old, old_nodes = total[src]
                    a = np.eye(self.size(src)) if old is None else old
                    m = np.eye(self.size(src)) if mat is None else mat
                    total[src] = (a + m, old_nodes | nodes)
                else:
                    total[src] = (mat, set(nodes))
        return total, bias

    def output_of(self, name: str):
        if name in self.memo:
            return self.memo[name]
        node = self.graph.nodes[name]
        if isinstance(node, (nir.Input,) + LATCHED_TYPES):
            if isinstance(node, nir.Delay):
                raise UnsupportedError(
                    f"node {name!r}: Delay is not lowered to Lava (Lava's Dense adds exactly one "
                    "step per connection)")
            result = ({name: (None, set())}, np.zeros(self.size(name)))
        else:
            contrib, bias_in = self.input_of(name)
            op, b = linear_operator(name, node, self.in_shapes[name])
            out: dict[str, tuple[np.ndarray | None, set]] = {}
            for src, (mat, nodes) in contrib.items():
                if op is None:
                    m = mat
                elif mat is None:
                    m = op.copy()
                else:
                    m = op @ mat
                out[src] = (m, nodes | {name})
            bias = (bias_in if op is None else op @ bias_in) + b
            result = (out, bias)
        self.memo[name] = result
        return result


def _int_meta(name: str, node: nir.NIRNode, key: str, size: int | None = None):
    meta = _meta(node)
    if key not in meta:
        raise UnsupportedError(
            f"node {name!r}: fixed point needs metadata {key!r} (quantize the graph with the "
            "Loihi scheme first)")
    arr = np.asarray(meta[key], dtype=np.float64)
    if np.any(arr != np.rint(arr)):
        raise UnsupportedError(f"node {name!r}: metadata {key!r} must hold integers")
    arr = arr.astype(np.int64)
    if size is None:
        return int(arr.reshape(-1)[0]) if arr.size == 1 else arr
    return np.broadcast_to(arr.reshape(-1) if arr.size > 1 else arr.reshape(()), (size,)).copy()


def _is_loihi_quantized(graph: nir.NIRGraph) -> bool:
    q = _meta(graph).get("quantization")
    if isinstance(q, bytes):
        q = q.decode()
    if isinstance(q, np.ndarray):
        q = q.reshape(-1)[0]
        q = q.decode() if isinstance(q, bytes) else str(q)
    return q == "loihi"


def lower(graph: nir.NIRGraph, *, dt: float | None = None, fixed_point: bool = False) -> LavaPlan:
    """Lower a NIR graph to the Lava processes the runtime builds (see the module docstring)."""
    check_graph(graph)
    dt = graph_dt(graph, dt)
    if fixed_point and not _is_loihi_quantized(graph):
        raise UnsupportedError(
            "fixed point on Lava needs a graph quantized with the Loihi scheme "
            "(graph.metadata['quantization'] == 'loihi')")
    in_shapes, out_shapes, _ = infer_shapes(graph)
    nodes = graph.nodes
    folder = _Folder(graph, in_shapes, out_shapes)
    inputs = {n: tuple(out_shapes[n]) for n, node in nodes.items() if isinstance(node, nir.Input)}
    for name, node in nodes.items():
        if isinstance(node, nir.Delay):
            raise UnsupportedError(
                f"node {name!r}: Delay is not lowered to Lava (Lava's Dense adds exactly one "
                "step per connection)")
    pops: dict[str, Population] = {}
    synapses: list[Synapse] = []
    for name, node in nodes.items():
        if not isinstance(node, NEURON_TYPES):
            continue
        size = int(np.prod(out_shapes[name]))
        contrib, c = folder.input_of(name)
        if fixed_point:
            pop, syns = _lower_fixed(name, node, size, contrib, c, folder)
        else:
            pop, syns = _lower_float(name, node, size, dt, contrib, c, folder)
        pop.shape = tuple(out_shapes[name])
        pops[name] = pop
        synapses.extend(syns)
    for syn in synapses:
        src = nodes[syn.source]
        if isinstance(src, (nir.LI, nir.CubaLI)):
            raise UnsupportedError(
                f"node {syn.target!r}: its input comes from {type(src).__name__} "
                f"{syn.source!r}, which does not spike; Lava connections carry spikes only")
    _check_connected(pops, synapses)
    return LavaPlan(graph, dt, fixed_point, inputs, pops, synapses,
                    {k: tuple(v) for k, v in out_shapes.items() if v is not None},
                    {k: tuple(v) for k, v in in_shapes.items() if v is not None})


def _check_connected(pops: dict[str, Population], synapses: list[Synapse]) -> None:
    """Lava runs the processes connected to the one it is started from: one network only."""
    parent = {n: n for n in pops}
    for syn in synapses:
        parent.setdefault(syn.source, syn.source)

    def find(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for syn in synapses:
        parent[find(syn.source)] = find(syn.target)
    parts: dict[str, list[str]] = {}
    for n in pops:
        parts.setdefault(find(n), []).append(n)
    if len(parts) > 1:
        raise UnsupportedError(
            f"graph has {len(parts)} unconnected networks ({sorted(parts.values())}); the Lava "
            "target runs one connected network: split the graph and run each part")


def _lower_float(name, node, size, dt, contrib, c, folder) -> tuple[Population, list[Synapse]]:
    p = neuron_step(name, node, dt)
    du = _uniform(name, "du", p.du)
    dv = _uniform(name, "dv", p.dv)
    vth = None if p.v_threshold is None else _uniform(name, "v_threshold", p.v_threshold)
    gain = np.broadcast_to(p.gain, folder.out_shapes[name]).reshape(-1)
    bias = np.broadcast_to(p.bias, folder.out_shapes[name]).reshape(-1).astype(np.float64)
    if np.any(c != 0):
        if du != 1.0:
            biased = sorted(n for _, (_, ns) in contrib.items() for n in ns
                            if isinstance(folder.graph.nodes[n], (nir.Affine, nir.Conv1d,
                                                                  nir.Conv2d)))
            raise UnsupportedError(
                f"node {name!r}: the bias of {biased or 'its input'} cannot be folded exactly "
                f"into {type(node).__name__} with du = {du} (Lava adds bias to v, not to the "
                "current u; exact only for du = 1); move the bias into v_leak")
        bias = bias + gain * c
    syns = []
    for src, (mat, nodes) in contrib.items():
        m = np.eye(size) if mat is None else mat
        w = m if np.all(gain == 1) else gain[:, None] * m
        syns.append(Synapse(src, name, np.ascontiguousarray(w, dtype=np.float64),
                            tuple(sorted(nodes))))
    return Population(name, type(node).__name__, (), du, dv, vth, bias), syns


def _lower_fixed(name, node, size, contrib, c, folder) -> tuple[Population, list[Synapse]]:
    graph = folder.graph
    syns = []
    for p in folder.preds[name]:
        pnode = graph.nodes[p]
        pp = folder.preds[p]
        if not isinstance(pnode, (nir.Affine, nir.Linear)) or len(pp) != 1 or not isinstance(
                graph.nodes[pp[0]], (nir.Input,) + NEURON_TYPES):
            raise UnsupportedError(
                f"node {name!r}: in fixed point each input must be one Affine/Linear straight "
                f"from an Input or neuron node; {p!r} ({type(pnode).__name__}) is not")
        if isinstance(pnode, nir.Affine) and np.any(np.asarray(pnode.bias) != 0):
            raise UnsupportedError(
                f"node {p!r}: Affine bias must be zero in the Loihi fixed-point scheme "
                "(the bias lives in the neuron's loihi.bias_mant)")
        w = np.asarray(pnode.weight, np.float64)
        if np.any(w != np.rint(w)):
            raise UnsupportedError(f"node {p!r}: fixed-point weights must be integer mantissas")
        bits = int(_meta(pnode).get("loihi.num_weight_bits", 8))
        if np.any(np.abs(w) > 2**8):
            raise UnsupportedError(
                f"node {p!r}: weight mantissas must lie in [-256, 255] for Lava's Dense; "
                f"got [{w.min()}, {w.max()}]")
        exp = _int_meta(p, pnode, "loihi.weight_exp")
        syns.append(Synapse(pp[0], name, w, (p,), int(exp), bits))
    du = _int_meta(name, node, "loihi.du")
    dv = _int_meta(name, node, "loihi.dv")
    du = _uniform(name, "loihi.du", np.asarray(du))
    dv = _uniform(name, "loihi.dv", np.asarray(dv))
    if isinstance(node, (nir.LI, nir.CubaLI)):
        vth = None
    else:
        vth = _uniform(name, "loihi.vth", np.asarray(_int_meta(name, node, "loihi.vth")))
    bias_mant = _int_meta(name, node, "loihi.bias_mant", size)
    bias_exp = _int_meta(name, node, "loihi.bias_exp", size)
    return Population(name, type(node).__name__, (), du, dv, vth, bias_mant, bias_exp), syns


# --------------------------------------------------------------------------------------------
# Host-side evaluation of the stateless nodes, and counters (as the reference simulator counts)


def replay(plan: LavaPlan, sources: dict[str, np.ndarray], steps: int, batch: int
           ) -> tuple[dict[str, np.ndarray], dict[str, NodeCounters]]:
    """Evaluate every stateless node from the recorded source values; count like the reference.

    sources: {Input or neuron name: (steps, batch, *shape)}. Returns (values, counters).
    """
    from neurocompile.ir.graph import SPIKING_TYPES, SYNAPTIC_TYPES

    graph = plan.graph
    preds = predecessors(graph)
    values = dict(sources)
    counters = {n: NodeCounters() for n in graph.nodes}
    for name in topological_order(graph, cut=LATCHED_TYPES):
        node = graph.nodes[name]
        if name in values:
            continue
        if isinstance(node, (nir.Input,) + LATCHED_TYPES):
            continue  # not recorded (e.g. a readout feeding nothing)
        parts = [values[p] for p in preds[name] if p in values]
        if len(parts) != len(preds[name]):
            continue
        x = parts[0].astype(np.float64, copy=True)
        for part in parts[1:]:
            x += part
        if isinstance(node, nir.Output):
            values[name] = x
            continue
        in_shape = plan.in_shapes[name]
        flat = x.reshape((-1,) + tuple(in_shape))
        if isinstance(node, SYNAPTIC_TYPES):
            fan = numpy_ops.fan_out(node, tuple(in_shape)).reshape(-1)
            active = np.count_nonzero(flat.reshape(flat.shape[0], -1), axis=0)
            counters[name].synaptic_events += int(active @ fan)
        y = numpy_ops.apply(node, flat, np.float64)
        values[name] = y.reshape((steps, batch) + y.shape[1:])
    for name, node in graph.nodes.items():
        if isinstance(node, SPIKING_TYPES + (nir.Input,)) and name in values:
            counters[name].spikes = int(np.count_nonzero(values[name]))
        if isinstance(node, NEURON_TYPES):
            counters[name].neuron_updates = int(steps * batch * int(np.prod(plan.out_shapes[name])))
    return values, counters


# --------------------------------------------------------------------------------------------
# Worker management


def _package_root() -> Path:
    import neurocompile

    return Path(neurocompile.__file__).resolve().parents[1]


def find_lava_python(explicit: str | None = None) -> str:
    """The Lava interpreter: explicit, else $NEUROCOMPILE_LAVA_PYTHON, else ./.venv-lava."""
    if explicit:
        return explicit
    env = os.environ.get(LAVA_PYTHON_ENV)
    if env:
        if not (Path(env).exists() or shutil.which(env)):
            raise UnsupportedError(f"{LAVA_PYTHON_ENV}={env}: no such interpreter")
        return env
    for root in (Path.cwd(), _package_root()):
        cand = root / ".venv-lava" / "bin" / "python"
        if cand.exists():
            return str(cand)
    raise UnsupportedError(
        f"no Lava environment: set {LAVA_PYTHON_ENV} to a Python 3.10 interpreter with lava-nc "
        "installed, or run `make lava-venv` in the repository")


def lava_importable() -> bool:
    """Whether lava-nc can be imported in this interpreter (then runs may stay in process)."""
    import importlib.util

    return importlib.util.find_spec("lava") is not None


def _group_alive(pgid: int) -> list[int]:
    """PIDs of live (non-zombie) processes in process group `pgid`, read from /proc."""
    alive = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(entry))
    return alive


def _kill_group(pgid: int, wait_s: float = 5.0) -> None:
    """SIGKILL every process in group `pgid` and wait (bounded) until none is left alive."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        if not _group_alive(pgid) or time.monotonic() > deadline:
            return
        time.sleep(0.02)


def run_worker(request_dir: Path, python: str, timeout_s: float) -> dict[str, Any]:
    """Run lava_runtime in its own session; kill the whole group on timeout, error or interrupt.

    Returns {'pid', 'wall_s'}; raises LavaWorkerError with the worker's own error when it fails.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = str(_package_root()) + (os.pathsep + env["PYTHONPATH"]
                                               if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    log_path = request_dir / "worker.log"
    start = time.perf_counter()
    with open(log_path, "wb") as log:
        try:
            proc = subprocess.Popen(
                [python, "-m", "neurocompile.targets.lava_runtime", str(request_dir)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                cwd=request_dir, start_new_session=True)
        except OSError as exc:
            raise LavaWorkerError(f"cannot start the Lava worker {python}: {exc}") from exc
        pid = proc.pid
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(pid)
            proc.wait()
            raise LavaWorkerError(
                f"Lava worker (pid {pid}) timed out after {timeout_s:g} s and was killed with its "
                "process group; raise the timeout (option timeout_s) or run fewer steps",
                pid) from None
        except BaseException:
            _kill_group(pid)
            proc.wait()
            raise
        finally:
            _kill_group(pid)  # Lava's own child processes, should any outlive the worker
    wall = time.perf_counter() - start
    err_path = request_dir / "error.json"
    if err_path.exists():
        err = json.loads(err_path.read_text())
        kind = err.get("type", "Error")
        cls = _error_class(kind)
        msg = err.get("message", "")
        if cls is LavaWorkerError:
            raise LavaWorkerError(f"Lava run failed: {msg}", pid)
        raise cls(msg)
    if rc != 0 or not (request_dir / "result.json").exists():
        tail = _log_tail(log_path)
        how = (f"was killed by signal {signal.Signals(-rc).name}" if rc < 0
               else f"exited with status {rc}")
        raise LavaWorkerError(f"Lava worker (pid {pid}) {how}" + (f": {tail}" if tail else ""),
                              pid)
    return {"pid": pid, "wall_s": wall}


def _error_class(kind: str) -> type[NeurocompileError]:
    from neurocompile import errors

    cls = getattr(errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, NeurocompileError) and kind != "GraphValidationError":
        return cls
    return LavaWorkerError


def _log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


def _inputs_dict(plan_inputs: dict[str, tuple[int, ...]], inputs) -> dict[str, np.ndarray]:
    if isinstance(inputs, dict):
        return {k: np.asarray(v) for k, v in inputs.items()}
    if len(plan_inputs) != 1:
        from neurocompile.errors import InputDataError

        raise InputDataError(f"graph has Input nodes {sorted(plan_inputs)}: pass a dict keyed by name")
    return {next(iter(plan_inputs)): np.asarray(inputs)}


def _default_timeout(batch: int, steps: int) -> float:
    return 120.0 + 0.02 * batch * steps


# --------------------------------------------------------------------------------------------
# Target


class LavaTarget:
    """Lava CPU simulation of Loihi 2 (floating_pt or bit-accurate fixed_pt process models)."""

    name = NAME
    description = ("Lava (lava-nc) CPU simulation of Loihi 2 in a Python 3.10 worker; "
                   "float or bit-accurate fixed point")
    enforce_limits = False

    def __init__(self) -> None:
        self.last_run_info: dict[str, Any] = {}

    def compile(self, graph: nir.NIRGraph, options: dict[str, Any] | None = None) -> Artifact:
        """Lower (to check the graph runs on Lava) and map onto Loihi 2 cores."""
        from neurocompile.targets.loihi2 import map_resources

        options = {k: v for k, v in (options or {}).items() if v is not None}
        plan = lower(graph, dt=options.get("dt"), fixed_point=bool(options.get("fixed_point")))
        resources = map_resources(plan, options.get("hardware", "loihi2"),
                                  chips=int(options.get("chips", 1)),
                                  weight_bits=options.get("weight_bits"),
                                  enforce=self.enforce_limits)
        manifest = {"dt": plan.dt, "lowering": plan.summary(), "resources": resources}
        return Artifact(self.name, graph, options, manifest)

    def load_artifact(self, path: str | os.PathLike, options: dict[str, Any] | None = None
                      ) -> Artifact:
        """Read an artifact directory (hashes checked); given options override its own."""
        from neurocompile.targets.artifact import read_artifact

        artifact = read_artifact(path)
        artifact.options.update({k: v for k, v in (options or {}).items() if v is not None
                                 and not (k == "fixed_point" and v is False)})
        return artifact

    def run(self, artifact: Artifact | nir.NIRGraph, inputs, steps: int | None = None
            ) -> RunResult:
        """Run the artifact on Lava: in a worker (default) or in process (option in_process)."""
        if isinstance(artifact, nir.NIRGraph):
            artifact = Artifact(self.name, artifact, {})
        options = {k: v for k, v in artifact.options.items() if v is not None}
        fixed = bool(options.get("fixed_point"))
        plan = lower(artifact.graph, dt=options.get("dt"), fixed_point=fixed)
        data = _inputs_dict(plan.inputs, inputs)
        request = {"steps": steps, "dt": plan.dt, "fixed_point": fixed,
                   "sparse": options.get("sparse", "auto"),
                   "probe": list(options.get("probe", ()))}
        if options.get("in_process"):
            from neurocompile.targets.lava_runtime import run_plan

            start = time.perf_counter()
            result, timing = run_plan(plan, data, steps, sparse=request["sparse"],
                                      probe=tuple(request["probe"]))
            self.last_run_info = dict(timing, pid=os.getpid(),
                                      total_s=time.perf_counter() - start, in_process=True)
            result.target = self.name
            return result
        python = find_lava_python(options.get("python"))
        batch = max(int(np.shape(v)[0]) for v in data.values())
        length = max(int(np.shape(v)[1]) for v in data.values()) if steps is None else int(steps)
        timeout = float(options.get("timeout_s") or _default_timeout(batch, length))
        tmp = Path(tempfile.mkdtemp(prefix="neurocompile-lava-"))
        try:
            from neurocompile.ir.io import save_graph

            save_graph(artifact.graph, tmp / "graph.nir")
            with open(tmp / "inputs.npz", "wb") as f:
                np.savez(f, **data)
            (tmp / "request.json").write_text(json.dumps(request))
            info = run_worker(tmp, python, timeout)
            result = _read_result(tmp)
            order = list(artifact.graph.nodes)
            result.counters = {n: result.counters[n] for n in order if n in result.counters}
            timing = json.loads((tmp / "result.json").read_text()).get("timing", {})
            self.last_run_info = dict(timing, pid=info["pid"], total_s=info["wall_s"],
                                      in_process=False, python=python)
            result.target = self.name
            return result
        finally:
            if not options.get("keep_worker_dir"):
                shutil.rmtree(tmp, ignore_errors=True)


def _read_result(directory: Path) -> RunResult:
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


def write_result(result: RunResult, directory: Path, timing: dict[str, float]) -> None:
    """Worker side: outputs.npz (output:<name>, probe:<name>) and result.json, atomically."""
    from neurocompile.ir.io import atomic_path, write_text

    arrays = {f"output:{k}": v for k, v in result.outputs.items()}
    arrays.update({f"probe:{k}": v for k, v in result.probes.items()})
    with atomic_path(directory / "outputs.npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    meta = {"target": result.target, "steps": result.steps, "batch": result.batch,
            "wall_time_s": result.wall_time_s, "counters": result.counters_dict(),
            "timing": timing, "python": sys.version.split()[0]}
    write_text(directory / "result.json", json.dumps(meta, indent=1))


__all__ = ["LavaPlan", "LavaTarget", "LavaWorkerError", "Population", "Synapse",
           "find_lava_python", "lava_importable", "lower", "replay", "run_worker"]
