"""The torch target: the reference semantics batched in torch on CPU or CUDA, for evaluating
whole datasets. Float64 runs give the reference's spikes; float32 runs are reported against it
(docs/backends.md)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import nir
import numpy as np

from neurocompile import config
from neurocompile.errors import UnsupportedError
from neurocompile.targets import counting
from neurocompile.targets.base import Artifact, RunResult, Target, TargetOptions
from neurocompile.targets.inputs import as_dict, time_major
from neurocompile.targets.reference.simulator import (
    Program,
    build_program,
    require_plain_neurons,
)

NAME = "torch"


@dataclass(frozen=True)
class TorchOptions(TargetOptions):
    """Options of the torch target."""

    dtype: str = config.setting("float64", choices=("float64", "float32"),
                                help="Arithmetic (float64 equals the reference spike for spike).")
    device: str = config.setting("cpu", help="torch device: cpu, cuda, cuda:1, ...")
    threads: int | None = config.setting(None, min=1, help="CPU threads (torch.set_num_threads).")
    counters: bool = config.setting(True, help="Count spikes, synaptic events and neuron updates "
                                               "(reduced on the device; per-element counts "
                                               "travel).")


@contextlib.contextmanager
def exact_arithmetic(device) -> Iterator[None]:
    """No TF32 in float32 matrix products or convolutions while a run lasts (CUDA rounds
    float32 products to 10-bit mantissas otherwise)."""
    import torch

    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def resolve_device(name: str):
    """A torch.device, refusing CUDA where none is present (naming what was asked)."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise UnsupportedError(f"torch device {name!r}: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UnsupportedError(f"torch device {name!r}: CUDA is not available here "
                               f"(torch {torch.__version__})")
    return device


def _is_tensor(value) -> bool:
    import torch

    return isinstance(value, torch.Tensor)


def device_inputs(prog: Program, inputs, steps: int | None, dtype, device):
    """`inputs.time_major` with the copy, transpose and cast done on the device: NumPy arrays
    travel in their own dtype (float32 spikes stay 4 bytes); torch tensors already on the
    device do not travel at all. Shapes, batch and dtype kinds are checked by time_major on the
    first step; finiteness on the device."""
    import torch

    from neurocompile.errors import InputDataError

    given = as_dict(prog.graph, inputs)
    arrays = {k: v.detach() if _is_tensor(v) else np.asarray(v) for k, v in given.items()}
    head = {k: v[:, :1].cpu().numpy() if _is_tensor(v) else v[:, :1] for k, v in arrays.items()}
    checked, _, batch = time_major(prog.graph, prog.out_shapes, head, 1, prog.dtype)
    length = max(arrays[k].shape[1] for k in checked)
    steps = length if steps is None else int(steps)
    if steps < 1:
        raise InputDataError(f"steps must be >= 1, got {steps}")
    out = {}
    for name in checked:
        arr = arrays[name][:, :steps]
        if _is_tensor(arr):
            t = arr.to(device)
        else:
            t = torch.as_tensor(arr if arr.dtype != bool else arr.view(np.uint8), device=device)
        t = t.reshape((batch, t.shape[1]) + tuple(prog.out_shapes[name]))
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise InputDataError(f"input {name!r}: has NaN or infinite values")
        tm = torch.zeros((steps, batch) + tuple(t.shape[2:]), dtype=dtype, device=device)
        tm[:t.shape[1]].copy_(t.transpose(0, 1))  # transpose and cast in one pass
        out[name] = tm
    return out, steps, batch


def active_elements(parts) -> np.ndarray:
    """`counting.active_elements` on the device: only the per-element counts travel."""
    import torch

    values = parts[0] if len(parts) == 1 else sum(p.to(torch.float64) for p in parts)
    flat = values.reshape(-1, int(np.prod(values.shape[2:], dtype=np.int64)))
    return torch.count_nonzero(flat, dim=0).cpu().numpy().astype(np.int64)


def run_program(prog: Program, inputs, steps: int | None, *, dtype: str, device: str,
                threads: int | None, counters: bool, population=None, target: str = NAME
                ) -> RunResult:
    """Run a reference Program with the torch executor; counters computed on the device.

    Outputs are NumPy arrays, or, when every input is a torch tensor, torch tensors left on
    the device (dataset evaluation that stays on a GPU: nothing of size batch x steps travels).
    """
    import torch

    from neurocompile.targets.torch.executor import DTYPES, Executor

    start = time.perf_counter()
    dev = resolve_device(device)
    if threads is not None:
        torch.set_num_threads(int(threads))
    tdtype = DTYPES[dtype]
    inputs = as_dict(prog.graph, inputs)
    resident = all(map(_is_tensor, inputs.values()))
    with torch.no_grad(), exact_arithmetic(dev):
        tensors, steps, batch = device_inputs(prog, inputs, steps, tdtype, dev)
        ex = Executor(prog, tdtype, dev, population(tdtype, dev) if population else None)
        values = ex.run(tensors, steps, batch)
        outs = {n: values[n].to(tdtype).transpose(0, 1)
                for n, node in prog.graph.nodes.items() if isinstance(node, nir.Output)}
        if not resident:
            outs = {n: v.cpu().numpy() for n, v in outs.items()}
        counted = counting.count(prog.graph, values, steps, batch, prog.fan_outs,
                                 active_elements) if counters else {}
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return RunResult(outs, counted, steps, batch, target, {}, time.perf_counter() - start)


class TorchTarget(Target):
    """Batched torch simulator of the reference semantics (CPU or CUDA; float64 or float32)."""

    name = NAME
    description = "torch simulator of the reference semantics, batched, CPU or CUDA"
    Options = TorchOptions
    requires = ("torch",)

    def compile(self, graph: nir.NIRGraph, options=None) -> Artifact:
        opts = self.options(options)
        if opts.fixed_point:
            raise UnsupportedError("target 'torch' runs the float model; fixed point (Loihi "
                                   "integer arithmetic) is the reference or Lava target's")
        self.check_available()
        prog = require_plain_neurons(build_program(graph, opts.dt, opts.dtype), "torch")
        return Artifact(NAME, graph, opts, {"dt": prog.dt, "nodes": len(graph.nodes),
                                            "device": opts.device, "dtype": opts.dtype})

    def run(self, artifact: Artifact, inputs, steps: int | None = None) -> RunResult:
        opts = self.options(artifact.options)
        if opts.fixed_point:
            raise UnsupportedError("target 'torch' runs the float model, not fixed point")
        self.check_available()
        prog = require_plain_neurons(build_program(artifact.graph, opts.dt, opts.dtype), "torch")
        return run_program(prog, inputs, steps, dtype=opts.dtype, device=opts.device,
                           threads=opts.threads, counters=opts.counters)
