"""A NIR graph as an ONNX model of the contract: the step function with explicit state, or the
whole sequence (that step inside an ONNX Scan over the time axis).

The step graph computes one time step exactly as the reference simulator does, node by node:

* latched nodes first, from the state: a neuron advances (u, v) on `pending.<n>` (the sum of
  its inputs at the previous step) in `semantics.float.step`'s operation order; a Delay reads
  its history;
* then the stateless nodes in topological order (Affine = MatMul then Add, Conv then Add of
  the bias, SumPool as a grouped all-ones Conv, AvgPool that sum divided by the window size);
* then each latched node's input sum of this step becomes its next `pending` (Delay: is pushed
  onto its history).

State tensors (each (batch, ...)): `pending.<n>`, `u.<n>`, `v.<n>` per neuron node,
`history.<n>` (batch, D*N) per Delay node (block k holds the input of k+1 steps ago). Before
step 0, u and v are zero and `pending`/`history` hold the zero response (the biases of the
chain feeding the node); the sequence model builds that state itself, the step model stores it
in its metadata (`neurocompile.initial_state`, JSON, shapes (1, ...)).

Only onnx and numpy are needed to build a model; onnxruntime runs it (targets/onnx/target.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import nir
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from neurocompile.ir.graph import LATCHED_TYPES, NEURON_TYPES, topological_order
from neurocompile.ir.shapes import conv_padding, pair
from neurocompile.targets.reference.simulator import Program

OPSET = 17
IR_VERSION = 8
ONNX_DTYPES = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}
FORMS = ("sequence", "step")
INITIAL_STATE_KEY = "neurocompile.initial_state"


@dataclass
class State:
    """One state tensor of the step function: its name, per-sample shape and initial value."""

    name: str
    shape: tuple[int, ...]
    initial: np.ndarray  # (1, *shape)


@dataclass
class StepGraph:
    """The step function as ONNX nodes, before it becomes a model or a Scan body."""

    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)
    states: list[State] = field(default_factory=list)
    inputs: dict[str, tuple[int, ...]] = field(default_factory=dict)  # Input node -> shape
    outputs: dict[str, tuple[int, ...]] = field(default_factory=dict)  # step outputs -> shape
    next_state: dict[str, str] = field(default_factory=dict)  # state -> value holding its next


class _Builder:
    def __init__(self, prog: Program, dtype: str, record: bool):
        self.prog, self.record = prog, record
        self.np_dtype = np.dtype(dtype)
        self.elem = ONNX_DTYPES[dtype]
        self.g = StepGraph()
        self.count = 0

    def fresh(self, hint: str) -> str:
        self.count += 1
        return f"{hint}#{self.count}"

    def const(self, hint: str, value, dtype=None) -> str:
        name = self.fresh(f"const.{hint}")
        arr = np.asarray(value, self.np_dtype if dtype is None else dtype)
        self.g.initializers.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str, **attrs) -> str:
        out = self.fresh(hint)
        self.g.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def add_chain(self, parts: list[str], hint: str) -> str:
        total = parts[0]
        for part in parts[1:]:
            total = self.op("Add", [total, part], hint)
        return total

    # -- nodes ----------------------------------------------------------------------------
    def neuron(self, name: str, pending: str) -> str:
        d = self.prog.neurons[name]
        shape = self.prog.out_shapes[name]
        u_in, v_in = f"u.{name}", f"v.{name}"
        zeros = np.zeros((1,) + shape, self.np_dtype)
        self.g.states += [State(u_in, shape, zeros), State(v_in, shape, zeros)]
        cur = pending if d.unit_gain else self.op("Mul", [self.const(f"{name}.gain", d.gain),
                                                          pending], f"{name}.cur")
        if d.no_current:
            u = self.op("Identity", [cur], f"{name}.u")
        else:
            kept = self.op("Mul", [u_in, self.const(f"{name}.keep_u", d.keep_u)], f"{name}.ku")
            u = self.op("Add", [kept, cur], f"{name}.u")
        kept_v = self.op("Mul", [v_in, self.const(f"{name}.keep_v", d.keep_v)], f"{name}.kv")
        v = self.op("Add", [kept_v, u], f"{name}.v")
        if not d.no_bias:
            v = self.op("Add", [v, self.const(f"{name}.bias", d.bias)], f"{name}.vb")
        self.g.next_state[u_in] = u
        if d.v_threshold is None:
            self.g.next_state[v_in] = v
            return v
        spikes = self.op("Greater", [v, self.const(f"{name}.vth", d.v_threshold)],
                         f"{name}.spikes")
        self.g.next_state[v_in] = self.op("Where", [spikes, self.const("zero", 0.0), v],
                                          f"{name}.reset")
        return self.op("Cast", [spikes], f"{name}.out", to=self.elem)

    def delay_out(self, name: str) -> str:
        d = self.prog.delays[name].reshape(-1)
        n, big = d.size, int(d.max())
        hist = f"history.{name}"
        zero = self.latched_zero(name).reshape(1, n)
        self.g.states.append(State(hist, (big * n,), np.tile(zero, (1, big))))
        index = self.const(f"{name}.index", (d - 1) * n + np.arange(n), np.int64)
        flat = self.op("Gather", [hist, index], f"{name}.flat", axis=1)
        shape = self.const(f"{name}.shape", (-1,) + self.prog.out_shapes[name], np.int64)
        return self.op("Reshape", [flat, shape], f"{name}.out")

    def delay_push(self, name: str, x: str) -> None:
        d = self.prog.delays[name].reshape(-1)
        n, big = d.size, int(d.max())
        hist = f"history.{name}"
        flat = self.op("Reshape", [x, self.const(f"{name}.nshape", (-1, n), np.int64)],
                       f"{name}.in")
        if big == 1:
            self.g.next_state[hist] = self.op("Identity", [flat], f"{name}.next")
            return
        keep = self.op("Slice", [hist, self.const("zero_i", [0], np.int64),
                                 self.const(f"{name}.end", [(big - 1) * n], np.int64),
                                 self.const("one_i", [1], np.int64)], f"{name}.keep")
        self.g.next_state[hist] = self.op("Concat", [flat, keep], f"{name}.next", axis=1)

    def stateless(self, name: str, x: str) -> str:
        node = self.prog.graph.nodes[name]
        c = lambda hint, v, dt=None: self.const(f"{name}.{hint}", v, dt)  # noqa: E731
        if isinstance(node, (nir.Affine, nir.Linear)):
            y = self.op("MatMul", [x, c("wt", np.asarray(node.weight, np.float64).T)], name)
            if isinstance(node, nir.Affine):
                y = self.op("Add", [y, c("b", node.bias)], name)
            return y
        if isinstance(node, nir.Scale):
            return self.op("Mul", [x, c("scale", node.scale)], name)
        if isinstance(node, nir.Flatten):
            return self.op("Reshape", [x, c("shape", (-1,) + self.prog.out_shapes[name],
                                             np.int64)], name)
        if isinstance(node, nir.Threshold):
            above = self.op("Greater", [x, c("th", node.threshold)], name)
            return self.op("Cast", [above], name, to=self.elem)
        if isinstance(node, (nir.Conv1d, nir.Conv2d)):
            w = np.asarray(node.weight, np.float64)
            nd = w.ndim - 2
            pads = conv_padding(node, self.prog.in_shapes[name][1:])
            y = self.op("Conv", [x, c("w", w)], name, strides=list(pair(node.stride, nd)),
                        pads=list(pads) * 2, dilations=list(pair(node.dilation, nd)),
                        group=int(node.groups))
            if node.bias is not None:
                y = self.op("Add", [y, c("b", np.asarray(node.bias).reshape((-1,) + (1,) * nd))],
                            name)
            return y
        if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
            k, s, p = pair(node.kernel_size), pair(node.stride), pair(node.padding)
            channels = self.prog.in_shapes[name][0]
            y = self.op("Conv", [x, c("ones", np.ones((channels, 1) + k))], name,
                        strides=list(s), pads=list(p) * 2, group=int(channels))
            if isinstance(node, nir.AvgPool2d):
                y = self.op("Div", [y, c("window", k[0] * k[1])], name)
            return y
        raise TypeError(f"{type(node).__name__} is not a stateless node")

    def latched_zero(self, name: str) -> np.ndarray:
        return sum(self.prog.zero[p] for p in self.prog.preds[name]).astype(self.np_dtype)

    # -- the step -------------------------------------------------------------------------
    def build(self) -> StepGraph:
        prog, g = self.prog, self.g
        nodes = prog.graph.nodes
        value: dict[str, str] = {}
        latched = [n for n, node in nodes.items() if isinstance(node, LATCHED_TYPES)]
        for n in latched:
            if isinstance(nodes[n], NEURON_TYPES):
                pending = f"pending.{n}"
                g.states.append(State(pending, prog.in_shapes[n], self.latched_zero(n)))
                value[n] = self.neuron(n, pending)
            else:
                value[n] = self.delay_out(n)
        for n in topological_order(prog.graph, cut=LATCHED_TYPES):
            node = nodes[n]
            if n in value:
                continue
            if isinstance(node, nir.Input):
                g.inputs[n] = prog.out_shapes[n]
                value[n] = f"x.{n}"
                continue
            x = self.add_chain([value[p] for p in prog.preds[n]], f"{n}.in")
            value[n] = self.op("Identity", [x], f"y.{n}") if isinstance(node, nir.Output) \
                else self.stateless(n, x)
        for n in latched:
            x = self.add_chain([value[p] for p in prog.preds[n]], f"{n}.in")
            if isinstance(nodes[n], NEURON_TYPES):
                g.next_state[f"pending.{n}"] = x
            else:
                self.delay_push(n, x)
        for n, node in nodes.items():
            if isinstance(node, nir.Output):
                self._output(f"y.{n}", value[n], prog.out_shapes[n])
        if self.record:
            for n, node in nodes.items():
                if not isinstance(node, nir.Output):
                    self._output(f"value.{n}", value[n], prog.out_shapes[n])
        return g

    def _output(self, name: str, value: str, shape: tuple[int, ...]) -> None:
        self.g.nodes.append(helper.make_node("Identity", [value], [name], name=name))
        self.g.outputs[name] = shape


def _info(name: str, elem: int, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, list(shape))


def build_model(prog: Program, dtype: str = "float32", form: str = "sequence",
                record: bool = False) -> onnx.ModelProto:
    """The ONNX model of a reference Program (module docstring).

    step: inputs the states, then `x.<Input>` (batch, *shape); outputs the next states
    (`<state>.next`), then `y.<Output>` (and `value.<node>` with record).
    sequence: inputs `x.<Input>` (steps, batch, *shape); outputs `y.<Output>` (steps, batch,
    ...), and with record `value.<node>` for every node (what the counters are derived from).
    """
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    step = _Builder(prog, dtype, record).build()
    elem = ONNX_DTYPES[dtype]
    state_in = [_info(s.name, elem, ("batch",) + s.shape) for s in step.states]
    x_in = [_info(f"x.{n}", elem, ("batch",) + shape) for n, shape in step.inputs.items()]
    renames = [helper.make_node("Identity", [step.next_state[s.name]], [f"{s.name}.next"],
                                name=f"{s.name}.next") for s in step.states]
    state_out = [_info(f"{s.name}.next", elem, ("batch",) + s.shape) for s in step.states]
    y_out = [_info(n, elem, ("batch",) + shape) for n, shape in step.outputs.items()]
    body = helper.make_graph(step.nodes + renames, "step", state_in + x_in, state_out + y_out,
                             step.initializers)
    meta = {"dt": prog.dt, "form": form, "dtype": dtype}
    if form == "step":
        model = helper.make_model(body, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="neurocompile")
        meta[INITIAL_STATE_KEY] = {s.name: s.initial.tolist() for s in step.states}
    else:
        model = _sequence_model(step, body, elem)
    model.ir_version = IR_VERSION
    helper.set_model_props(model, {k: json.dumps(v) if not isinstance(v, str) else v
                                   for k, v in meta.items()})
    return model


def _sequence_model(step: StepGraph, body: onnx.GraphProto, elem: int) -> onnx.ModelProto:
    """The step function in a Scan over the time axis; the initial state broadcast over the
    batch of the first Input."""
    nodes, inits = [], []
    first = f"x.{next(iter(step.inputs))}"
    nodes.append(helper.make_node("Shape", [first], ["seq.shape"], start=1, end=2))
    init_names = []
    for s in step.states:
        init = f"init.{s.name}"
        inits.append(numpy_helper.from_array(
            np.ascontiguousarray(s.initial.astype(helper.tensor_dtype_to_np_dtype(elem))),
            f"{init}.value"))
        inits.append(numpy_helper.from_array(np.asarray(s.shape, np.int64), f"{init}.dims"))
        nodes.append(helper.make_node("Concat", ["seq.shape", f"{init}.dims"],
                                      [f"{init}.full"], axis=0))
        nodes.append(helper.make_node("Expand", [f"{init}.value", f"{init}.full"], [init]))
        init_names.append(init)
    finals = [f"final.{s.name}" for s in step.states]
    nodes.append(helper.make_node("Scan", init_names + [f"x.{n}" for n in step.inputs],
                                  finals + list(step.outputs), name="steps", body=body,
                                  num_scan_inputs=len(step.inputs)))
    x_in = [_info(f"x.{n}", elem, ("steps", "batch") + shape)
            for n, shape in step.inputs.items()]
    y_out = [_info(n, elem, ("steps", "batch") + shape) for n, shape in step.outputs.items()]
    graph = helper.make_graph(nodes, "sequence", x_in, y_out, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                             producer_name="neurocompile")


def initial_state(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """The step model's state before step 0, each (1, ...), from its metadata."""
    props = {p.key: p.value for p in model.metadata_props}
    if INITIAL_STATE_KEY not in props:
        raise ValueError(f"model has no {INITIAL_STATE_KEY!r} metadata: not a step model")
    return {k: np.asarray(v) for k, v in json.loads(props[INITIAL_STATE_KEY]).items()}
