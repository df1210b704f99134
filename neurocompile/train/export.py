"""torch <-> NIR bridge for the model zoo: to_nir(model) and from_nir(graph) (docs/models.md).

The graph is built by hand from the known module structure, one NIR node per module and
named like the module (input, fc1, lif1, rec1, ..., conv1, pool1, flat, fc_out, readout,
output). Neuron nodes carry the float64 NIR parameters the layers use, so the reference
simulator computes exactly what the torch model computes.
"""

from __future__ import annotations

import json
from typing import Any

import nir
import numpy as np
import torch
from torch import nn

from neurocompile.errors import UnsupportedError
from neurocompile.models.networks import (
    MODEL_NAMES,
    READOUT,
    SNN,
    Affine,
    Conv2d,
    ConvSNN,
    FeedForwardSNN,
    SumPool2d,
    build_model,
)
from neurocompile.models.neurons import NeuronLayer
from neurocompile.semantics.float import graph_dt

_NIR_NEURONS = {"LIF": nir.LIF, "CubaLIF": nir.CubaLIF, "IF": nir.IF, "LI": nir.LI,
                "CubaLI": nir.CubaLI}


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _module_node(module: nn.Module, in_shape: tuple[int, ...] | None = None) -> nir.NIRNode:
    """The NIR node of one of our modules (weights in the model's dtype, neurons in float64)."""
    if isinstance(module, NeuronLayer):
        return _NIR_NEURONS[module.kind](**module.nir_params())
    if isinstance(module, Conv2d):
        assert in_shape is not None
        return nir.Conv2d(input_shape=np.array(in_shape[1:]), weight=_np(module.weight),
                          stride=np.array(module.stride), padding=np.array(module.padding),
                          dilation=np.array(module.dilation), groups=int(module.groups),
                          bias=_np(module.bias) if module.bias is not None
                          else np.zeros(module.out_channels, _np(module.weight).dtype))
    if isinstance(module, SumPool2d):
        cls = nir.AvgPool2d if module.average else nir.SumPool2d
        return cls(kernel_size=np.array([module.kernel_size] * 2),
                   stride=np.array([module.stride] * 2), padding=np.array([module.padding] * 2))
    if isinstance(module, nn.Linear):  # Affine is a Linear with a bias
        if module.bias is None:
            return nir.Linear(weight=_np(module.weight))
        return nir.Affine(weight=_np(module.weight), bias=_np(module.bias))
    raise UnsupportedError(f"cannot export module {type(module).__name__} to NIR")


def _structure(model: SNN) -> tuple[tuple[int, ...], list[str], list[tuple[str, str]]]:
    """(input shape, node order, edges) of a zoo model; nodes named like the modules."""
    c = model.config
    if model.name == "ff":
        assert isinstance(model, FeedForwardSNN)
        chain = ["input"]
        for k in range(1, model.n_layers + 1):
            chain += [f"fc{k}", f"lif{k}"]
        chain += ["fc_out", "readout", "output"]
        return (c["n_in"],), chain, list(zip(chain[:-1], chain[1:]))
    if model.name in ("rsnn", "hrsnn"):
        order = ["input", "fc1", "lif1", "rec1", "fc_out", "readout", "output"]
        edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "rec1"), ("rec1", "lif1"),
                 ("lif1", "fc_out"), ("fc_out", "readout"), ("readout", "output")]
        return (c["n_in"],), order, edges
    if model.name == "conv":
        chain = ["input", "conv1", "lif1", "pool1", "flat", "fc_out", "readout", "output"]
        return tuple(c["in_shape"]), chain, list(zip(chain[:-1], chain[1:]))
    raise UnsupportedError(f"cannot export model {model.name!r}; known: {', '.join(MODEL_NAMES)}")


