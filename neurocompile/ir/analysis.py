"""Graph analyses that need no simulation: fan-out and connection counts of synaptic nodes."""

from __future__ import annotations

import nir
import numpy as np

from neurocompile.ir import weights
from neurocompile.ir.shapes import conv_padding, pair


def _taps(n_in: int, kernel: int, stride: int, dilation: int, padding: int) -> np.ndarray:
    """(n_in, kernel) bool: input i is read by kernel tap k at some output position.

    Cross-correlation reads padded index y*stride + k*dilation = i + padding, 0 <= y < n_out.
    """
    n_out = (n_in + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    i = np.arange(n_in)[:, None]
    k = np.arange(kernel)[None, :]
    num = i + padding - k * dilation
    return (num >= 0) & (num % stride == 0) & (num // stride < n_out)


def fan_out(node: nir.NIRNode, in_shape: tuple[int, ...], *, count_zeros: bool = False
            ) -> np.ndarray:
    """Weights each input element reaches (shape in_shape); non-zero weights only unless
    count_zeros. Convolutions and pools analytically, from kernel support, stride and padding."""
    if isinstance(node, (nir.Affine, nir.Linear)):
        rows, cols = weights.shape(node.weight)
        if count_zeros:
            return np.full(cols, rows, dtype=np.int64)
        return weights.nonzero_per_column(node.weight)
    if isinstance(node, nir.Scale):
        nz = np.ones(np.shape(node.scale), bool) if count_zeros else np.asarray(node.scale) != 0
        return np.broadcast_to(nz, in_shape).astype(np.int64)
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        w = np.asarray(node.weight)
        nd = w.ndim - 2
        spatial = tuple(in_shape[1:])
        stride, dil = pair(node.stride, nd), pair(node.dilation, nd)
        pad = conv_padding(node, spatial)
        taps = [_taps(spatial[a], w.shape[2 + a], stride[a], dil[a], pad[a]).astype(np.int64)
                for a in range(nd)]
        groups = int(node.groups)
        cout_g = w.shape[0] // groups
        nz = (np.ones(w.shape, np.int64) if count_zeros else (w != 0).astype(np.int64))
        spec = "ck,hk->ch" if nd == 1 else "ckl,hk,wl->chw"
        parts = [np.einsum(spec, nz[g * cout_g:(g + 1) * cout_g].sum(axis=0), *taps)
                 for g in range(groups)]
        return np.concatenate(parts, axis=0).astype(np.int64)
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        k, s, p = pair(node.kernel_size), pair(node.stride), pair(node.padding)
        c, h, w_ = in_shape
        rows = _taps(h, k[0], s[0], 1, p[0]).sum(axis=1)
        cols = _taps(w_, k[1], s[1], 1, p[1]).sum(axis=1)
        return np.broadcast_to(np.outer(rows, cols), (c, h, w_)).astype(np.int64)
    raise TypeError(f"{type(node).__name__} has no weights")


def connections(node: nir.NIRNode, in_shape: tuple[int, ...]) -> int:
    """Connections of a synaptic node counting zero weights: the MACs of one dense pass."""
    return int(fan_out(node, in_shape, count_zeros=True).sum())
