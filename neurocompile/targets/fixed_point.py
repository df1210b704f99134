"""Fixed-point mode of the reference simulator: Lava's bit-accurate Loihi integer arithmetic.

For graphs quantized with the Loihi scheme (neurocompile/passes/quantize.py;
graph.metadata["quantization"] == "loihi"). Per step, exactly as lava-nc 0.10.0's
PyDenseModelBitAcc (lava/proc/dense/models.py) and PyLifModelBitAcc
(lava/proc/lif/models.py), with int64 intermediates and int32 wrap where Lava holds int32:

    Dense:  a = (sum_j m_ij s_j) << e   (>> -e, arithmetic, for e < 0); sent as int32
    LIF:    u = int32(sign(u*(4096-(du+1))) * (|u*(4096-(du+1))| >> 12))
            u = int32(u + int32(a << 6));  u -= 2^24 if u > 2^23;  u += 2^24 if u <= -2^23
            v = int32(sign(v*(4096-dv)) * (|v*(4096-dv)| >> 12)) + u + (bias_mant << bias_exp)
            v = clip(v, -2^23 + 1, 2^23 - 1);  s = v > (vth << 6);  v = 0 where s

Non-spiking populations (LI, CubaLI) run the same update without threshold and output
the integer v (divide by metadata "loihi.state_scale" for float units). The synaptic
accumulation is one float64 matrix product over all steps and samples at once where the
graph is acyclic (exact: integer sums far below 2^53), then rounded to int64 and shifted.
"""

from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np

from neurocompile.errors import InputDataError, UnsupportedError
from neurocompile.ir.graph import NEURON_TYPES
from neurocompile.passes.quantize import (
    ACT_SHIFT,
    BIAS_EXP_MAX,
    BIAS_EXP_MIN,
    BIAS_MANT_MAX,
    BIAS_MANT_MIN,
    DECAY_SHIFT,
    DECAY_UNITY,
    DM_OFFSET,
    DS_OFFSET,
    DU_MAX,
    DV_MAX,
    MAX_WEIGHT_BITS,
    UV_BITS,
    VTH_MAX,
    VTH_SHIFT,
)

MAX_UV = 1 << (UV_BITS - 1)  # max_uv_val = 2**23
_ALLOWED = (nir.Input, nir.Output, nir.Affine, nir.Linear, nir.Delay) + NEURON_TYPES


def wrap_int32(x: np.ndarray) -> np.ndarray:
    """Two's-complement wrap of int64 values to int32's range (numpy's int32 overflow)."""
    return ((x + (1 << 31)) & ((1 << 32) - 1)) - (1 << 31)


def decay(x: np.ndarray, keep: int) -> np.ndarray:
    """Lava's decay: sign(x * keep) * (|x * keep| >> 12), in int64."""
    prod = x * keep
    return np.sign(prod) * (np.abs(prod) >> DECAY_SHIFT)


def wrap_u(u: np.ndarray) -> np.ndarray:
    """Lava's single 24-bit wrap of the current (note the asymmetric bounds)."""
    wrapped = np.where(u > MAX_UV, u - 2 * MAX_UV, u)
    return np.where(wrapped <= -MAX_UV, u + 2 * MAX_UV, wrapped)


def shift(x: np.ndarray, exp: np.ndarray | int) -> np.ndarray:
    """x << exp where exp >= 0, x >> -exp (arithmetic) where exp < 0; int64."""
    exp = np.asarray(exp, dtype=np.int64)
    return np.where(exp >= 0, np.left_shift(x, np.maximum(exp, 0)),
                    np.right_shift(x, np.maximum(-exp, 0)))


def _meta_int(name: str, node: nir.NIRNode, key: str, low: int, high: int,
              array: bool = False) -> np.ndarray | int:
    meta = node.metadata or {}
    if key not in meta:
        raise UnsupportedError(f"node {name!r}: metadata {key!r} missing; quantize the graph "
                               "with the Loihi scheme first (neurocompile quantize --scheme loihi)")
    raw = np.asarray(meta[key], dtype=np.float64)
    vals = np.rint(raw).astype(np.int64)
    if np.any(vals != raw) or np.any(vals < low) or np.any(vals > high):
        raise UnsupportedError(f"node {name!r}: metadata {key!r} must be integers in "
                               f"[{low}, {high}], got {raw.min():g}..{raw.max():g}")
    if array:
        return vals.reshape(-1)
    if vals.size != 1:
        raise UnsupportedError(f"node {name!r}: metadata {key!r} must be one value")
    return int(vals.reshape(-1)[0])


@dataclass(frozen=True)
class LoihiNeuron:
    """Integer parameters of one population (Lava LIF fixed-point variables)."""

    du: int
    dv: int
    vth: int | None  # None: non-spiking; outputs v
    bias_mant: np.ndarray
    bias_exp: np.ndarray

    @property
    def size(self) -> int:
        return int(self.bias_mant.size)

    @classmethod
    def from_node(cls, name: str, node: nir.NIRNode) -> LoihiNeuron:
        n = int(np.prod(np.asarray(node.output_type["output"]).reshape(-1)))
        du = _meta_int(name, node, "loihi.du", 0, DU_MAX)
        dv = _meta_int(name, node, "loihi.dv", 0, DV_MAX)
        spiking = isinstance(node, (nir.LIF, nir.CubaLIF, nir.IF))
        vth = _meta_int(name, node, "loihi.vth", 0, VTH_MAX) if spiking else None
        mant = _meta_int(name, node, "loihi.bias_mant", BIAS_MANT_MIN, BIAS_MANT_MAX, True)
        exp = _meta_int(name, node, "loihi.bias_exp", BIAS_EXP_MIN, BIAS_EXP_MAX, True)
        mant, exp = np.broadcast_to(mant, (n,)).copy(), np.broadcast_to(exp, (n,)).copy()
        return cls(du, dv, vth, mant, exp)


