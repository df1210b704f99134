"""Calibration: analysis.record_activity, and analysis.run_pass over the pass registry."""

from __future__ import annotations

import numpy as np
import pytest
from test_prune import net, spikes

from neurocompile.analysis import record_activity, run_pass
from neurocompile.config import ConfigError
from neurocompile.errors import InputDataError, UnsupportedError
from neurocompile.passes import PASSES, get_pass
from neurocompile.passes.prune import activity_prune, remove_dead_neurons
from neurocompile.targets.reference import simulate


def test_record_activity_totals_every_node_output():
    g = net(dead=(3,))
    x = spikes(batch=4, steps=30)
    act = record_activity(g, x)
    assert set(act) == set(g.nodes) | {"__samples_steps__"}
    assert int(act["__samples_steps__"]) == 4 * 30
    np.testing.assert_array_equal(act["input"], np.abs(x).sum(axis=(0, 1)))
    res = simulate(g, x, probe=("lif1",))
    np.testing.assert_array_equal(act["output"], res.outputs["output"].sum(axis=(0, 1)))
    assert act["lif1"].shape == (10,) and act["lif1"].sum() == res.counters["lif1"].spikes
    assert act["lif1"][3] == 0  # the dead neuron
    # the Affine's |output| per element, summed (its bias counts every step)
    w, b = np.asarray(g.nodes["fc1"].weight), np.asarray(g.nodes["fc1"].bias)
    np.testing.assert_allclose(act["fc1"], np.abs(x @ w.T + b).sum(axis=(0, 1)))
    # steps pads with zeros (or truncates)
    assert int(record_activity(g, x, steps=40)["__samples_steps__"]) == 4 * 40
    with pytest.raises(InputDataError, match="empty"):
        record_activity(g, {})


def test_run_pass_runs_the_calibration_then_the_pass():
    g = net(dead=(1, 4))
    x = spikes()
    act = record_activity(g, x)
    a, _ = run_pass("activity", g, {"sparsity": 0.5}, calibration={"input": x})
    b, _ = activity_prune(g, act, 0.5)
    for name in ("fc1", "rec", "fc2"):
        np.testing.assert_array_equal(a.nodes[name].weight, b.nodes[name].weight)
    d, rep = run_pass("dead", g, calibration={"input": x})
    assert d.nodes["lif1"].tau.shape == (8,)
    assert rep.row("lif1").extra["kept_indices"] == remove_dead_neurons(g, act)[1] \
        .row("lif1").extra["kept_indices"]
    m, _ = run_pass("magnitude", g, {"sparsity": 0.5})
    assert np.count_nonzero(m.nodes["fc1"].weight) == 60
    with pytest.raises(InputDataError, match="prune method 'dead' needs calibration data"):
        run_pass("dead", g)
    with pytest.raises(ConfigError, match="'sparsity'"):
        run_pass("activity", g, {}, calibration={"input": x})
    with pytest.raises(ConfigError, match="unknown key 'sparsty'"):
        run_pass("magnitude", g, {"sparsty": 0.5})
    with pytest.raises(UnsupportedError, match="unknown prune method 'int8'"):
        run_pass("int8", g, kind="prune")
    for spec in PASSES:  # every entry resolves, and its defaults load where it has any
        assert get_pass(spec.name) is spec and callable(spec.run)
