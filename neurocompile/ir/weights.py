"""Weight matrices dense or sparse: one set of helpers, so every layer handles both.

A Linear/Affine weight may be a NumPy array or, in memory, a `scipy.sparse` matrix (files stay
standard NIR: dense datasets, chunked and compressed when large). Graph memory then follows the
non-zero weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

# At compile time a dense matrix with at least this many entries and at most this density is
# run as CSR (measured: benchmarks/reference_sim.py).
CSR_MIN_ENTRIES = 1 << 16
CSR_MAX_DENSITY = 0.1


def is_sparse(w: Any) -> bool:
    return sp.issparse(w)


def shape(w: Any) -> tuple[int, ...]:
    return tuple(int(s) for s in (w.shape if is_sparse(w) else np.shape(w)))


def entries(w: Any) -> int:
    """Entries of the full matrix, zeros included."""
    return int(np.prod(shape(w), dtype=np.int64))


def nonzero(w: Any) -> int:
    if is_sparse(w):
        return int(np.count_nonzero(w.data))
    return int(np.count_nonzero(w))


def nonzero_per_column(w: Any) -> np.ndarray:
    """Non-zero weights in each column (the fan-out of each input)."""
    if is_sparse(w):
        c = sp.csc_matrix(w)
        c.eliminate_zeros()
        return np.diff(c.indptr).astype(np.int64)
    return np.count_nonzero(np.asarray(w), axis=0).astype(np.int64)


def values(w: Any) -> np.ndarray:
    """The stored values (all entries of a dense matrix, the non-zeros of a sparse one)."""
    return w.data if is_sparse(w) else np.asarray(w)


def dense(w: Any, dtype=None) -> np.ndarray:
    """The full matrix (a sparse one is expanded: for small matrices only)."""
    out = w.toarray() if is_sparse(w) else np.asarray(w)
    return out if dtype is None else out.astype(dtype, copy=False)


def as_csr(w: Any, dtype) -> sp.csr_matrix:
    m = sp.csr_matrix(w, dtype=dtype)
    m.eliminate_zeros()
    m.sort_indices()
    return m


def run_sparse(w: Any) -> bool:
    """Whether a weight runs as CSR: it is sparse already, or large and mostly zero."""
    if is_sparse(w):
        return True
    n = entries(w)
    return n >= CSR_MIN_ENTRIES and nonzero(w) <= CSR_MAX_DENSITY * n
