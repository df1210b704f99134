"""x @ W.T for a sparse weight W: a CSR product over every weight, or an event-driven gather
of the weight columns of the inputs that are non-zero, whichever costs less at the activity
of each call.

The gather copies W's columns (CSC) of each row's active inputs and multiplies them by those
inputs, with SciPy's own compiled kernels (called directly: through the public slicing API their
checks cost more than the work at one step's activity). For each output it adds the terms in increasing input order, starting from zero, as
SciPy's CSR product does, so both give the same values bit for bit, in float64 and float32.

Cost model (measured on the 2-core reference machine and a 16-core host restricted to 2 cores,
benchmarks/sparse_product.py): the CSR product costs about 1 ns per stored weight and row; the
gather about GATHER_NS ns per synaptic event plus ROW_OVERHEAD_NS per row with active inputs.
"""

from __future__ import annotations

import numpy as np

from neurocompile.ir import weights

CSR_NS = 1.0
GATHER_NS = 2.5
ROW_OVERHEAD_NS = 10_000.0

try:  # SciPy's compiled kernels behind column slicing and CSC products, without the checks
    from scipy.sparse._sparsetools import csc_matvec, csr_row_index
except ImportError:  # pragma: no cover - other SciPy layouts: the public (slower) slicing
    csc_matvec = csr_row_index = None


class SparseProduct:
    """y = x @ W.T (+ bias) for x of shape (rows, in); W (out, in) a scipy.sparse matrix or
    an array."""

    def __init__(self, w, dtype, bias: np.ndarray | None = None):
        self.dtype = np.dtype(dtype)
        self.csr = weights.as_csr(w, self.dtype)
        self.csc = self.csr.tocsc()
        self.csc.sort_indices()
        self.bias = None if bias is None else np.asarray(bias, self.dtype)
        self.n_out, self.n_in = self.csr.shape
        self.nnz = int(self.csr.nnz)
        self.mean_fan_out = self.nnz / max(self.n_in, 1)

    def use_gather(self, rows: int, active_rows: int, active: int) -> bool:
        """Whether the gather is estimated cheaper: `active` non-zero inputs in `active_rows`
        of the `rows` rows."""
        gather = active_rows * ROW_OVERHEAD_NS + active * self.mean_fan_out * GATHER_NS
        return gather < CSR_NS * self.nnz * rows

    def __call__(self, x: np.ndarray) -> np.ndarray:
        rows = x.shape[0]
        if rows == 1:
            active = [np.flatnonzero(x[0])]
        else:
            r, c = np.nonzero(x)
            cuts = np.searchsorted(r, np.arange(rows + 1))
            active = [c[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
        n_active = sum(len(a) for a in active)
        active_rows = sum(1 for a in active if len(a))
        if self.use_gather(rows, active_rows, n_active):
            y = self._gather(x, active)
        else:
            y = np.ascontiguousarray((self.csr @ x.astype(self.dtype, copy=False).T).T)
        return y if self.bias is None else y + self.bias

    def _gather(self, x: np.ndarray, active: list[np.ndarray]) -> np.ndarray:
        """Each row: the columns of its active inputs times those inputs (CSC mat-vec)."""
        y = np.zeros((x.shape[0], self.n_out), self.dtype)
        for row, cols in enumerate(active):
            if len(cols):
                y[row] = self._columns_times(cols, x[row, cols])
        return y

    def _columns_times(self, cols: np.ndarray, values: np.ndarray) -> np.ndarray:
        """W[:, cols] @ values: the selected columns copied in order, then one CSC mat-vec."""
        values = np.ascontiguousarray(values, self.dtype)
        if csr_row_index is None:
            return self.csc[:, cols] @ values
        ptr, ind, dat = self.csc.indptr, self.csc.indices, self.csc.data
        cols = cols.astype(ptr.dtype, copy=False)
        sub_ptr = np.zeros(len(cols) + 1, ptr.dtype)
        np.cumsum(ptr[cols + 1] - ptr[cols], out=sub_ptr[1:])
        sub_ind = np.empty(int(sub_ptr[-1]), ind.dtype)
        sub_dat = np.empty(int(sub_ptr[-1]), dat.dtype)
        csr_row_index(len(cols), cols, ptr, ind, dat, sub_ind, sub_dat)  # CSC columns = CSR rows
        y = np.zeros(self.n_out, self.dtype)
        csc_matvec(self.n_out, len(cols), sub_ptr, sub_ind, sub_dat, values, y)
        return y
