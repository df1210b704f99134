"""scipy.sparse weights: the same spikes, counters, pruning and files as the dense matrix."""

from __future__ import annotations

import nir
import numpy as np
import pytest
import scipy.sparse as sp

from neurocompile.analysis import record_activity
from neurocompile.ir import io as nio
from neurocompile.ir import weights
from neurocompile.ir.validate import validate
from neurocompile.passes.prune import activity_prune, magnitude_prune
from neurocompile.semantics import stateless
from neurocompile.targets.reference import simulate


def _graph(w_rec, n_in: int = 12, seed: int = 0) -> nir.NIRGraph:
    n = w_rec.shape[0]
    rng = np.random.default_rng(seed)
    w_in = rng.integers(-64, 64, (n, n_in)) / 64
    return nir.NIRGraph(
        nodes={"input": nir.Input(np.array([n_in])), "fc": nir.Linear(weight=w_in),
               "lif": nir.LIF(tau=np.full(n, 2e-3), r=np.full(n, 2.0), v_leak=np.zeros(n),
                              v_threshold=np.ones(n)),
               "rec": nir.Linear(weight=w_rec), "out": nir.Output(np.array([n]))},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "out")],
        metadata={"dt": 1e-3}, type_check=False)


def _sparse(n: int, density: float, seed: int = 1) -> sp.csr_matrix:
    w = sp.random(n, n, density=density, random_state=seed, format="csr")
    w.data = np.round((w.data - 0.5) * 128) / 64  # dyadic: sums exact in any order
    return w


@pytest.mark.parametrize("n, density", [(40, 0.2), (400, 0.01)])
def test_sparse_weights_give_the_dense_spikes_and_counters(n, density):
    w = _sparse(n, density)
    x = (np.random.default_rng(2).random((3, 60, 12)) < 0.3).astype(float)
    a = simulate(_graph(w), {"input": x})
    b = simulate(_graph(w.toarray()), {"input": x})
    np.testing.assert_array_equal(a.outputs["out"], b.outputs["out"])
    assert a.counters_dict() == b.counters_dict()
    assert a.total("spikes") > 50


def test_large_mostly_zero_dense_matrices_run_as_csr_and_small_ones_dense():
    big = _sparse(300, 0.02).toarray()
    assert weights.run_sparse(big) and not weights.run_sparse(big[:50, :50])
    node = nir.Linear(weight=big)
    x = (np.random.default_rng(0).random((7, 300)) < 0.2).astype(float)
    np.testing.assert_array_equal(stateless.prepare(node)(x), x @ big.T)


def test_validation_sees_inside_sparse_matrices():
    w = _sparse(30, 0.2)
    assert validate(_graph(w)) == []
    w.data[0] = np.nan
    assert any("NaN" in str(p) for p in validate(_graph(w)))
    bad = _graph(sp.csr_matrix((30, 29)))
    assert validate(bad) != []


def test_pruning_a_sparse_matrix_equals_pruning_its_dense_form():
    w = _sparse(60, 0.3)
    x = (np.random.default_rng(3).random((4, 40, 12)) < 0.3).astype(float)
    for scope in ("layer", "global"):
        s, _ = magnitude_prune(_graph(w), 0.9, scope=scope)
        d, _ = magnitude_prune(_graph(w.toarray()), 0.9, scope=scope)
        assert weights.is_sparse(s.nodes["rec"].weight)
        for name in ("fc", "rec"):
            np.testing.assert_array_equal(weights.dense(s.nodes[name].weight),
                                          np.asarray(d.nodes[name].weight))
    act = record_activity(_graph(w.toarray()), {"input": x})
    s, _ = activity_prune(_graph(w), act, 0.85)
    d, _ = activity_prune(_graph(w.toarray()), act, 0.85)
    np.testing.assert_array_equal(weights.dense(s.nodes["rec"].weight), d.nodes["rec"].weight)


def test_passes_copy_only_the_nodes_they_change():
    g = _graph(_sparse(30, 0.3))
    p, _ = magnitude_prune(g, 0.5, nodes=["rec"])
    assert p.nodes["lif"] is g.nodes["lif"] and p.nodes["fc"] is g.nodes["fc"]
    assert p.nodes["rec"] is not g.nodes["rec"]
    assert weights.nonzero(g.nodes["rec"].weight) > weights.nonzero(p.nodes["rec"].weight)


