"""The rockpool and lava-dl profiles against the formulas of their exporters (neither framework
is installed, so these pin the conversion, not agreement with the framework's simulation)."""

from __future__ import annotations

import nir
import numpy as np
import pytest

from neurocompile.errors import UnsupportedError
from neurocompile.interop import import_graph
from neurocompile.interop.rockpool import dt_from_r
from neurocompile.semantics import RESET_KEY, SPIKES_KEY, discretise


def rockpool_like(dt: float = 1e-3) -> nir.NIRGraph:
    """What rockpool's to_nir writes for LinearTorch -> LIFTorch (n = 1): CubaLIF with
    r = tau_mem exp(-dt/tau_mem) / dt, no w_in, and an Output of shape (1, 1, 1)."""
    tau_m, tau_s = np.array([0.02]), np.array([0.005])
    return nir.NIRGraph(
        nodes={"input": nir.Input(np.array([2])), "lin": nir.Linear(np.array([[0.6, 0.9]])),
               "lif": nir.CubaLIF(tau_syn=tau_s, tau_mem=tau_m,
                                  r=tau_m * np.exp(-dt / tau_m) / dt, v_leak=np.zeros(1),
                                  v_threshold=np.ones(1)),
               "output": nir.Output(np.array([1, 1, 1]))},
        edges=[("input", "lin"), ("lin", "lif"), ("lif", "output")], type_check=False)


def test_rockpool_dt_is_read_from_r():
    tau = np.array([0.01, 0.02, 0.1])
    for dt in (1e-4, 1e-3, 5e-3):
        np.testing.assert_allclose(dt_from_r(tau * np.exp(-dt / tau) / dt, tau), dt, rtol=1e-9)


def test_rockpool_profile_gives_exponential_decay_unit_gain_and_its_rules():
    g, notes = import_graph(rockpool_like(2e-3), "rockpool")
    assert any("Output 'output': shape (1, 1, 1) read as (1,)" in n for n in notes)
    assert any("not tested against Rockpool" in n for n in notes)
    assert g.metadata["dt"] == pytest.approx(2e-3, rel=1e-9)
    p = discretise("lif", g.nodes["lif"], g.metadata["dt"])
    np.testing.assert_allclose(1 - p.dv, np.exp(-2e-3 / 0.02), rtol=1e-9)
    np.testing.assert_allclose(1 - p.du, np.exp(-2e-3 / 0.005), rtol=1e-9)
    np.testing.assert_allclose(p.gain, 1.0, rtol=1e-9)
    assert g.nodes["lif"].metadata == {RESET_KEY: "subtract", SPIKES_KEY: "multi"}
    _, warned = import_graph(rockpool_like())
    assert any("pass --from rockpool" in n for n in warned)


def test_rockpool_without_a_consistent_dt_asks_for_one():
    g = rockpool_like()
    g.nodes["lif2"] = nir.CubaLIF(tau_syn=np.array([0.005]), tau_mem=np.array([0.02]),
                                  r=np.array([3.0]), v_leak=np.zeros(1), v_threshold=np.ones(1))
    with pytest.raises(UnsupportedError, match="different time steps.*pass --dt"):
        import_graph(g, "rockpool")
    fixed, _ = import_graph(g, "rockpool", dt=1e-3)
    assert fixed.metadata["dt"] == 1e-3


def test_lava_dl_profile_reads_decays_as_4096ths():
    """The NIR project's lava-dl reader: tau = 1/decay, r = 1, w_in = tau_syn."""
    idecay, vdecay = 1024.0, 512.0
    g = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([3])), "fc": nir.Linear(np.ones((2, 3))),
               "cuba": nir.CubaLIF(tau_syn=np.full(2, 1 / idecay), tau_mem=np.full(2, 1 / vdecay),
                                   r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.full(2, 80.0),
                                   w_in=np.full(2, 1 / idecay)),
               "output": nir.Output(np.array([2]))},
        edges=[("input", "fc"), ("fc", "cuba"), ("cuba", "output")], type_check=False)
    out, _ = import_graph(g, "lava-dl")
    p = discretise("cuba", out.nodes["cuba"], out.metadata["dt"])
    np.testing.assert_allclose(p.du, idecay / 4096)
    np.testing.assert_allclose(p.dv, vdecay / 4096)
    np.testing.assert_allclose(p.gain, 1.0)
    with pytest.raises(UnsupportedError, match="leave --dt out"):
        import_graph(g, "lava-dl", dt=1e-3)


def test_unknown_profile_is_refused_naming_the_known_ones():
    with pytest.raises(UnsupportedError, match="unknown import profile 'brian'.*snntorch"):
        import_graph(rockpool_like(), "brian")


def test_a_saved_profiled_graph_shows_its_origin_and_is_not_converted_twice(tmp_path):
    from neurocompile.interop import applied, graph_layout
    from neurocompile.ir.io import load_graph, save_graph

    g, _ = import_graph(rockpool_like(2e-3), "rockpool")
    back = load_graph(save_graph(g, tmp_path / "g.nir"))
    assert applied(back) == "rockpool" and graph_layout(back) == "btf"
    assert back.nodes["lif"].metadata[RESET_KEY] == "subtract"
    again, notes = import_graph(back, "rockpool")
    np.testing.assert_array_equal(again.nodes["lif"].tau_mem, back.nodes["lif"].tau_mem)
    assert not any("pass --from" in n for n in import_graph(back)[1])  # origin known: no hint
