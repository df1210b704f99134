"""Quantization passes: symmetric int8 per layer, and Loihi fixed point.

Both deep-copy the input graph and return ``(new_graph, PassReport)``. The Loihi format itself
(constants, metadata keys, the integer arithmetic) is `neurocompile.semantics.loihi`.

int8 (``quantize_int8``)
------------------------
Per weighted node (Affine, Linear, Conv1d, Conv2d): ``scale = max|W| / q`` with
``q = 2^(bits-1) - 1``; ``W_int = clip(rint(W / scale), -q, q)``; the node stores the
dequantized ``W_int * scale`` and metadata ``"int8.scale"``, ``"int8.bits"``. Biases stay
float (they are added once per step, not per synapse). ``|W - W_deq| <= scale / 2``.

Loihi fixed point (``quantize_loihi``)
--------------------------------------
Target arithmetic: Lava's ``PyDenseModelBitAcc`` and ``PyLifModelBitAcc``
(lava/proc/dense/models.py, lava/proc/lif/models.py, lava-nc 0.10.0). Integer state,
per step (the bit-exact version is ``neurocompile/semantics/loihi.py``)::

    a[t]  = (sum_j m_ij * s_j[t-1]) << e            # >> -e for e < 0 (floor)
    u_q   = trunc(u_q * (4096 - (du_q + 1)) / 4096) + (a << 6)     # then 24-bit wrap
    v_q   = trunc(v_q * (4096 - dv_q) / 4096) + u_q + (bias_mant << bias_exp)  # clip 24-bit
    spike = v_q > (vth_q << 6);  v_q = 0 where spike

The float model (neurocompile/semantics/float.py) is ``u = u (1 - du) + gain W s;
v = v (1 - dv) + u + bias; spike = v > v_th``. Each neuron population P gets one state
scale S (integer units per float unit: ``u_q ~ S u``, ``v_q ~ S v``) and all Affine/Linear
nodes feeding P share one weight exponent e. With ``E = gain[:, None] * W`` (the float
current a spike adds) and ``q = 2^(b-1) - 1`` (b = ``bits``)::

    m_ij      = rint(E_ij * S / 2^(6+e))             in [-2^(b-1), 2^(b-1) - 1]
    du_q      = rint(4096 du) - 1                    in [0, 4095]   (Lava ds_offset = 1)
    dv_q      = rint(4096 dv)                        in [0, 4095]   (dm_offset = 0)
    vth_q     = rint(v_th * S / 2^6)                 in [0, 2^17 - 1], one per population
    bias_mant = rint(bias * S / 2^bias_exp)          in [-4096, 4095], bias_exp in [0, 7]
                (smallest bias_exp that fits, per neuron)

so the synaptic input into u is ``(W s) * gain * S`` up to rounding: the weight step is
``2^(6+e) / (S * gain)`` and ``|E - m 2^(6+e) / S| <= 2^(6+e) / (2 S)``.

Choosing S and e: ``S_max = 2^(23 - headroom_bits) / max(v_th)`` (so ``vth_q << 6`` stays
``headroom_bits`` below the 24-bit state range; u may grow to 2^headroom_bits thresholds
before it wraps), also ``S_max <= 4095 * 2^7 / max|bias|`` and ``S_max <= 2^6 limit /
max|c|`` (c and its limit below); non-spiking populations use
``2^(23 - headroom_bits) / max_i sum_j |E_ij|``. Then ``e = floor(log2(max|E| S_max /
(q 2^6)))`` clamped to [-8, 7] and ``S = q 2^(6+e) / max|E|`` (so the largest weight
maps to exactly +-q), or ``S = S_max`` when e hit -8. ``state_scale`` forces S per population
(e is then the smallest that fits).

Back to float (the float fields of the quantized graph): the Affine/Linear ``weight``
holds the mantissas m (as float), the Affine bias is 0, and the neuron node is rewritten
so that ``gain' = 2^(6+e) / S``, ``du' = (du_q + 1) / 4096``, ``dv' = dv_q / 4096``,
``bias' = bias_mant 2^bias_exp / S``, ``v_th' = vth_q 2^6 / S`` (LIF: tau = dt/dv',
r = gain'/dv', v_leak = bias'/dv'; CubaLIF: tau_syn = dt/du', tau_mem = dt/dv', w_in kept,
r = gain'/(dv' du' w_in); IF: r = gain'). Multiplying that float model by S gives the
integer model without the truncations, so the float simulator still runs the graph in
the original units. Metadata: graph ``"quantization" = "loihi"``; synapses
``"loihi.weight_exp"``, ``"loihi.num_weight_bits"``; neurons ``"loihi.du"``, ``"loihi.dv"``,
``"loihi.vth"`` (spiking only), ``"loihi.bias_mant"``, ``"loihi.bias_exp"``,
``"loihi.state_scale"`` (S, to read non-spiking outputs back in float units) and, for a
bias before a population with du < 1, ``"loihi.current"``.

A non-zero Affine bias b into a population with du = 1 (LIF, IF-like current) is folded
exactly into the neuron bias (gain * b). With du < 1 (CubaLIF, CubaLI) the bias persists in u:
it is a constant current c = gain * sum_k b_k added to u every step, quantized as
``loihi.current = rint(c S / 2^6)`` (integer, in the units of Dense's output: the fixed-point
step adds it to a before a << 6), bounded by the format's range and so that its steady state
in u, ``current 2^6 4096 / (du_q + 1)``, stays within the 24-bit u (``S_max`` is lowered to
fit; at a forced scale it is an error, or clipped with ``clip=True``). The format keeps every
Affine bias 0 and NIR's CubaLIF has no field for a constant input to u, so the float fields
of the quantized graph do not carry this current: such a graph runs as quantized in fixed
point only (the reference's ``fixed_point=True``, Lava's ``fixed_pt``). An IF node has no
bias: an Affine bias into it is refused. Values that do not fit raise UnsupportedError
naming the node, parameter, range and value; ``clip=True`` clips them into range instead and
lists what was clipped in the report notes.

Lava mapping note: Lava's Dense clips weights to 8 bits and drops ``8 - b + 1`` low bits
for mixed-sign weights, so a mantissa m is given to Lava as ``m << (9 - b)`` with
``sign_mode=MIXED`` and ``weight_exp - (9 - b)``; the shifted sum is then identical.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any

import nir
import numpy as np

from neurocompile import config
from neurocompile.errors import UnsupportedError
from neurocompile.ir import weights
from neurocompile.ir.graph import NEURON_TYPES, predecessors, successors
from neurocompile.ir.validate import check_graph
from neurocompile.passes.report import PassReport, compare_graphs
from neurocompile.semantics import loihi
from neurocompile.semantics.float import discretise, graph_dt
from neurocompile.semantics.inverse import neuron_node
from neurocompile.semantics.loihi import (
    ACT_SHIFT,
    BIAS_EXP_MAX,
    BIAS_EXP_MIN,
    BIAS_MANT_MAX,
    BIAS_MANT_MIN,
    DECAY_UNITY,
    DM_OFFSET,
    DS_OFFSET,
    DU_MAX,
    DV_MAX,
    MAX_UV,
    MAX_WEIGHT_BITS,
    UV_BITS,
    VTH_MAX,
    VTH_SHIFT,
    WEIGHT_EXP_MAX,
    WEIGHT_EXP_MIN,
)

DENSE_TYPES = (nir.Affine, nir.Linear)
INT8_TYPES = (nir.Affine, nir.Linear, nir.Conv1d, nir.Conv2d)


def _check_bits(bits: int, low: int = 2) -> int:
    if not isinstance(bits, (int, np.integer)) or not (low <= int(bits) <= MAX_WEIGHT_BITS):
        raise UnsupportedError(f"bits must be an integer in [{low}, {MAX_WEIGHT_BITS}], "
                               f"got {bits!r}")
    return int(bits)


# -- int8 -----------------------------------------------------------------------------------
def quantize_int8(graph: nir.NIRGraph, bits: int = 8, nodes: list[str] | None = None
                  ) -> tuple[nir.NIRGraph, PassReport]:
    """Symmetric per-layer weight quantization; weights are stored dequantized (see docstring)."""
    bits = _check_bits(bits)
    q = 2 ** (bits - 1) - 1
    out = copy.deepcopy(graph)
    names = [n for n, node in out.nodes.items() if isinstance(node, INT8_TYPES)]
    if nodes is not None:
        bad = sorted(set(nodes) - set(names))
        if bad:
            raise UnsupportedError(f"cannot quantize node(s) {bad}: not weighted nodes")
        names = list(nodes)
    extra: dict[str, dict[str, Any]] = {}
    for name in names:
        node = out.nodes[name]
        w = weights.dense(node.weight, np.float64)
        amax = float(np.max(np.abs(w))) if w.size else 0.0
        scale = amax / q if amax > 0 else 1.0
        w_int = np.clip(np.rint(w / scale), -q, q)
        deq = (w_int * scale).astype(weights.values(node.weight).dtype)
        meta = dict(node.metadata or {})
        meta.update({"int8.scale": float(scale), "int8.bits": bits})
        out.nodes[name] = dataclasses.replace(node, weight=deq, metadata=meta)
        extra[name] = {"scale": scale, "max_abs_error": float(np.max(np.abs(deq - w), initial=0))}
    out.metadata = dict(out.metadata or {})
    out.metadata["quantization"] = "int8"
    return out, compare_graphs("quantize", {"scheme": "int8", "bits": bits}, graph, out, extra)


# -- Loihi fixed point ------------------------------------------------------------------------
class _Checker:
    """Collects clipped values (clip=True) or raises UnsupportedError (clip=False)."""

    def __init__(self, clip: bool):
        self.clip = clip
        self.notes: list[str] = []

    def fit(self, node: str, param: str, values: np.ndarray, low: float, high: float,
            hint: str = "") -> np.ndarray:
        values = np.asarray(values)
        bad = (values < low) | (values > high)
        if not np.any(bad):
            return values
        msg = (f"node {node!r}: {param} needs values in [{low:g}, {high:g}] but has "
               f"{int(bad.sum())} outside (min {values.min():g}, max {values.max():g})"
               + (f"; {hint}" if hint else ""))
        if not self.clip:
            raise UnsupportedError(msg + "; pass clip=True (--clip) to clip them")
        self.notes.append("clipped: " + msg)
        return np.clip(values, low, high)


def _uniform(node: str, param: str, values: np.ndarray, why: str) -> int:
    values = np.asarray(values).reshape(-1)
    if values.size and values.min() != values.max():
        raise UnsupportedError(f"node {node!r}: {param} must be one value per population "
                               f"({why}); got values from {values.min()} to {values.max()}")
    return int(values[0]) if values.size else 0


def _check_structure(graph: nir.NIRGraph) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    preds, succs = predecessors(graph), successors(graph)
    for name, node in graph.nodes.items():
        if isinstance(node, DENSE_TYPES):
            if len(succs[name]) != 1 or not isinstance(graph.nodes[succs[name][0]], NEURON_TYPES):
                raise UnsupportedError(
                    f"node {name!r}: the Loihi scheme needs each Affine/Linear to feed exactly "
                    f"one neuron node; it feeds {succs[name]}")
        elif isinstance(node, NEURON_TYPES):
            bad = [p for p in preds[name] if not isinstance(graph.nodes[p], DENSE_TYPES)]
            if bad:
                raise UnsupportedError(
                    f"node {name!r}: the Loihi scheme needs every input of a neuron node to be "
                    f"an Affine/Linear; {bad} are not")
            if len(np.asarray(node.output_type["output"]).reshape(-1)) != 1:
                raise UnsupportedError(f"node {name!r}: the Loihi scheme needs 1-D populations")
        elif not isinstance(node, (nir.Input, nir.Output)):
            raise UnsupportedError(
                f"node {name!r}: {type(node).__name__} is not supported by the Loihi scheme "
                "(supported: Input, Affine, Linear, LIF, CubaLIF, IF, LI, CubaLI, Output)")
    return preds, succs


def _floor_log2(x: float) -> int:
    e = int(np.floor(np.log2(x)))
    while 2.0 ** (e + 1) <= x:  # guard against log2 rounding
        e += 1
    while 2.0 ** e > x:
        e -= 1
    return e


def _choose_scale(name: str, spiking: bool, vth: np.ndarray | None, bias: np.ndarray,
                  current: np.ndarray, current_limit: int, effective: list[np.ndarray],
                  q: int, headroom_bits: int,
                  forced: float | None, chk: _Checker) -> tuple[float, int]:
    """The state scale S and shared weight exponent e of one population (module docstring)."""
    amax = max((float(np.max(np.abs(E))) for E in effective if E.size), default=0.0)
    unit = q * 2.0 ** ACT_SHIFT
    if forced is not None:
        S = float(forced)
        if not (S > 0 and np.isfinite(S)):
            raise UnsupportedError(f"node {name!r}: state_scale must be > 0, got {forced!r}")
        if amax == 0:
            return S, 0
        x = amax * S / unit
        e = _floor_log2(x)
        if 2.0 ** e < x:  # smallest e with amax * S / 2^(6+e) <= q
            e += 1
        e = max(e, WEIGHT_EXP_MIN)
        if e > WEIGHT_EXP_MAX:
            chk.fit(name, "weight_exp (weights into this population at the given state_scale)",
                    np.array([e]), WEIGHT_EXP_MIN, WEIGHT_EXP_MAX)
            e = WEIGHT_EXP_MAX
        return S, e
    top = 2.0 ** (UV_BITS - 1 - headroom_bits)
    if spiking and vth is not None and np.max(vth) > 0:
        s_max = top / float(np.max(vth))
    else:
        fan_in = sum(np.abs(E).sum(axis=1) for E in effective) if effective else np.zeros(1)
        s_max = top / max(float(np.max(fan_in, initial=0.0)), 1.0)
    bmax = float(np.max(np.abs(bias), initial=0.0))
    if bmax > 0:
        s_max = min(s_max, BIAS_MANT_MAX * 2.0 ** BIAS_EXP_MAX / bmax)
    cmax = float(np.max(np.abs(current), initial=0.0))
    if cmax > 0:
        s_max = min(s_max, current_limit * 2.0 ** ACT_SHIFT / cmax)
    if amax == 0:
        return s_max, 0
    e = _floor_log2(amax * s_max / unit)
    if e > WEIGHT_EXP_MAX:
        e = WEIGHT_EXP_MAX
    elif e < WEIGHT_EXP_MIN:
        return s_max, WEIGHT_EXP_MIN
    return unit * 2.0 ** e / amax, e


def _current_limit(du_q: int) -> int:
    """Largest |loihi.current| for a population: within the format's range, and its steady
    state in u, current * 2^6 * 4096 / (du + 1), within the 24-bit u (so it never wraps)."""
    steady = (MAX_UV - 1) * (du_q + DS_OFFSET) // (DECAY_UNITY << ACT_SHIFT)
    return int(min(loihi.CURRENT_MAX, -loihi.CURRENT_MIN, steady))


def _bias_fixed(name: str, bias_scaled: np.ndarray, chk: _Checker) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron (mantissa, exponent): smallest exponent whose mantissa fits 13 bits."""
    exp = np.full(bias_scaled.shape, BIAS_EXP_MIN, dtype=np.int64)
    mant = np.rint(bias_scaled).astype(np.int64)
    for k in range(BIAS_EXP_MIN, BIAS_EXP_MAX + 1):
        m_k = np.rint(bias_scaled / 2.0 ** k).astype(np.int64)
        todo = (mant < BIAS_MANT_MIN) | (mant > BIAS_MANT_MAX)
        exp[todo], mant[todo] = k, m_k[todo]
    mant = chk.fit(name, "bias_mant (bias * S / 2^bias_exp with bias_exp = 7)", mant,
                   BIAS_MANT_MIN, BIAS_MANT_MAX).astype(np.int64)
    return mant, exp