class FixedNeuronState:
    """Integer u and v of one population over a batch; same interface as the float state."""

    def __init__(self, p: LoihiNeuron, batch: int, dtype, record: bool, steps: int):
        self.keep_u = DECAY_UNITY - (p.du + DS_OFFSET)
        self.keep_v = DECAY_UNITY - (p.dv + DM_OFFSET)
        self.bias = wrap_int32(shift(p.bias_mant.astype(np.int64), p.bias_exp))
        self.vth = None if p.vth is None else p.vth << VTH_SHIFT
        self.dtype = dtype
        self.u = np.zeros((batch, p.size), np.int64)
        self.v = np.zeros_like(self.u)
        self.trace = np.zeros((steps, 2) + self.u.shape, np.int64) if record else None

    def step(self, t: int, i_t: np.ndarray) -> np.ndarray:
        a = wrap_int32(np.rint(i_t).astype(np.int64).reshape(self.u.shape))
        act = wrap_int32(a << ACT_SHIFT)
        self.u = wrap_u(wrap_int32(decay(self.u, self.keep_u) + act))
        v = wrap_int32(decay(self.v, self.keep_v) + self.u + self.bias)
        self.v = np.clip(v, -MAX_UV + 1, MAX_UV - 1)
        if self.vth is None:
            out = self.v.astype(self.dtype)
        else:
            out = self.v > self.vth
            self.v[out] = 0
        if self.trace is not None:  # state after the step (after reset), as the float state
            self.trace[t, 0], self.trace[t, 1] = self.u, self.v
        return out


@dataclass
class FixedPlan:
    """Integer synapse and neuron parameters of a Loihi-quantized graph."""

    synapses: dict[str, tuple[np.ndarray, int]]  # name -> (mantissas as float64, weight_exp)
    neurons: dict[str, LoihiNeuron]

    def apply(self, name: str, x: np.ndarray) -> np.ndarray:
        """Dense accumulation of x (L, in) integer spikes: int32((x @ m.T) << e), as float64."""
        m, e = self.synapses[name]
        if not np.array_equal(x, np.rint(x)):
            raise InputDataError(f"node {name!r}: fixed-point mode needs integer (spike) inputs")
        acc = np.rint(np.asarray(x, np.float64) @ m.T).astype(np.int64)
        return wrap_int32(shift(acc, e)).astype(np.float64)

    def new_state(self, name: str, batch: int, dtype, record: bool, steps: int
                  ) -> FixedNeuronState:
        return FixedNeuronState(self.neurons[name], batch, dtype, record, steps)


def build_plan(graph: nir.NIRGraph) -> FixedPlan:
    """Check a Loihi-quantized graph and collect its integer parameters."""
    meta = getattr(graph, "metadata", None) or {}
    scheme = meta.get("quantization")
    scheme = scheme.decode() if isinstance(scheme, bytes) else scheme
    if scheme != "loihi":
        raise UnsupportedError(
            f"fixed-point mode needs a graph quantized with the Loihi scheme "
            f"(metadata quantization='loihi', got {scheme!r}); run "
            "`neurocompile quantize --scheme loihi` first")
    synapses: dict[str, tuple[np.ndarray, int]] = {}
    neurons: dict[str, LoihiNeuron] = {}
    for name, node in graph.nodes.items():
        if not isinstance(node, _ALLOWED):
            raise UnsupportedError(f"node {name!r}: {type(node).__name__} has no fixed-point "
                                   "(Loihi) implementation")
        if isinstance(node, (nir.Affine, nir.Linear)):
            bits = _meta_int(name, node, "loihi.num_weight_bits", 1, MAX_WEIGHT_BITS) \
                if "loihi.num_weight_bits" in (node.metadata or {}) else MAX_WEIGHT_BITS
            e = _meta_int(name, node, "loihi.weight_exp", -64, 64)
            w = np.asarray(node.weight, np.float64)
            low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
            if np.any(w != np.rint(w)) or np.any(w < low) or np.any(w > high):
                raise UnsupportedError(f"node {name!r}: weights must be integer mantissas in "
                                       f"[{low}, {high}] (bits={bits}); got "
                                       f"{w.min():g}..{w.max():g}")
            if isinstance(node, nir.Affine) and np.any(np.asarray(node.bias) != 0):
                raise UnsupportedError(f"node {name!r}: Affine bias must be 0 in the Loihi "
                                       "scheme (the bias lives in the neuron)")
            synapses[name] = (w, e)
        elif isinstance(node, NEURON_TYPES):
            neurons[name] = LoihiNeuron.from_node(name, node)
    return FixedPlan(synapses, neurons)
