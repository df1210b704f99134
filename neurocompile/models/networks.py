"""SNN networks and the model zoo; every synaptic layer delivers one step late (docs/models.md).

Delay rule (the reference simulator's and Lava's): a neuron layer's input at step t is its
synaptic layer applied to the presynaptic spikes of step t-1; at t = 0 the synaptic layer is
applied to all-zero spikes, i.e. the neuron sees the bias only. Recurrent weights likewise see
the layer's own spikes of step t-1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neurocompile.errors import UnsupportedError
from neurocompile.models.neurons import LI, LIF, CubaLIF, NeuronLayer, zero_state
from neurocompile.semantics.inverse import neuron_node

MODEL_NAMES = ("ff", "rsnn", "hrsnn", "conv")
READOUT = "mean_membrane"


def classify(out: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """Logits (batch, n_out): the readout membrane averaged over time (axis 1); argmax = class."""
    if isinstance(out, torch.Tensor):
        return out.mean(dim=1)
    return np.asarray(out).mean(axis=1)


def shift(x: torch.Tensor) -> torch.Tensor:
    """Delay by one step along axis 1, with zeros at t = 0: what a synapse sees (delay rule)."""
    return torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)


class Affine(nn.Linear):
    """y = x @ W.T + b as two operations (as the reference does; addmm would fuse the bias)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        y = torch.matmul(x, self.weight.T)
        return y if self.bias is None else y + self.bias


class Conv2d(nn.Conv2d):
    """Conv2d with the bias added after the correlation (as the reference does)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        y = F.conv2d(x, self.weight, None, self.stride, self.padding, self.dilation, self.groups)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)


class SumPool2d(nn.Module):
    """Sum over k x k windows (NIR SumPool2d); with average=True divides by k*k (AvgPool2d)."""

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0,
                 average: bool = False):
        super().__init__()
        self.kernel_size = int(kernel_size)
        self.stride = int(kernel_size if stride is None else stride)
        self.padding = int(padding)
        self.average = bool(average)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        y = F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, divisor_override=1)
        return y / (self.kernel_size * self.kernel_size) if self.average else y


def _pow2(x: float) -> float:
    return float(2.0 ** round(math.log2(x)))


def _time_distributed(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply a per-sample layer to (batch, steps, *shape) by folding time into the batch."""
    b, t = x.shape[:2]
    y = layer(x.reshape(b * t, *x.shape[2:]))
    return y.reshape(b, t, *y.shape[1:])


def _reject_sparse_backward(model: str, sparse_backward: bool, b_th: float | None,
                            reason: str) -> None:
    """Raise UnsupportedError for sparse_backward=True (or a b_th) on a model without it."""
    if sparse_backward or b_th is not None:
        what = "sparse_backward=True" if sparse_backward else f"b_th={b_th}"
        raise UnsupportedError(f"model {model!r}: {what} is not supported (sparse backward): "
                               f"{reason}; it is available for model 'ff' only")


def _hidden_neuron(kind: str, n: int | tuple[int, ...], dt: float, tau_mem, tau_syn,
                   v_threshold: float, learn: Sequence[str] = ()) -> NeuronLayer:
    """A hidden spiking population with unit input gain (semantics.inverse.neuron_node)."""
    size = int(np.prod(n))
    if kind == "lif":
        node = neuron_node("LIF", dt=dt, n=size, tau_mem=tau_mem, v_threshold=v_threshold)
        return LIF(n, dt, tau=_pop(node.tau, n), r=_pop(node.r, n), v_threshold=v_threshold,
                   learn=learn)
    if kind == "cubalif":
        node = neuron_node("CubaLIF", dt=dt, n=size, tau_mem=tau_mem, tau_syn=tau_syn,
                           v_threshold=v_threshold)
        return CubaLIF(n, dt, tau_syn=_pop(node.tau_syn, n), tau_mem=_pop(node.tau_mem, n),
                       r=_pop(node.r, n), w_in=_pop(node.w_in, n), v_threshold=v_threshold,
                       learn=learn)
    raise ValueError(f"neuron must be 'lif' or 'cubalif', got {kind!r}")


def _pop(values: np.ndarray, shape: int | tuple[int, ...]) -> torch.Tensor:
    """A flat per-neuron array as a float64 tensor of the population's shape."""
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)
    return torch.as_tensor(np.asarray(values, np.float64).reshape(shape))