def quantize_loihi(graph: nir.NIRGraph, bits: int = 8, *, clip: bool = False,
                   headroom_bits: int = 4,
                   state_scale: float | dict[str, float] | None = None
                   ) -> tuple[nir.NIRGraph, PassReport]:
    """Quantize to Loihi fixed point (Lava bit-accurate models); the mapping is in the docstring."""
    bits = _check_bits(bits)
    if not isinstance(headroom_bits, (int, np.integer)) or not 0 <= headroom_bits <= 16:
        raise UnsupportedError(f"headroom_bits must be an integer in [0, 16], got {headroom_bits!r}")
    check_graph(graph)
    dt = graph_dt(graph)
    preds, _ = _check_structure(graph)
    q = 2 ** (bits - 1) - 1
    chk = _Checker(clip)
    out = copy.deepcopy(graph)
    extra: dict[str, dict[str, Any]] = {}
    for name, node in graph.nodes.items():
        if not isinstance(node, NEURON_TYPES):
            continue
        p = discretise(name, node, dt)
        du, dv = p.du.reshape(-1), p.dv.reshape(-1)
        gain, bias = p.gain.reshape(-1), p.bias.reshape(-1).copy()
        vth = None if p.v_threshold is None else p.v_threshold.reshape(-1)
        syn = preds[name]
        effective = [gain[:, None] * weights.dense(graph.nodes[k].weight, np.float64)
                     for k in syn]
        # Affine biases: into the neuron bias where u does not persist (du = 1), else a
        # constant current into u (loihi.current).
        current = np.zeros_like(gain)
        for k in syn:
            snode = graph.nodes[k]
            b = np.asarray(snode.bias, np.float64) if isinstance(snode, nir.Affine) else None
            if b is None or not np.any(b != 0):
                continue
            if isinstance(node, nir.IF):
                raise UnsupportedError(
                    f"node {k!r}: Affine bias must be 0 in the Loihi scheme and cannot move into "
                    f"IF node {name!r} (IF has no bias); range [{b.min():g}, {b.max():g}]")
            if np.all(du == 1):
                bias = bias + gain * b
            else:
                current = current + gain * b
        # Decays.
        du_q = chk.fit(name, "du (rint(4096*dt/tau_syn) - 1)", np.rint(du * DECAY_UNITY) - DS_OFFSET,
                       0, DU_MAX, "tau_syn must lie in [dt, 8192*dt] roughly")
        dv_q = np.rint(dv * DECAY_UNITY) - DM_OFFSET
        low_dv = 0 if isinstance(node, nir.IF) else 1
        dv_q = chk.fit(name, "dv (rint(4096*dt/tau_mem))", dv_q, low_dv, DV_MAX,
                       "tau_mem must lie in (dt, 8192*dt) roughly")
        du_i = _uniform(name, "du", du_q, "Lava's LIF holds one du")
        dv_i = _uniform(name, "dv", dv_q, "Lava's LIF holds one dv")
        forced = state_scale.get(name) if isinstance(state_scale, dict) else state_scale
        c_lim = _current_limit(du_i)
        S, e = _choose_scale(name, vth is not None, vth, bias, current, c_lim, effective, q,
                             headroom_bits, forced, chk)
        step = 2.0 ** (ACT_SHIFT + e)
        mants = [chk.fit(k, f"weight mantissa (b={bits})", np.rint(E * S / step),
                         -(q + 1), q) for k, E in zip(syn, effective)]
        mant_b, exp_b = _bias_fixed(name, bias * S, chk)
        info: dict[str, Any] = {"du": du_i, "dv": dv_i, "state_scale": S, "weight_exp": e}
        current_i = None
        if np.any(current != 0):
            current_i = chk.fit(name, "current (rint(gain * Affine bias * S / 64), "
                                "loihi.current; its steady state in u within 24 bits)",
                                np.rint(current * S / 2.0 ** ACT_SHIFT), -c_lim,
                                c_lim).astype(np.int64)
            info["current_max_abs_error"] = float(np.max(np.abs(
                current_i * 2.0 ** ACT_SHIFT / S - current)))
            chk.notes.append(f"node {name!r}: the Affine bias before it is its loihi.current "
                             "(a constant input to u), which only fixed point runs; its float "
                             "fields do not carry it")
        vth_i = None
        if vth is not None:
            vth_i = _uniform(name, "v_threshold", chk.fit(
                name, "vth (rint(v_threshold*S/64))", np.rint(vth * S / 2.0 ** VTH_SHIFT),
                0, VTH_MAX), "Lava's LIF holds one vth")
            info["vth"] = vth_i
            vth_deq = vth_i * 2.0 ** VTH_SHIFT / S
            info["vth_rel_error"] = float(np.max(np.abs(vth_deq - vth)) / max(np.max(vth), 1e-300))
        meta = dict(node.metadata or {})
        meta.update(loihi.neuron_metadata(du_i, dv_i, vth_i, mant_b, exp_b, S, current_i))
        out.nodes[name] = _dequantized_neuron(name, node, du_i, dv_i, step / S,
                                              mant_b * 2.0 ** exp_b / S,
                                              None if vth is None else vth_deq, dt, meta)
        extra[name] = info
        for k, m in zip(syn, mants):
            snode = graph.nodes[k]
            smeta = dict(snode.metadata or {})
            smeta.update(loihi.synapse_metadata(e, bits))
            changes: dict[str, Any] = {"weight": m.astype(np.float64), "metadata": smeta}
            if isinstance(snode, nir.Affine):
                changes["bias"] = np.zeros(m.shape[0])
            out.nodes[k] = dataclasses.replace(snode, **changes)
            E = effective[syn.index(k)]
            extra[k] = {"weight_exp": int(e), "max_mantissa": int(np.max(np.abs(m), initial=0)),
                        "max_abs_error": float(np.max(np.abs(m * step / S - E), initial=0))}
    out.metadata = dict(out.metadata or {})
    out.metadata["quantization"] = loihi.SCHEME
    out.metadata["dt"] = dt
    options = {"scheme": "loihi", "bits": bits, "clip": clip, "headroom_bits": headroom_bits}
    report = compare_graphs("quantize", options, graph, out, extra)
    report.notes.extend(chk.notes)
    return out, report


