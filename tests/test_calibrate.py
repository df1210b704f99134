"""Calibration: reference.record_activity and the prune command's methods (targets.calibrate)."""

from __future__ import annotations

import numpy as np
import pytest
from test_prune import net, spikes

from neurocompile.errors import InputDataError, UnsupportedError
from neurocompile.passes.prune import activity_prune, remove_dead_neurons
from neurocompile.targets.calibrate import PRUNE_METHODS, PruneOptions, get_prune_method
from neurocompile.targets.reference import record_activity, simulate


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


def test_prune_methods_run_the_calibration_then_the_pass():
    g = net(dead=(1, 4))
    x = spikes()
    act = record_activity(g, x)
    opts = PruneOptions(sparsity=0.5, calibration={"input": x})
    a, _ = get_prune_method("activity")(g, opts)
    b, _ = activity_prune(g, act, 0.5)
    for name in ("fc1", "rec", "fc2"):
        np.testing.assert_array_equal(a.nodes[name].weight, b.nodes[name].weight)
    d, rep = get_prune_method("dead")(g, opts)
    assert d.nodes["lif1"].tau.shape == (8,)
    assert rep.row("lif1").extra["kept_indices"] == remove_dead_neurons(g, act)[1] \
        .row("lif1").extra["kept_indices"]
    m, _ = get_prune_method("magnitude")(g, PruneOptions(sparsity=0.5))
    assert np.count_nonzero(m.nodes["fc1"].weight) == 60
    with pytest.raises(InputDataError, match="--method dead needs --calibration"):
        get_prune_method("dead")(g, PruneOptions())
    with pytest.raises(UnsupportedError, match="--method activity needs --sparsity"):
        get_prune_method("activity")(g, PruneOptions(calibration={"input": x}))
    for name, target in PRUNE_METHODS.items():  # every entry resolves to a callable
        assert callable(get_prune_method(name)), target
