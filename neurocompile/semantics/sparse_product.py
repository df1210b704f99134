"""x @ W.T for a sparse weight W: a CSR product, or an event-driven gather over the inputs
that are non-zero, whichever costs less at the activity of each call.

The gather stores W column by column, padded to the largest fan-out (ELLPACK layout), and sums
the columns of the active inputs with one `np.bincount`. For each output it adds the terms in
increasing input order, as SciPy's CSR product does, so both give the same values (in float64
exactly; in float32 the gather sums with `np.add.at` in float32, in the same order).

Cost model (measured on the 2-core reference machine, benchmarks/sparse_product.py): the CSR
product costs about 1 ns per stored weight and row; the gather about GATHER_NS ns per synaptic
event while its output fits in cache, GATHER_NS_LARGE beyond. The gather is used when its
estimate is lower, and only when padding costs at most MAX_PADDING of the stored weights.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

GATHER_NS = 8.0
GATHER_NS_LARGE = 32.0
CACHE_VALUES = 1 << 15  # outputs (rows x columns) that count as "fits in cache"
MAX_PADDING = 2.0


class SparseProduct:
    """y = x @ W.T for x of shape (rows, in); W (out, in) any scipy.sparse matrix or array."""

    def __init__(self, w, dtype, bias: np.ndarray | None = None):
        self.dtype = np.dtype(dtype)
        self.csr = sp.csr_matrix(w, dtype=self.dtype)
        self.csr.eliminate_zeros()
        self.csr.sort_indices()
        self.bias = None if bias is None else np.asarray(bias, self.dtype)
        self.n_out, self.n_in = self.csr.shape
        self.nnz = int(self.csr.nnz)
        self.idx = self.val = None
        lens = np.bincount(self.csr.indices, minlength=self.n_in)
        width = int(lens.max()) if self.n_in and self.nnz else 0
        if width and self.n_in * width <= MAX_PADDING * self.nnz:
            self._build_columns(lens, width)
        self.mean_fan_out = self.nnz / max(self.n_in, 1)

    def _build_columns(self, lens: np.ndarray, width: int) -> None:
        """Each input's (output index, weight) pairs, padded with (n_out, 0) to `width`."""
        csc = self.csr.tocsc()
        csc.sort_indices()
        col = np.repeat(np.arange(self.n_in), lens)
        slot = np.arange(csc.nnz) - np.repeat(csc.indptr[:-1], lens)
        self.idx = np.full((self.n_in, width), self.n_out, np.intp)
        self.val = np.zeros((self.n_in, width), self.dtype)
        self.idx[col, slot] = csc.indices
        self.val[col, slot] = csc.data

    def use_gather(self, rows: int, active: int) -> bool:
        """Whether the gather is estimated cheaper for `active` non-zero inputs over `rows`."""
        if self.idx is None:
            return False
        per_event = GATHER_NS if rows * (self.n_out + 1) <= CACHE_VALUES else GATHER_NS_LARGE
        return active * self.idx.shape[1] * per_event < self.nnz * rows

    def __call__(self, x: np.ndarray) -> np.ndarray:
        rows = x.shape[0]
        if self.idx is not None:
            r, c = np.nonzero(x)
            if self.use_gather(rows, len(r)):
                y = self._gather(x, r, c)
                return y if self.bias is None else y + self.bias
        y = np.ascontiguousarray((self.csr @ x.astype(self.dtype, copy=False).T).T)
        return y if self.bias is None else y + self.bias

    def _gather(self, x: np.ndarray, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        rows, m = x.shape[0], self.n_out + 1  # bin n_out of each row collects the padding
        index = self.idx[c]
        if rows > 1:
            index = index + (r * m)[:, None]
        vals = self.val[c]
        xv = x[r, c]
        if xv.dtype != bool and not np.all(xv == 1):
            vals = vals * xv.astype(self.dtype)[:, None]
        if self.dtype == np.float64:
            y = np.bincount(index.ravel(), vals.ravel(), minlength=rows * m)
        else:
            y = np.zeros(rows * m, self.dtype)
            np.add.at(y, index.ravel(), vals.ravel())
        return y.reshape(rows, m)[:, :self.n_out]
