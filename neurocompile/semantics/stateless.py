"""The stateless nodes of the contract (Affine, Linear, Scale, Flatten, Threshold, Conv, pools)
in NumPy, over a leading batch axis; the reference simulator and the Lava lowering use them."""

from __future__ import annotations

import nir
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from neurocompile.ir import weights
from neurocompile.ir.shapes import conv_padding, flatten_output_shape, pair
from neurocompile.semantics.sparse_product import SparseProduct


def _windows(x: np.ndarray, kernel: tuple[int, ...], stride: tuple[int, ...],
             dilation: tuple[int, ...], padding: tuple[int, ...]) -> np.ndarray:
    """(L, C, *spatial) -> (L, C, *out_spatial, *kernel) strided views, zero-padded."""
    nd = len(kernel)
    if any(padding):
        pad = [(0, 0), (0, 0)] + [(p, p) for p in padding]
        x = np.pad(x, pad)
    span = tuple(d * (k - 1) + 1 for d, k in zip(dilation, kernel))
    win = sliding_window_view(x, span, axis=tuple(range(2, 2 + nd)))
    index = (slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride) \
        + tuple(slice(None, None, d) for d in dilation)
    return win[index]


def conv(node: nir.Conv1d | nir.Conv2d, x: np.ndarray, weight: np.ndarray | None = None,
         bias: bool = True) -> np.ndarray:
    """Cross-correlation as in torch.nn.ConvNd; x is (L, C_in, *spatial)."""
    w = node.weight if weight is None else weight
    nd = w.ndim - 2
    spatial = x.shape[2:]
    pad = conv_padding(node, spatial)
    win = _windows(x, w.shape[2:], pair(node.stride, nd), pair(node.dilation, nd), pad)
    groups = int(node.groups)
    cin_g, cout_g = w.shape[1], w.shape[0] // groups
    letters = "hw"[:nd] if nd == 2 else "h"
    k_letters = "ij"[:nd]
    spec = f"lc{letters}{k_letters},oc{k_letters}->lo{letters}"
    outs = [np.einsum(spec, win[:, g * cin_g:(g + 1) * cin_g], w[g * cout_g:(g + 1) * cout_g],
                      optimize=True) for g in range(groups)]
    out = outs[0] if groups == 1 else np.concatenate(outs, axis=1)
    if bias and node.bias is not None:
        out = out + np.asarray(node.bias).reshape((1, -1) + (1,) * nd)
    return out


def pool(node: nir.SumPool2d | nir.AvgPool2d, x: np.ndarray) -> np.ndarray:
    k = pair(node.kernel_size)
    win = _windows(x, k, pair(node.stride), (1, 1), pair(node.padding))
    out = win.sum(axis=(-2, -1))
    if isinstance(node, nir.AvgPool2d):
        out = out / (k[0] * k[1])
    return out


def prepare(node: nir.NIRNode, dtype=np.float64):
    """The function x (L, *in_shape) -> y of a stateless node, its parameters cast once.

    Affine is x @ W.T + b as two operations (as the torch models compute it).
    """
    dtype = np.dtype(dtype)
    if isinstance(node, (nir.Affine, nir.Linear)) and weights.run_sparse(node.weight):
        bias = None if isinstance(node, nir.Linear) else node.bias
        return SparseProduct(node.weight, dtype, bias)  # CSR or event-driven gather, per call
    if isinstance(node, (nir.Affine, nir.Linear)):
        wt = np.asarray(node.weight, dtype).T  # a view: the layout the equivalence tests pin
        if isinstance(node, nir.Linear):
            return lambda x: x.astype(dtype, copy=False) @ wt
        b = np.asarray(node.bias, dtype)
        return lambda x: x.astype(dtype, copy=False) @ wt + b
    if isinstance(node, nir.Scale):
        scale = np.asarray(node.scale, dtype)
        return lambda x: x.astype(dtype, copy=False) * scale
    if isinstance(node, nir.Flatten):
        return lambda x: x.reshape((x.shape[0],) + flatten_output_shape(node, x.shape[1:]))
    if isinstance(node, nir.Threshold):
        th = np.asarray(node.threshold, dtype)
        return lambda x: (x > th).astype(dtype)
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        kernel = np.asarray(node.weight, dtype)
        cbias = None if node.bias is None else np.asarray(node.bias, dtype)

        def conv_op(x: np.ndarray) -> np.ndarray:
            out = conv(node, x.astype(dtype, copy=False), kernel, bias=False)
            if cbias is not None:
                out = out + cbias.reshape((1, -1) + (1,) * (kernel.ndim - 2))
            return out.astype(dtype, copy=False)

        return conv_op
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        return lambda x: pool(node, x.astype(dtype, copy=False)).astype(dtype, copy=False)
    raise TypeError(f"{type(node).__name__} is not a stateless node")


def apply(node: nir.NIRNode, x: np.ndarray, dtype=np.float64) -> np.ndarray:
    """Evaluate a stateless node once on x of shape (L, *in_shape)."""
    return prepare(node, dtype)(x)