def _dequantized_neuron(name: str, node: nir.NIRNode, du_q: int, dv_q: int, gain: float,
                        bias: np.ndarray, vth: np.ndarray | None, dt: float,
                        meta: dict[str, Any]) -> nir.NIRNode:
    """The float node whose discretisation is the quantized population (module docstring)."""
    n = bias.shape[0]
    kind = type(node).__name__
    du = (du_q + DS_OFFSET) / DECAY_UNITY
    dv = (dv_q + DM_OFFSET) / DECAY_UNITY
    w_in = getattr(node, "w_in", None)
    if kind == "IF":
        new = neuron_node(kind, dt=dt, n=n, gain=gain, v_threshold=vth)
    else:
        try:
            new = neuron_node(kind, dt=dt, n=n, dv=dv, du=du if "Cuba" in kind else None,
                              gain=gain, bias=bias, v_threshold=vth, w_in=w_in)
        except UnsupportedError as exc:
            raise UnsupportedError(f"node {name!r}: {exc}") from None
    return dataclasses.replace(new, metadata=meta)


def loihi_effective_weights(graph: nir.NIRGraph, name: str) -> np.ndarray:
    """Float current one spike adds, per synapse, in a Loihi-quantized graph: m 2^(6+e) / S."""
    node = graph.nodes[name]
    post = successors(graph)[name][0]
    S = loihi.read_neuron(post, graph.nodes[post]).state_scale
    e = loihi.read_synapse(name, node, "", post).weight_exp
    return weights.dense(node.weight, np.float64) * 2.0 ** (ACT_SHIFT + e) / S


