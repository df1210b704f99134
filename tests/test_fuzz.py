"""The fuzz campaign (scripts/fuzz.py) in CI: over a thousand malformed inputs over every
command, each a one-line error with exit 2, no file written, no child left, no code run."""

from __future__ import annotations

import sys

import numpy as np
from conftest import REPO
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(REPO / "scripts"))
import fuzz  # noqa: E402

from neurocompile.ir.io import save_graph, save_spikes  # noqa: E402


def test_a_thousand_malformed_inputs_fail_cleanly():
    summary = fuzz.fuzz(n=1100, seed=11)
    assert summary["totals"]["clean_error"] == 1100, summary["failures"][:5]
    assert summary["children_left"] == 0 and summary["code_executions"] == 0
    assert set(summary["per_command"]) >= {"inspect", "simulate", "prune", "quantize",
                                           "compare", "energy", "compile", "pipeline", "train"}


def test_the_harness_sees_what_it_must(tmp_path):
    """A valid run counts as a wrong success (exit 0), a file written on failure is caught."""
    rng = np.random.default_rng(0)
    g = save_graph(fuzz.base_graph(rng), tmp_path / "g.nir")
    x = save_spikes(fuzz.good_input(rng), tmp_path / "x.npz")
    inputs = {g, x}
    ok = fuzz.run_case(["simulate", str(g), "--input", str(x)], tmp_path, inputs)
    assert ok["kind"] == "wrong_success"
    out = fuzz.run_case(["simulate", str(g), "--input", str(x), "--out",
                         str(tmp_path / "o.npz")], tmp_path, inputs)
    assert out["kind"] == "wrong_success" and "o.npz" in out["written"]
    inputs = {p for p in tmp_path.rglob("*") if p.is_file()}
    bad = fuzz.run_case(["inspect", str(tmp_path / "missing.nir")], tmp_path, inputs)
    assert bad["kind"] == "clean_error"


@settings(max_examples=40, deadline=None)
@given(node=st.sampled_from(["fc", "lif", "out", "li"]),
       value=st.one_of(st.floats(allow_nan=True, allow_infinity=True).filter(
           lambda v: not np.isfinite(v)), st.text(max_size=5), st.just([]),
           st.lists(st.floats(-1, 1), min_size=7, max_size=9)))
def test_any_non_finite_text_or_misshapen_parameter_is_a_clean_error(tmp_path_factory, node,
                                                                      value):
    import h5py

    work = tmp_path_factory.mktemp("h")
    rng = np.random.default_rng(1)
    path = save_graph(fuzz.base_graph(rng), work / "g.nir")
    x = save_spikes(fuzz.good_input(rng), work / "x.npz")
    name = {"fc": "weight", "lif": "v_threshold", "out": "weight", "li": "tau"}[node]
    with h5py.File(path, "r+") as f:
        fuzz._replace(f, f"node/nodes/{node}/{name}", value)
    for argv in (["inspect", str(path)], ["simulate", str(path), "--input", str(x)],
                 ["prune", str(path), "--sparsity", "0.3", "-o", str(work / "p.nir")]):
        res = fuzz.run_case(argv, work, {path, x})
        assert res["kind"] == "clean_error", res
