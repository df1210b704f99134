"""Pure NumPy implementations of NIR's stateless nodes, over a leading batch axis."""

from __future__ import annotations

import nir
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from neurocompile.ir.shapes import conv_padding, flatten_output_shape, pair


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


def apply(node: nir.NIRNode, x: np.ndarray, dtype=np.float64) -> np.ndarray:
    """Evaluate a stateless node on x of shape (L, *in_shape)."""
    if isinstance(node, nir.Affine):
        return x.astype(dtype, copy=False) @ np.asarray(node.weight, dtype).T + np.asarray(node.bias, dtype)
    if isinstance(node, nir.Linear):
        return x.astype(dtype, copy=False) @ np.asarray(node.weight, dtype).T
    if isinstance(node, nir.Scale):
        return x.astype(dtype, copy=False) * np.asarray(node.scale, dtype)
    if isinstance(node, nir.Flatten):
        return x.reshape((x.shape[0],) + flatten_output_shape(node, x.shape[1:]))
    if isinstance(node, nir.Threshold):
        return (x > np.asarray(node.threshold, dtype)).astype(dtype)
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        return conv(node, x.astype(dtype, copy=False)).astype(dtype, copy=False)
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        return pool(node, x.astype(dtype, copy=False)).astype(dtype, copy=False)
    raise TypeError(f"{type(node).__name__} is not a stateless node")


def fan_out(node: nir.NIRNode, in_shape: tuple[int, ...]) -> np.ndarray:
    """Number of non-zero weights each input element reaches (shape in_shape)."""
    if isinstance(node, (nir.Affine, nir.Linear)):
        return np.count_nonzero(node.weight, axis=0).astype(np.int64)
    if isinstance(node, nir.Scale):
        return np.broadcast_to(np.asarray(node.scale) != 0, in_shape).astype(np.int64)
    # Convolutions and pools: apply the operator with its weights replaced by their non-zero
    # mask to each unit input; the output sum is that input's fan-out.
    n = int(np.prod(in_shape))
    out = np.empty(n, dtype=np.int64)
    chunk = max(1, 2**22 // max(1, n))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        basis = np.zeros((stop - start, n))
        basis[np.arange(stop - start), np.arange(start, stop)] = 1.0
        basis = basis.reshape((stop - start,) + tuple(in_shape))
        if isinstance(node, (nir.Conv1d, nir.Conv2d)):
            y = conv(node, basis, weight=(np.asarray(node.weight) != 0).astype(np.float64), bias=False)
        else:
            k = pair(node.kernel_size)
            win = _windows(basis, k, pair(node.stride), (1, 1), pair(node.padding))
            y = win.sum(axis=(-2, -1))
        out[start:stop] = np.rint(y.reshape(stop - start, -1).sum(axis=1)).astype(np.int64)
    return out.reshape(in_shape)