class SNN(nn.Module):
    """Base of the zoo networks: forward(x) -> (readout (batch, steps, n_out), {layer: spikes})."""

    name = ""

    def __init__(self, config: dict[str, Any]):
        super().__init__()
        self.config = dict(config)
        self.dt = float(config["dt"])

    def neuron_layers(self) -> dict[str, NeuronLayer]:
        """Neuron populations by (NIR node) name."""
        return {n: m for n, m in self.named_children() if isinstance(m, NeuronLayer)}

    @property
    def depth(self) -> int:
        """Synaptic layers from input to readout: the earliest step an input reaches the output."""
        raise NotImplementedError

    def _readout(self, s: torch.Tensor) -> torch.Tensor:
        i = self.fc_out(shift(s))
        out, _ = self.readout(i)
        return out


class FeedForwardSNN(SNN):
    """in -> [Affine -> LIF|CubaLIF] x N -> Affine -> LI readout.

    sparse_backward=True trains the hidden layers with the sparse spiking backward of
    Perez-Nieves & Goodman 2021 (neurocompile/models/sparse_backward.py, docs/sparse_backward.md):
    each fc<k> -> lif<k> pair runs as one sparse_lif call, and only neurons with
    |v - v_th| < b_th carry gradient (b_th None: 0.2 * v_th, the paper's band). The forward
    pass (spikes, readout) and the NIR export are bit for bit those of the default model. The
    backward is the paper's, not neurons.py's: surrogate 1 / (100 |v - v_th| + 1)^2 (beta =
    PAPER_BETA; the layers' `slope` is not used), zero outside the band, and the reset is not
    differentiated (the membrane gradient passes a spike step through the leak alone, where the
    default detach_reset multiplies it by 1 - s). The readout (fc_out -> LI) keeps autograd.
    """

    name = "ff"

    def __init__(self, n_in: int, n_out: int, n_hidden: int | Sequence[int] = 64, *,
                 neuron: str = "lif", dt: float = 1e-3, tau_mem: float = 20e-3,
                 tau_syn: float = 5e-3, v_threshold: float = 1.0, tau_out: float = 20e-3,
                 sparse_backward: bool = False, b_th: float | None = None):
        hidden = [int(n_hidden)] if isinstance(n_hidden, (int, np.integer)) else \
            [int(h) for h in n_hidden]
        sparse_backward = bool(sparse_backward)
        if b_th is not None:
            b_th = float(b_th)
            if not sparse_backward:
                raise UnsupportedError(f"model 'ff': b_th={b_th} is the band of the sparse "
                                       "backward and needs sparse_backward=True")
            if not b_th > 0:
                raise UnsupportedError(f"model 'ff': sparse-backward band half-width b_th must "
                                       f"be > 0, got {b_th}")
        super().__init__(dict(n_in=int(n_in), n_out=int(n_out), n_hidden=hidden, neuron=neuron,
                              dt=float(dt), tau_mem=float(tau_mem), tau_syn=float(tau_syn),
                              v_threshold=float(v_threshold), tau_out=float(tau_out),
                              sparse_backward=sparse_backward, b_th=b_th))
        self.sparse_backward = sparse_backward
        self.b_th = b_th
        self.n_layers = len(hidden)
        sizes = [int(n_in)] + hidden
        for k in range(1, len(sizes)):
            setattr(self, f"fc{k}", Affine(sizes[k - 1], sizes[k]))
            setattr(self, f"lif{k}", _hidden_neuron(neuron, sizes[k], dt, tau_mem, tau_syn,
                                                    v_threshold))
        self.fc_out = Affine(sizes[-1], int(n_out))
        self.readout = LI(int(n_out), dt, tau=tau_out)

    @property
    def depth(self) -> int:
        return self.n_layers + 1

    def band(self, k: int) -> float:
        """Sparse-backward band half-width of hidden layer k: b_th, or 0.2 * max |v_th|."""
        from neurocompile.models.sparse_backward import PAPER_BAND

        if self.b_th is not None:
            return self.b_th
        vth = getattr(self, f"lif{k}").values()["v_threshold"]
        return PAPER_BAND * float(vth.abs().max())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """x (batch, steps, n_in) -> (readout (batch, steps, n_out), {"lif1": ..., ...})."""
        if self.sparse_backward:
            return self._forward_sparse(x)
        spikes = {}
        s = x
        for k in range(1, self.n_layers + 1):
            s, _ = getattr(self, f"lif{k}")(getattr(self, f"fc{k}")(shift(s)))
            spikes[f"lif{k}"] = s
        return self._readout(s), spikes

    def _forward_sparse(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The same forward through sparse_lif; each layer's active set masks the next's dL/dx."""
        from neurocompile.models.sparse_backward import PAPER_BETA, sparse_lif, step_from_layer

        spikes = {}
        s, active = x, None
        for k in range(1, self.n_layers + 1):
            fc, lif = getattr(self, f"fc{k}"), getattr(self, f"lif{k}")
            s, active = sparse_lif(s, fc.weight, fc.bias, step_from_layer(lif),
                                   b_th=self.band(k), beta=PAPER_BETA, mode="sparse",
                                   input_active=active, delay=True)
            spikes[f"lif{k}"] = s
        return self._readout(s), spikes


class RSNN(SNN):
    """in -> Affine -> LIF|CubaLIF (+ Linear recurrent weight from its own spikes) -> Affine -> LI."""

    name = "rsnn"

    def __init__(self, n_in: int, n_out: int, n_hidden: int = 64, *, neuron: str = "lif",
                 dt: float = 1e-3, tau_mem: float = 20e-3, tau_syn: float = 5e-3,
                 v_threshold: float = 1.0, tau_out: float = 20e-3, sparse_backward: bool = False,
                 b_th: float | None = None):
        _reject_sparse_backward("rsnn", sparse_backward, b_th,
                                "its hidden layer lif1 has the recurrent weight rec1 and the "
                                "sparse backward is feed-forward only")
        super().__init__(dict(n_in=int(n_in), n_out=int(n_out), n_hidden=int(n_hidden),
                              neuron=neuron, dt=float(dt), tau_mem=float(tau_mem),
                              tau_syn=float(tau_syn), v_threshold=float(v_threshold),
                              tau_out=float(tau_out)))
        self.fc1 = Affine(int(n_in), int(n_hidden))
        self.lif1 = self._make_hidden()
        self.rec1 = nn.Linear(int(n_hidden), int(n_hidden), bias=False)
        with torch.no_grad():
            self.rec1.weight.mul_(0.5)
        self.fc_out = Affine(int(n_hidden), int(n_out))
        self.readout = LI(int(n_out), dt, tau=tau_out)

    def _make_hidden(self) -> NeuronLayer:
        c = self.config
        return _hidden_neuron(c["neuron"], c["n_hidden"], c["dt"], c["tau_mem"], c["tau_syn"],
                              c["v_threshold"])

    @property
    def depth(self) -> int:
        return 2

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """x (batch, steps, n_in) -> (readout (batch, steps, n_out), {"lif1": spikes})."""
        ff = self.fc1(shift(x))
        p = self.lif1.step_params(ff.dtype)
        state = zero_state(x.shape[0], self.lif1.shape, ff.dtype, ff.device)
        s = torch.zeros_like(state.v)
        outs = []
        for t in range(x.shape[1]):
            s, state = self.lif1.step(ff[:, t] + torch.matmul(s, self.rec1.weight.T), state, p)
            outs.append(s)
        s = torch.stack(outs, dim=1)
        return self._readout(s), {"lif1": s}


class HeteroRSNN(RSNN):
    """RSNN whose CubaLIF hidden neurons each learn their own tau_mem and tau_syn.

    Time constants start log-uniform in [tau/2, 2*tau] (seeded) and are clamped at tau_min
    (default dt) in use; export writes the clamped values, which are the ones the layer uses.
    """

    name = "hrsnn"

    def __init__(self, n_in: int, n_out: int, n_hidden: int = 64, *, dt: float = 1e-3,
                 tau_mem: float = 20e-3, tau_syn: float = 5e-3, v_threshold: float = 1.0,
                 tau_out: float = 20e-3, tau_min: float | None = None, neuron: str = "cubalif",
                 sparse_backward: bool = False, b_th: float | None = None):
        _reject_sparse_backward("hrsnn", sparse_backward, b_th,
                                "its CubaLIF layer lif1 learns per-neuron tau_mem/tau_syn (the "
                                "sparse backward needs time constants shared by the population "
                                "and has no tau gradient), and it is recurrent (rec1)")
        if neuron != "cubalif":
            raise ValueError(f"hrsnn uses CubaLIF neurons, got neuron={neuron!r}")
        self._tau_min = float(dt if tau_min is None else tau_min)
        super().__init__(n_in, n_out, n_hidden, neuron="cubalif", dt=dt, tau_mem=tau_mem,
                         tau_syn=tau_syn, v_threshold=v_threshold, tau_out=tau_out)
        self.config["tau_min"] = self._tau_min

    def _make_hidden(self) -> NeuronLayer:
        c = self.config
        n = c["n_hidden"]

        def spread(tau: float) -> torch.Tensor:
            lo, hi = math.log(tau / 2), math.log(tau * 2)
            return torch.exp(lo + (hi - lo) * torch.rand(n, dtype=torch.float64))

        tau_mem, tau_syn = spread(c["tau_mem"]), spread(c["tau_syn"])
        tau_mem, tau_syn = tau_mem.clamp(min=self._tau_min), tau_syn.clamp(min=self._tau_min)
        node = neuron_node("CubaLIF", dt=c["dt"], tau_mem=tau_mem.numpy(),
                           tau_syn=tau_syn.numpy(), v_threshold=c["v_threshold"])
        layer = CubaLIF(n, c["dt"], tau_syn=tau_syn, tau_mem=tau_mem, r=_pop(node.r, n),
                        w_in=_pop(node.w_in, n), v_threshold=c["v_threshold"],
                        learn=("tau_mem", "tau_syn"), tau_min=self._tau_min)
        # Units fixed by the config (not the random draw), so rebuilt models match.
        layer.tau_units = {"tau_mem": _pow2(c["tau_mem"]), "tau_syn": _pow2(c["tau_syn"])}
        with torch.no_grad():
            layer.raw_tau_mem.copy_(tau_mem / layer.tau_units["tau_mem"])
            layer.raw_tau_syn.copy_(tau_syn / layer.tau_units["tau_syn"])
        return layer


class ConvSNN(SNN):
    """(C, H, W) -> Conv2d -> LIF -> SumPool2d|AvgPool2d -> Flatten -> Affine -> LI readout."""

    name = "conv"

    def __init__(self, n_out: int, in_shape: Sequence[int] | None = None, *,
                 n_in: int | None = None, channels: int = 8, kernel_size: int = 3,
                 padding: int = 1, pool: int = 2, pool_kind: str = "sum", dt: float = 1e-3,
                 tau_mem: float = 20e-3, tau_syn: float = 5e-3, v_threshold: float = 1.0,
                 tau_out: float = 20e-3, neuron: str = "lif", sparse_backward: bool = False,
                 b_th: float | None = None):
        _reject_sparse_backward("conv", sparse_backward, b_th,
                                "its layer lif1 is fed by the convolution conv1 and the sparse "
                                "backward fuses a dense Affine weight matrix with the neuron")
        if in_shape is None:
            side = math.isqrt(int(n_in or 64))
            if n_in is not None and side * side != int(n_in):
                raise ValueError(f"conv: n_in={n_in} is not a square image; pass in_shape")
            in_shape = (1, side, side)
        in_shape = tuple(int(s) for s in in_shape)
        if len(in_shape) != 3:
            raise ValueError(f"conv: in_shape must be (C, H, W), got {in_shape}")
        if pool_kind not in ("sum", "avg"):
            raise ValueError(f"conv: pool_kind must be 'sum' or 'avg', got {pool_kind!r}")
        super().__init__(dict(n_out=int(n_out), in_shape=list(in_shape), channels=int(channels),
                              kernel_size=int(kernel_size), padding=int(padding), pool=int(pool),
                              pool_kind=pool_kind, dt=float(dt), tau_mem=float(tau_mem),
                              tau_syn=float(tau_syn), v_threshold=float(v_threshold),
                              tau_out=float(tau_out), neuron=neuron))
        c, h, w = in_shape
        self.in_shape = in_shape
        self.conv1 = Conv2d(c, int(channels), int(kernel_size), padding=int(padding))
        h1, w1 = h + 2 * padding - kernel_size + 1, w + 2 * padding - kernel_size + 1
        self.conv_shape = (int(channels), h1, w1)
        self.lif1 = _hidden_neuron(neuron, self.conv_shape, dt, tau_mem, tau_syn, v_threshold)
        self.pool1 = SumPool2d(pool, average=pool_kind == "avg")
        self.pool_shape = (int(channels), (h1 - pool) // pool + 1, (w1 - pool) // pool + 1)
        self.fc_out = Affine(int(np.prod(self.pool_shape)), int(n_out))
        self.readout = LI(int(n_out), dt, tau=tau_out)

    @property
    def depth(self) -> int:
        return 2

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """x (batch, steps, C, H, W) or (batch, steps, C*H*W) -> (readout, {"lif1": flat spikes})."""
        if x.dim() == 3:
            x = x.reshape(*x.shape[:2], *self.in_shape)
        s, _ = self.lif1(_time_distributed(self.conv1, shift(x)))
        pooled = _time_distributed(self.pool1, s).flatten(2)
        return self._readout(pooled), {"lif1": s.flatten(2)}


_ZOO: dict[str, type[SNN]] = {"ff": FeedForwardSNN, "rsnn": RSNN, "hrsnn": HeteroRSNN,
                              "conv": ConvSNN}


def build_model(name: str, seed: int | None = None, **kwargs) -> SNN:
    """Build a zoo model by name ("ff", "rsnn", "hrsnn", "conv"); seed fixes the initial weights."""
    if name not in _ZOO:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}")
    if seed is None:
        return _ZOO[name](**kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return _ZOO[name](**kwargs)