def test_large_weights_round_trip_through_a_standard_nir_file(tmp_path, monkeypatch):
    monkeypatch.setattr(nio, "LARGE_WEIGHT_ENTRIES", 10_000)
    w = _sparse(200, 0.01)
    path = nio.save_graph(_graph(w), tmp_path / "g.nir")
    back = nio.load_graph(path)
    got = back.nodes["rec"].weight
    assert weights.is_sparse(got) and (got != w).nnz == 0
    assert back.nodes["rec"].input_type["input"].tolist() == [200]
    plain = nir.read(path)  # what any NIR reader sees: a dense dataset
    np.testing.assert_array_equal(np.asarray(plain.nodes["rec"].weight), w.toarray())
    import h5py

    with h5py.File(path) as f:
        ds = f["node/nodes/rec/weight"]
        assert ds.chunks is not None and ds.compression == "gzip"
    dense = np.asarray(plain.nodes["fc"].weight)
    np.testing.assert_array_equal(back.nodes["fc"].weight, dense)  # small: stays dense


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("rows", [1, 5])
def test_event_gather_equals_the_csr_product_bit_for_bit(dtype, rows):
    from neurocompile.semantics.sparse_product import SparseProduct

    rng = np.random.default_rng(3)
    w = sp.random(4000, 3000, density=0.01, random_state=4, format="csr")
    w.data = rng.normal(size=w.nnz)  # not dyadic: any change of summation order shows
    prod = SparseProduct(w, dtype, bias=rng.normal(size=4000))
    x = (rng.random((rows, 3000)) < 0.02) * rng.integers(1, 3, (rows, 3000))  # spikes, graded
    x = x.astype(dtype)
    r, c = np.nonzero(x)
    assert prod.use_gather(rows, len(set(r)), len(r)), "low activity must take the gather"
    gathered = prod(x)
    csr = np.ascontiguousarray((prod.csr @ x.T).T) + prod.bias
    np.testing.assert_array_equal(gathered, csr)
    assert gathered.dtype == dtype
    dense = rng.random((rows, 3000)).astype(dtype)  # every input active: the CSR product
    assert not prod.use_gather(rows, rows, int(np.count_nonzero(dense)))
    np.testing.assert_array_equal(prod(dense), (prod.csr @ dense.T).T + prod.bias)


def test_recurrent_sparse_net_gives_the_dense_spikes_with_the_gather_in_use(monkeypatch):
    from neurocompile.semantics import sparse_product

    calls = []
    gather = sparse_product.SparseProduct._gather
    monkeypatch.setattr(sparse_product.SparseProduct, "_gather",
                        lambda self, *a: calls.append(1) or gather(self, *a))
    w = _sparse(3000, 0.01)
    w.data = np.random.default_rng(5).normal(0, 0.2, w.nnz)
    x = (np.random.default_rng(2).random((1, 80, 12)) < 0.1).astype(float)
    a = simulate(_graph(w), {"input": x})
    b = simulate(_graph(w.toarray()[:, :]), {"input": x})  # dense in memory, CSR at build
    monkeypatch.setattr(sparse_product.SparseProduct, "use_gather",
                        lambda self, *a: False)  # CSR products only
    n_gather = len(calls)
    c = simulate(_graph(w), {"input": x})
    assert n_gather > 0 and len(calls) == n_gather
    for other in (b, c):
        np.testing.assert_array_equal(a.outputs["out"], other.outputs["out"])
    assert a.total("spikes") > 100


def test_stepwise_loops_at_small_batch_run_with_one_blas_thread():
    from threadpoolctl import threadpool_info

    from neurocompile.targets.reference.simulator import _stepwise_threads

    def blas_threads():
        return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}

    with _stepwise_threads(1):
        assert blas_threads() == {1}
    before = blas_threads()
    with _stepwise_threads(64):
        assert blas_threads() == before


def test_gather_without_scipy_kernels_gives_the_same_values(monkeypatch):
    """The fallback for SciPy builds without `_sparsetools` (public slicing) agrees exactly."""
    from neurocompile.semantics import sparse_product

    w = sp.random(300, 200, density=0.05, random_state=7, format="csr")
    prod = sparse_product.SparseProduct(w, np.float64)
    x = (np.random.default_rng(8).random((4, 200)) < 0.05).astype(float)
    active = [np.flatnonzero(r) for r in x]
    fast = prod._gather(x, active)
    monkeypatch.setattr(sparse_product, "csr_row_index", None)
    np.testing.assert_array_equal(prod._gather(x, active), fast)
    np.testing.assert_array_equal(fast, (prod.csr @ x.T).T)