# -- registry entries --------------------------------------------------------------------------
@dataclass(frozen=True)
class Int8Options:
    """Options of `quantize --scheme int8`."""

    bits: int = config.setting(8, min=2, max=8, help="Weight bits (symmetric, per layer).")
    nodes: tuple[str, ...] | None = config.setting(None, help="Only these weighted nodes.")


@dataclass(frozen=True)
class LoihiOptions:
    """Options of `quantize --scheme loihi`."""

    bits: int = config.setting(8, min=2, max=8, help="Weight mantissa bits.")
    clip: bool = config.setting(False, help="Clip values Loihi cannot represent instead of "
                                            "failing.")
    headroom_bits: int = config.setting(4, min=0, max=16,
                                        help="Bits of u range kept above the threshold.")
    state_scale: float | None = config.setting(None, min=0, min_open=True,
                                               help="Force the state scale S of every "
                                                    "population.")


def run_int8(graph: nir.NIRGraph, options: Int8Options, activity=None
             ) -> tuple[nir.NIRGraph, PassReport]:
    return quantize_int8(graph, options.bits, list(options.nodes) if options.nodes else None)


def run_loihi(graph: nir.NIRGraph, options: LoihiOptions, activity=None
              ) -> tuple[nir.NIRGraph, PassReport]:
    return quantize_loihi(graph, options.bits, clip=options.clip,
                          headroom_bits=options.headroom_bits, state_scale=options.state_scale)
