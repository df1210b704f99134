"""Pruning passes: magnitude, activity, dead neurons; bad requests; the prune command."""

from __future__ import annotations

import copy

import nir
import numpy as np
import pytest

from neurocompile.analysis import record_activity
from neurocompile.cli.main import main
from neurocompile.errors import InputDataError, UnsupportedError
from neurocompile.ir.io import load_graph, save_graph, save_spikes
from neurocompile.passes import get_pass, passes
from neurocompile.passes.prune import activity_prune, magnitude_prune, remove_dead_neurons
from neurocompile.targets.reference import simulate


def net(seed: int = 0, n_in: int = 12, n_h: int = 10, n_out: int = 3, rec: bool = True,
        dead: tuple[int, ...] = ()) -> nir.NIRGraph:
    """input -> fc1 -> lif1 (+ rec) -> fc2 -> lif2 -> output; `dead` hidden neurons get
    all-negative input weights so they can never spike."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0.3, 0.5, (n_h, n_in))
    for i in dead:
        w1[i] = -np.abs(w1[i]) - 0.1
    nodes = {"input": nir.Input(input_type={"input": np.array([n_in])}),
             "fc1": nir.Affine(weight=w1, bias=np.zeros(n_h)),
             "lif1": nir.LIF(tau=np.full(n_h, 1e-2), r=np.full(n_h, 10.0), v_leak=np.zeros(n_h),
                             v_threshold=np.ones(n_h)),
             "fc2": nir.Affine(weight=rng.normal(0.2, 0.5, (n_out, n_h)), bias=np.full(n_out, 0.01)),
             "lif2": nir.LIF(tau=np.full(n_out, 2e-2), r=np.full(n_out, 20.0),
                             v_leak=np.zeros(n_out), v_threshold=np.ones(n_out)),
             "output": nir.Output(output_type={"output": np.array([n_out])})}
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
             ("lif2", "output")]
    if rec:
        wr = rng.normal(0, 0.3, (n_h, n_h))
        for i in dead:
            wr[i] = -np.abs(wr[i]) - 0.1
        nodes["rec"] = nir.Linear(weight=wr)
        edges += [("lif1", "rec"), ("rec", "lif1")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-3}, type_check=False)


def spikes(seed: int = 1, batch: int = 5, steps: int = 50, n: int = 12) -> np.ndarray:
    return (np.random.default_rng(seed).random((batch, steps, n)) < 0.3).astype(np.float64)


@pytest.mark.parametrize("s", [0.0, 0.25, 0.5, 0.9])
def test_magnitude_per_layer_zeroes_exactly_the_smallest(s):
    g = net()
    original = copy.deepcopy(g)
    p, report = magnitude_prune(g, s)
    for name in ("fc1", "fc2", "rec"):
        w, pw = np.asarray(g.nodes[name].weight), np.asarray(p.nodes[name].weight)
        k = int(np.floor(s * w.size + 0.5))
        order = np.argsort(np.abs(w).ravel(), kind="stable")
        expect = w.ravel().copy()
        expect[order[:k]] = 0
        np.testing.assert_array_equal(pw.ravel(), expect)
        assert np.count_nonzero(pw) == w.size - k
        row = report.row(name)
        assert (row.params_before - np.count_nonzero(g.nodes[name].bias if name != "rec" else 0),
                row.params_after) == (w.size, np.count_nonzero(p.nodes[name].weight)
                                      + (np.count_nonzero(g.nodes[name].bias)
                                         if name != "rec" else 0))
    for name in g.nodes:  # input graph untouched
        for attr in ("weight", "bias"):
            if hasattr(g.nodes[name], attr):
                np.testing.assert_array_equal(getattr(g.nodes[name], attr),
                                              getattr(original.nodes[name], attr))


def test_magnitude_global_and_threshold():
    g = net()
    p, _ = magnitude_prune(g, 0.6, scope="global")
    names = ("fc1", "fc2", "rec")
    allw = np.concatenate([np.abs(np.asarray(g.nodes[n].weight)).ravel() for n in names])
    k = int(np.floor(0.6 * allw.size + 0.5))
    pruned = np.concatenate([np.asarray(p.nodes[n].weight).ravel() for n in names])
    assert np.count_nonzero(pruned) == allw.size - k
    cut = np.sort(allw)[k - 1]
    assert np.all(np.abs(pruned[pruned != 0]) >= cut)
    t, _ = magnitude_prune(g, threshold=0.2)
    for n in names:
        w = np.asarray(g.nodes[n].weight)
        np.testing.assert_array_equal(t.nodes[n].weight, np.where(np.abs(w) < 0.2, 0, w))


def test_bad_requests_raise():
    g = net()
    for bad in (1.0, -0.1, 1.5, float("nan")):
        with pytest.raises(UnsupportedError, match=r"sparsity must be in \[0, 1\)"):
            magnitude_prune(g, bad)
    with pytest.raises(UnsupportedError, match="exactly one of sparsity or threshold"):
        magnitude_prune(g, 0.5, threshold=0.1)
    with pytest.raises(UnsupportedError, match="scope"):
        magnitude_prune(g, 0.5, scope="row")
    with pytest.raises(UnsupportedError, match="cannot prune node"):
        magnitude_prune(g, 0.5, nodes=["lif1"])
    with pytest.raises(InputDataError, match="calibration"):
        remove_dead_neurons(g)
    with pytest.raises(InputDataError, match="calibration"):
        activity_prune(g, None, 0.5)
    x = spikes()
    with pytest.raises(InputDataError, match="record_activity"):  # raw data is not activity
        activity_prune(g, x, 0.5)
    with pytest.raises(InputDataError, match="record_activity"):
        remove_dead_neurons(g, {"input": x})
    with pytest.raises(InputDataError, match=r"no entry for node\(s\) \['lif1'"):
        remove_dead_neurons(g, {"__samples_steps__": np.asarray(5)})
    with pytest.raises(UnsupportedError, match="unknown prune method 'random'"):
        get_pass("random", "prune")


def test_activity_prune_removes_synapses_of_silent_inputs_first():
    g = net(rec=False)
    x = spikes()
    x[:, :, :4] = 0  # inputs 0..3 never spike
    activity = record_activity(g, x)
    p, report = activity_prune(g, activity, 4 / 12)
    w = np.asarray(p.nodes["fc1"].weight)
    assert np.all(w[:, :4] == 0) and np.all(w[:, 4:] != 0)
    assert report.row("fc1").params_after == 10 * 8
    # criterion "rate": least active presynaptic neurons first, |w| breaking ties
    p2, _ = activity_prune(g, activity, 0.5, criterion="rate")
    assert np.count_nonzero(p2.nodes["fc1"].weight) == 60
    assert np.all(np.asarray(p2.nodes["fc1"].weight)[:, :4] == 0)


def test_dead_neurons_removed_and_outputs_unchanged_spike_for_spike():
    dead = (1, 4, 7)
    g = net(dead=dead)
    x = spikes(batch=6, steps=60)
    before = simulate(g, x)
    p, report = remove_dead_neurons(g, record_activity(g, x))
    keep = [i for i in range(10) if i not in dead]
    assert p.nodes["fc1"].weight.shape == (7, 12) and p.nodes["fc1"].bias.shape == (7,)
    assert p.nodes["rec"].weight.shape == (7, 7)
    assert p.nodes["fc2"].weight.shape == (3, 7)
    np.testing.assert_array_equal(p.nodes["rec"].weight, g.nodes["rec"].weight[np.ix_(keep, keep)])
    np.testing.assert_array_equal(p.nodes["fc2"].weight, g.nodes["fc2"].weight[:, keep])
    assert p.nodes["lif1"].tau.shape == (7,)
    row = report.row("lif1")
    assert (row.neurons_before, row.neurons_after) == (10, 7)
    assert row.extra["kept_indices"] == keep
    after = simulate(p, x)
    np.testing.assert_array_equal(before.outputs["output"], after.outputs["output"])
    assert before.outputs["output"].sum() > 0
    assert g.nodes["fc1"].weight.shape == (10, 12)  # input untouched


def test_dead_output_population_kept_unless_asked():
    g = net(rec=False)
    g.nodes["fc2"].weight[2] = -1.0  # output neuron 2 never spikes
    x = spikes()
    activity = record_activity(g, x)
    p, report = remove_dead_neurons(g, activity)
    assert p.nodes["lif2"].tau.shape == (3,)
    assert any("Output" in n for n in report.notes)
    q, _ = remove_dead_neurons(g, activity, keep_outputs=False)
    assert q.nodes["lif2"].tau.shape == (2,)
    out = simulate(q, x).outputs["output"]
    assert out.shape[2] == 2
    np.testing.assert_array_equal(out, simulate(g, x).outputs["output"][:, :, :2])


def test_prune_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    save_graph(net(dead=(2,)), tmp_path / "g.nir")
    save_spikes({"input": spikes()}, tmp_path / "cal.npz")
    main(["prune", str(tmp_path / "g.nir"), "--sparsity", "0.5", "-o", str(tmp_path / "p.nir")])
    assert "fc1" in capsys.readouterr().out
    assert np.count_nonzero(load_graph(tmp_path / "p.nir").nodes["fc1"].weight) == 60
    main(["prune", str(tmp_path / "g.nir"), "--method", "dead", "--calibration",
          str(tmp_path / "cal.npz"), "-o", str(tmp_path / "d.nir")])
    assert load_graph(tmp_path / "d.nir").nodes["lif1"].tau.shape == (9,)
    capsys.readouterr()
    for args, msg in [(["--sparsity", "1.2"], "error: --method magnitude: sparsity: must be < 1, got 1.2"),
                      (["--sparsity", "0.5", "--method", "random"],
                       "error: unknown prune method 'random'; known: magnitude, activity"),
                      (["--method", "dead"], "error: prune method 'dead' needs calibration data"),
                      (["--method", "magnitude", "--sparsity", "0.5", "--criterion", "rate"],
                       "error: option --criterion does not apply to --method magnitude")]:
        with pytest.raises(SystemExit) as exc:
            main(["prune", str(tmp_path / "g.nir"), *args, "-o", str(tmp_path / "x.nir")])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(msg) and "\n" not in err
    assert not (tmp_path / "x.nir").exists()
    assert set(passes("prune")) >= {"magnitude", "activity", "dead"}