def to_nir(model: SNN, dt: float | None = None, *, spike_outputs: bool = False) -> nir.NIRGraph:
    """Export a zoo model to a NIR graph that the reference simulator runs step for step.

    dt defaults to model.dt; any other dt would change the dynamics and raises. With
    spike_outputs, every spiking layer also gets an Output node "spikes_<layer>".
    """
    if not isinstance(model, SNN):
        raise UnsupportedError(f"to_nir exports zoo models (neurocompile.models.SNN), "
                               f"got {type(model).__name__}")
    if dt is not None and float(dt) != model.dt:
        raise UnsupportedError(f"model {model.name!r} was built for dt={model.dt}; exporting it "
                               f"with dt={dt} would change its dynamics")
    in_shape, order, edges = _structure(model)
    modules = dict(model.named_children())
    nodes: dict[str, nir.NIRNode] = {}
    for name in order:
        if name == "input":
            nodes[name] = nir.Input(input_type={"input": np.array(in_shape)})
        elif name == "output":
            nodes[name] = nir.Output(output_type={"output": np.array([model.config["n_out"]])})
        elif name == "flat":
            assert isinstance(model, ConvSNN)
            nodes[name] = nir.Flatten(input_type={"input": np.array(model.pool_shape)},
                                      start_dim=0, end_dim=-1)
        else:
            nodes[name] = _module_node(modules[name], in_shape)
    if spike_outputs:
        for name, layer in model.neuron_layers().items():
            if layer.spiking:
                nodes[f"spikes_{name}"] = nir.Output(
                    output_type={"output": np.array(layer.shape)})
                edges.append((name, f"spikes_{name}"))
    metadata = {"dt": model.dt, "model": model.name, "model_config": json.dumps(model.config),
                "readout": READOUT, "source": "neurocompile.models"}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def _meta_str(meta: dict[str, Any], key: str) -> str | None:
    value = meta.get(key)
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else None
    if isinstance(value, bytes):
        value = value.decode()
    return None if value is None else str(value)


def _copy(dst: torch.Tensor, src, node: str, attr: str) -> None:
    arr = np.asarray(src)
    if tuple(arr.shape) != tuple(dst.shape):
        raise UnsupportedError(f"node {node!r}: {attr} has shape {arr.shape}, the model "
                               f"(from graph metadata) expects {tuple(dst.shape)}")
    dst.copy_(torch.as_tensor(arr, dtype=dst.dtype))


def from_nir(graph: nir.NIRGraph, dtype: torch.dtype | None = None) -> SNN:
    """Rebuild a zoo model from a graph written by to_nir (metadata 'model', 'model_config').

    dtype defaults to the dtype of the graph's weights (float32 stays float32, else float64),
    so from_nir(to_nir(m)) computes exactly what m computes.
    """
    meta = dict(getattr(graph, "metadata", None) or {})
    name, config = _meta_str(meta, "model"), _meta_str(meta, "model_config")
    if name not in MODEL_NAMES or config is None:
        raise UnsupportedError(
            f"graph has no neurocompile model metadata (metadata 'model'={name!r}); "
            f"from_nir rebuilds graphs written by to_nir, with models {', '.join(MODEL_NAMES)}")
    model = build_model(name, **json.loads(config))
    dt = graph_dt(graph)
    if dt != model.dt:
        raise UnsupportedError(f"graph metadata dt={dt} differs from the model config's "
                               f"dt={model.dt}")
    _, order, _ = _structure(model)
    modules = dict(model.named_children())
    weights = [np.asarray(graph.nodes[n].weight) for n in order
               if n in modules and hasattr(graph.nodes.get(n), "weight")]
    if dtype is None:
        dtype = torch.float32 if weights and all(w.dtype == np.float32 for w in weights) \
            else torch.float64
    model = model.to(dtype)
    with torch.no_grad():
        for node_name in order:
            if node_name not in modules:
                continue
            if node_name not in graph.nodes:
                raise UnsupportedError(f"graph lacks node {node_name!r} of model {name!r}")
            module, node = modules[node_name], graph.nodes[node_name]
            if isinstance(module, NeuronLayer):
                if type(node) is not type(_module_node(module)):
                    raise UnsupportedError(f"node {node_name!r}: expected {module.kind}, "
                                           f"got {type(node).__name__}")
                params = {}
                for k in module.values():
                    value = np.asarray(getattr(node, k), dtype=np.float64)
                    try:
                        params[k] = np.broadcast_to(value, module.shape)
                    except ValueError:
                        raise UnsupportedError(
                            f"node {node_name!r}: {k} has shape {value.shape}, the model "
                            f"(from graph metadata) expects {module.shape}") from None
                module.load_nir_params(params)
            elif isinstance(module, (nn.Linear, Conv2d)):
                _copy(module.weight, node.weight, node_name, "weight")
                if module.bias is not None:
                    _copy(module.bias, node.bias, node_name, "bias")
    return model


@torch.no_grad()
def round_weights_(model: nn.Module, frac_bits: int = 16) -> nn.Module:
    """Snap every synaptic weight and bias to a multiple of 2**-frac_bits, in place.

    With 0/1 spike inputs, sums of such weights are exact in floating point (while they stay
    below 2**(mantissa bits - frac_bits)), so the result does not depend on the order a BLAS
    library sums in: torch (MKL) and the reference simulator (OpenBLAS) then agree bit for bit.
    """
    scale = float(2 ** int(frac_bits))
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d, Affine)):
            for p in (module.weight, module.bias):
                if p is not None:
                    p.copy_(torch.round(p * scale) / scale)
    return model
