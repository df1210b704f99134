"""The Norse target: each neuron population advanced by Norse's own step functions, stateless
nodes as torch operations, every edge into a neuron delayed one step by the torch executor.

Lowering (NIR -> Norse, per step; Norse is called with dt = 1 and its inverse time constants
set to the per-step factors du = dt/tau_syn, dv = dt/tau_mem, so `dt * tau_inv` is exactly
the contract's factor rather than dt * (1/tau)):

    LIF     -> lif_box_feed_forward_step(r * I)       v += dv * ((x + v_leak) - v)
    CubaLIF -> lif_feed_forward_step(r*du*w_in * I)   i += x; v += dv * ((v_leak - v) + i); i -= du*i
    IF      -> iaf_feed_forward_step(r * I)           v += x
    LI      -> li_box_feed_forward_step(r * I)
    CubaLI  -> li_feed_forward_step(r*du*w_in * I)

with Norse's Heaviside threshold (v - v_th > 0, which is v > v_th) and its value reset to
v_reset = 0. I is the sum of the node's inputs one step earlier (the zero response at step 0),
exactly as the reference reads it, so no time shift is needed. The arithmetic is Norse's: the
same real-number update as the contract, rounded in Norse's operation order, so spikes equal
the reference's wherever that order rounds alike (always for IF; for every graph whose values
are exact in the dtype, and in practice for float64; docs/backends.md has the measurements).

Norse's own NIR import (`norse.torch.from_nir`) is not used: it casts every parameter to
float32, ignores r of LIF and IF, adds v_leak to the CubaLIF synapse as well, has no LI, CubaLI,
Scale, Conv1d, AvgPool2d, Threshold or Delay, sums pools as LPPool (average times window), and
runs edges without the one-step delay, so its spikes match the reference only shifted by the
number of neuron layers and only on feed-forward graphs (tests/test_target_norse.py shows it).
"""

from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np

from neurocompile import config
from neurocompile.errors import UnsupportedError
from neurocompile.semantics import float as fsem
from neurocompile.targets.base import Artifact, RunResult, Target, TargetOptions
from neurocompile.targets.reference.simulator import build_program, require_plain_neurons
from neurocompile.targets.torch.target import run_program

NAME = "norse"


@dataclass(frozen=True)
class NorseOptions(TargetOptions):
    """Options of the Norse target."""

    dtype: str = config.setting("float64", choices=("float64", "float32"),
                                help="Arithmetic of the torch tensors Norse computes on.")
    device: str = config.setting("cpu", help="torch device: cpu, cuda, ...")
    threads: int | None = config.setting(None, min=1, help="CPU threads (torch.set_num_threads).")
    counters: bool = config.setting(True, help="Count activity (copies node values to the host).")


def _param(node: nir.NIRNode, name: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.broadcast_to(np.asarray(getattr(node, name), np.float64), shape)


class NorsePopulation:
    """One neuron node over a batch, stepped by Norse's functional API."""

    def __init__(self, node: nir.NIRNode, d: fsem.Dynamics, batch: int, dtype, device):
        import torch
        from norse.torch.functional import iaf, leaky_integrator, leaky_integrator_box, lif, lif_box

        p = d.params
        shape = p.shape
        t = lambda a: torch.as_tensor(np.array(a, np.float64), device=device).to(dtype)  # noqa: E731
        zero = torch.zeros((batch,) + shape, dtype=dtype, device=device)
        kind = type(node).__name__
        r = _param(node, "r", shape)
        if kind in ("CubaLIF", "CubaLI"):
            scale = (r * p.du) * _param(node, "w_in", shape)
        else:
            scale = r
        self.scale = None if np.all(scale == 1) else t(scale)
        v_leak = t(_param(node, "v_leak", shape)) if kind not in ("IF",) else None
        vth = None if p.v_threshold is None else t(p.v_threshold)
        h = "heaviside"
        if kind == "LIF":
            self.params = lif_box.LIFBoxParameters(tau_mem_inv=t(p.dv), v_leak=v_leak, v_th=vth,
                                                   v_reset=t(0.0), method=h)
            self.fn, self.state = lif_box.lif_box_feed_forward_step, \
                lif_box.LIFBoxFeedForwardState(v=zero)
        elif kind == "CubaLIF":
            self.params = lif.LIFParameters(tau_syn_inv=t(p.du), tau_mem_inv=t(p.dv),
                                            v_leak=v_leak, v_th=vth, v_reset=t(0.0), method=h)
            self.fn, self.state = lif.lif_feed_forward_step, \
                lif.LIFFeedForwardState(v=zero, i=zero.clone())
        elif kind == "IF":
            self.params = iaf.IAFParameters(v_th=vth, v_reset=t(0.0), method=h)
            self.fn, self.state = iaf.iaf_feed_forward_step, iaf.IAFFeedForwardState(v=zero)
        elif kind == "LI":
            self.params = leaky_integrator_box.LIBoxParameters(tau_mem_inv=t(p.dv), v_leak=v_leak)
            self.fn, self.state = leaky_integrator_box.li_box_feed_forward_step, \
                leaky_integrator_box.LIBoxState(v=zero)
        elif kind == "CubaLI":
            self.params = leaky_integrator.LIParameters(tau_syn_inv=t(p.du), tau_mem_inv=t(p.dv),
                                                        v_leak=v_leak)
            self.fn, self.state = leaky_integrator.li_feed_forward_step, \
                leaky_integrator.LIState(v=zero, i=zero.clone())
        else:  # pragma: no cover - build_program accepts the neuron kinds above only
            raise UnsupportedError(f"Norse lowering has no {kind}")

    def step(self, i_t):
        x = i_t if self.scale is None else self.scale * i_t
        out, self.state = self.fn(x, self.state, self.params, dt=1.0)
        return out


class NorseTarget(Target):
    """Norse (PyTorch SNN library) neuron models under the contract's timing."""

    name = NAME
    description = "Norse neuron step functions under the contract's timing (no time shift)"
    Options = NorseOptions
    requires = ("torch", "norse")

    def compile(self, graph: nir.NIRGraph, options=None) -> Artifact:
        opts = self.options(options)
        self._check(opts)
        prog = require_plain_neurons(build_program(graph, opts.dt, opts.dtype), "norse")
        return Artifact(NAME, graph, opts, {"dt": prog.dt, "nodes": len(graph.nodes),
                                            "dtype": opts.dtype, "device": opts.device})

    def run(self, artifact: Artifact, inputs, steps: int | None = None) -> RunResult:
        opts = self.options(artifact.options)
        self._check(opts)
        prog = require_plain_neurons(build_program(artifact.graph, opts.dt, opts.dtype), "norse")
        nodes = prog.graph.nodes

        def population(dtype, device):
            return lambda name, d, batch: NorsePopulation(nodes[name], d, batch, dtype, device)

        return run_program(prog, inputs, steps, dtype=opts.dtype, device=opts.device,
                           threads=opts.threads, counters=opts.counters, population=population,
                           target=NAME)

    def _check(self, opts: NorseOptions) -> None:
        if opts.fixed_point:
            raise UnsupportedError("target 'norse' runs Norse's float neuron models; fixed "
                                   "point (Loihi integer arithmetic) is the reference or Lava "
                                   "target's")
        self.check_available()
