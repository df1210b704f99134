"""The Loihi fixed-point format: its constants, the one reader of `loihi.*` metadata, one step.

Arithmetic of lava-nc 0.10.0's PyDenseModelBitAcc (lava/proc/dense/models.py) and
PyLifModelBitAcc (lava/proc/lif/models.py), with int64 intermediates and int32 wrap where Lava
holds int32. Per step:

    Dense:  a = (sum_j m_ij s_j) << e   (>> -e, arithmetic, for e < 0); sent as int32
            (+ loihi.current, a constant input per neuron, where the node has one)
    LIF:    u = int32(sign(u*(4096-(du+1))) * (|u*(4096-(du+1))| >> 12))
            u = int32(u + int32(a << 6));  u -= 2^24 if u > 2^23;  u += 2^24 if u <= -2^23
            v = int32(sign(v*(4096-dv)) * (|v*(4096-dv)| >> 12)) + u + (bias_mant << bias_exp)
            v = clip(v, -2^23 + 1, 2^23 - 1);  s = v > (vth << 6);  v = 0 where s
            (reset "subtract", float.reset_rule: v = v - (vth << 6) where s; "subtract_next" /
            "zero_next": v = v - (vth << 6) / 0 where the previous v > (vth << 6), after the
            clip, then s = v > (vth << 6) and no reset; Lava has no such models, the Lava
            target supplies them with this arithmetic)

A graph in this format has graph.metadata["quantization"] == "loihi"; each synapse is one
Affine/Linear (zero bias) whose weights are integer mantissas, with metadata
"loihi.weight_exp" and "loihi.num_weight_bits"; each neuron node carries "loihi.du",
"loihi.dv", "loihi.vth" (spiking only), "loihi.bias_mant", "loihi.bias_exp" and
"loihi.state_scale", and optionally "loihi.current". `read_graph` is the only code that reads these keys: quantization writes
them (`neuron_metadata`, `synapse_metadata`), and the reference simulator's fixed-point mode,
the Lava lowering and the energy model read them through it, so all accept and refuse the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np

from neurocompile.errors import UnsupportedError
from neurocompile.ir import weights
from neurocompile.ir.graph import NEURON_TYPES, predecessors, quantization_scheme
from neurocompile.semantics.float import reset_rule, spike_rule

# -- the format (Lava lava-nc 0.10.0, lava/proc/lif/models.py AbstractPyLifModelFixed and
#    PyLifModelBitAcc; lava/proc/dense/models.py) ---------------------------------------------
SCHEME = "loihi"
DECAY_SHIFT = 12                 # decay_shift: decays are 12-bit fractions of 4096
DECAY_UNITY = 1 << DECAY_SHIFT   # decay_unity = 2**12
DS_OFFSET = 1                    # ds_offset: u decays by (4096 - (du + 1)) / 4096
DM_OFFSET = 0                    # dm_offset: v decays by (4096 - dv) / 4096
ACT_SHIFT = 6                    # act_shift: synaptic input << 6
VTH_SHIFT = 6                    # vth_shift: threshold << 6
UV_BITS = 24                     # uv_bitwidth: u wraps, v clips at 24 bits
MAX_UV = 1 << (UV_BITS - 1)      # max_uv_val = 2**23
DU_MAX = DV_MAX = 4095           # du, dv: unsigned 12-bit (PyLifModelBitAcc docstring)
VTH_MAX = 2**17 - 1              # vth: unsigned 17-bit (PyLifModelBitAcc docstring)
BIAS_MANT_MIN, BIAS_MANT_MAX = -4096, 4095  # bias_mant: signed 13-bit (same docstring)
BIAS_EXP_MIN, BIAS_EXP_MAX = 0, 7           # bias_exp: unsigned 3-bit (same docstring)
MIN_WEIGHT_BITS, MAX_WEIGHT_BITS = 1, 8     # Dense bit-accurate model: 8-bit weights
# Loihi's synaptic weight exponent is a 4-bit signed field, -8..7 (Intel NxSDK
# documentation, 'weightExponent'); Lava's Python model does not check it, Loihi does.
WEIGHT_EXP_MIN, WEIGHT_EXP_MAX = -8, 7
# "loihi.current": a constant synaptic input per neuron (an Affine bias before a population
# whose current persists, du < 1), in the units of Dense's output, added to a every step; Lava
# sends it into the LIF's a_in. Bounded so that current << 6 stays within the 24-bit u.
CURRENT_MIN, CURRENT_MAX = -(2**17), 2**17 - 1
# A readout (LI, CubaLI) runs as a LIF whose threshold is never reached:
# 2**17 << 6 = 2**23 > the largest 24-bit membrane value (2**23 - 1).
READOUT_VTH = 2**17

SYNAPSE_TYPES = (nir.Affine, nir.Linear)
ALLOWED_TYPES = (nir.Input, nir.Output, nir.Delay) + SYNAPSE_TYPES + NEURON_TYPES


def is_quantized(graph: nir.NIRGraph) -> bool:
    """Whether graph.metadata says the graph is in the Loihi fixed-point format."""
    return quantization_scheme(graph) == SCHEME


# -- metadata: written by quantization, read here only ----------------------------------------
def neuron_metadata(du: int, dv: int, vth: int | None, bias_mant: np.ndarray,
                    bias_exp: np.ndarray, state_scale: float,
                    current: np.ndarray | None = None) -> dict:
    """The `loihi.*` keys of one neuron node (vth None: a non-spiking readout; current: the
    constant synaptic input per neuron, or None)."""
    meta = {"loihi.du": int(du), "loihi.dv": int(dv), "loihi.bias_mant": np.asarray(bias_mant),
            "loihi.bias_exp": np.asarray(bias_exp), "loihi.state_scale": float(state_scale)}
    if vth is not None:
        meta["loihi.vth"] = int(vth)
    if current is not None:
        meta["loihi.current"] = np.asarray(current)
    return meta


def synapse_metadata(weight_exp: int, bits: int) -> dict:
    """The `loihi.*` keys of one synapse node."""
    return {"loihi.weight_exp": int(weight_exp), "loihi.num_weight_bits": int(bits)}


def _meta_ints(name: str, node: nir.NIRNode, key: str, low: int, high: int,
               size: int | None = None) -> np.ndarray | int:
    """An integer metadata value in [low, high]: one value (size None) or per neuron."""
    meta = node.metadata or {}
    if key not in meta:
        raise UnsupportedError(f"node {name!r}: metadata {key!r} missing; quantize the graph "
                               "with the Loihi scheme first (neurocompile quantize --scheme loihi)")
    try:
        raw = np.asarray(meta[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise UnsupportedError(f"node {name!r}: metadata {key!r} must be integers in "
                               f"[{low}, {high}], got {meta[key]!r}") from None
    if raw.size == 0 or not np.all(np.isfinite(raw)):
        raise UnsupportedError(f"node {name!r}: metadata {key!r} must be integers in "
                               f"[{low}, {high}], got {raw.reshape(-1)[:4].tolist()}")
    vals = np.rint(raw).astype(np.int64)
    if np.any(vals != raw) or np.any(vals < low) or np.any(vals > high):
        raise UnsupportedError(f"node {name!r}: metadata {key!r} must be integers in "
                               f"[{low}, {high}], got {raw.min():g}..{raw.max():g}")
    if size is None:
        if vals.size != 1:
            raise UnsupportedError(f"node {name!r}: metadata {key!r} must be one value per "
                                   f"population, got {vals.size}")
        return int(vals.reshape(-1)[0])
    if vals.size not in (1, size):
        raise UnsupportedError(f"node {name!r}: metadata {key!r} has {vals.size} values for "
                               f"{size} neurons")
    return np.broadcast_to(vals.reshape(-1), (size,)).copy()


@dataclass(frozen=True)
class LoihiNeuron:
    """Integer parameters of one population (the Lava LIF fixed-point variables)."""

    du: int
    dv: int
    vth: int | None  # None: non-spiking; outputs v
    bias_mant: np.ndarray
    bias_exp: np.ndarray
    state_scale: float  # integer units per float unit of u and v
    bias: np.ndarray  # bias_mant << bias_exp, as Lava adds it (int64)
    reset: str = "zero"  # float.RESET_RULES
    current: np.ndarray | None = None  # constant synaptic input per neuron (int64), or None

    @property
    def size(self) -> int:
        return int(self.bias_mant.size)


@dataclass(frozen=True)
class LoihiSynapse:
    """One synapse node: integer mantissas (float64 holding integers) and the shared exponent."""

    source: str
    target: str
    mantissas: np.ndarray  # (target size, source size)
    weight_exp: int
    bits: int


@dataclass(frozen=True)
class LoihiGraph:
    """Every integer parameter of a graph in the format, checked."""

    neurons: dict[str, LoihiNeuron]
    synapses: dict[str, LoihiSynapse]


def read_neuron(name: str, node: nir.NIRNode) -> LoihiNeuron:
    """The integer parameters of one neuron node, each checked against the format."""
    n = int(np.prod(np.asarray(node.output_type["output"]).reshape(-1)))
    spiking = isinstance(node, (nir.LIF, nir.CubaLIF, nir.IF))
    if spike_rule(name, node) != "single":
        raise UnsupportedError(f"node {name!r}: graded spikes (metadata 'spikes' = 'multi') "
                               "have no fixed-point implementation here; run in float, or "
                               "train with one spike per step (Sinabs: spike_fn=SingleSpike)")
    du = _meta_ints(name, node, "loihi.du", 0, DU_MAX)
    dv = _meta_ints(name, node, "loihi.dv", 0, DV_MAX)
    vth = _meta_ints(name, node, "loihi.vth", 0, VTH_MAX) if spiking else None
    mant = _meta_ints(name, node, "loihi.bias_mant", BIAS_MANT_MIN, BIAS_MANT_MAX, n)
    exp = _meta_ints(name, node, "loihi.bias_exp", BIAS_EXP_MIN, BIAS_EXP_MAX, n)
    try:
        scale = float(np.asarray((node.metadata or {}).get("loihi.state_scale", 1.0),
                                 dtype=np.float64).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        scale = float("nan")
    if not (np.isfinite(scale) and scale > 0):
        raise UnsupportedError(f"node {name!r}: metadata 'loihi.state_scale' must be a number "
                               f"> 0, got {(node.metadata or {}).get('loihi.state_scale')!r}")
    current = _meta_ints(name, node, "loihi.current", CURRENT_MIN, CURRENT_MAX, n) \
        if "loihi.current" in (node.metadata or {}) else None
    return LoihiNeuron(du, dv, vth, mant, exp, scale, wrap_int32(shift(mant, exp)),
                       reset_rule(name, node), current)


def read_synapse(name: str, node: nir.NIRNode, source: str, target: str) -> LoihiSynapse:
    """The integer weights of one synapse node, checked against its declared bit width."""
    meta = node.metadata or {}
    bits = _meta_ints(name, node, "loihi.num_weight_bits", MIN_WEIGHT_BITS, MAX_WEIGHT_BITS) \
        if "loihi.num_weight_bits" in meta else MAX_WEIGHT_BITS
    e = _meta_ints(name, node, "loihi.weight_exp", WEIGHT_EXP_MIN, WEIGHT_EXP_MAX)
    w = weights.dense(node.weight, np.float64)
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if w.size and (not np.all(np.isfinite(w)) or np.any(w != np.rint(w)) or np.any(w < low)
                   or np.any(w > high)):
        raise UnsupportedError(f"node {name!r}: weights must be integer mantissas in "
                               f"[{low}, {high}] (loihi.num_weight_bits = {bits}); got "
                               f"{np.nanmin(w):g}..{np.nanmax(w):g}")
    if isinstance(node, nir.Affine) and np.any(np.asarray(node.bias) != 0):
        raise UnsupportedError(f"node {name!r}: Affine bias must be 0 in the Loihi scheme "
                               "(the bias lives in the neuron's loihi.bias_mant)")
    return LoihiSynapse(source, target, w, e, bits)


def read_graph(graph: nir.NIRGraph) -> LoihiGraph:
    """Check a graph in the format and collect its integer parameters.

    Structure: every neuron input is one Affine/Linear fed straight by an Input or a neuron
    node; every node is of a type the format has (Input, Output, Affine, Linear, Delay, neurons).
    """
    if not is_quantized(graph):
        raise UnsupportedError(
            f"fixed point needs a graph quantized with the Loihi scheme (metadata "
            f"quantization='loihi', got {quantization_scheme(graph)!r}); run "
            "`neurocompile quantize --scheme loihi` first")
    preds = predecessors(graph)
    neurons: dict[str, LoihiNeuron] = {}
    synapses: dict[str, LoihiSynapse] = {}
    for name, node in graph.nodes.items():
        if not isinstance(node, ALLOWED_TYPES):
            raise UnsupportedError(f"node {name!r}: {type(node).__name__} has no fixed-point "
                                   "(Loihi) implementation")
        if isinstance(node, NEURON_TYPES):
            neurons[name] = read_neuron(name, node)
            for p in preds[name]:
                pnode = graph.nodes[p]
                src = preds[p]
                if not isinstance(pnode, SYNAPSE_TYPES) or len(src) != 1 or not isinstance(
                        graph.nodes[src[0]], (nir.Input,) + NEURON_TYPES):
                    raise UnsupportedError(
                        f"node {name!r}: in fixed point each input must be one Affine/Linear "
                        f"straight from an Input or neuron node; {p!r} "
                        f"({type(pnode).__name__}) is not")
                synapses[p] = read_synapse(p, pnode, src[0], name)
    return LoihiGraph(neurons, synapses)


# -- integer arithmetic -----------------------------------------------------------------------
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


def accumulate(mantissas: np.ndarray, weight_exp: int, x: np.ndarray) -> np.ndarray:
    """Dense's synaptic input for integer spikes x (L, in): int32((x @ m.T) << e), int64.

    One float64 product: exact while the integer sums stay below 2^53.
    """
    acc = np.rint(np.asarray(x, np.float64) @ mantissas.T).astype(np.int64)
    return wrap_int32(shift(acc, weight_exp))


def step(p: LoihiNeuron, u: np.ndarray, v: np.ndarray, a: np.ndarray
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One bit-accurate LIF step on int64 state (batch, n) and synaptic input a (int, as
    `accumulate` returns it); returns (u, v, spikes or v)."""
    if p.current is not None:  # the constant input arrives with the synaptic input
        a = wrap_int32(a) + p.current
    act = wrap_int32(wrap_int32(a) << ACT_SHIFT)
    prev = v > (p.vth << VTH_SHIFT) if p.vth is not None else None  # for the "_next" rules
    u = wrap_u(wrap_int32(decay(u, DECAY_UNITY - (p.du + DS_OFFSET)) + act))
    v = wrap_int32(decay(v, DECAY_UNITY - (p.dv + DM_OFFSET)) + u + p.bias)
    v = np.clip(v, -MAX_UV + 1, MAX_UV - 1)
    if p.vth is None:
        return u, v, v
    vth = p.vth << VTH_SHIFT
    if p.reset in ("subtract_next", "zero_next"):  # the reset of last step's spikes; none now
        v = np.where(prev, v - vth if p.reset == "subtract_next" else 0, v)
        return u, v, v > vth
    s = v > vth
    v = np.where(s, v - vth, v) if p.reset == "subtract" else np.where(s, 0, v)
    return u, v, s
