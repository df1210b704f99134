"""compare(): agreement and activity between a graph and its transformed version."""

from __future__ import annotations

import numpy as np
import pytest
from test_prune import net, spikes

from neurocompile.analysis import compare
from neurocompile.errors import InputDataError
from neurocompile.passes.prune import magnitude_prune
from neurocompile.passes.quantize import quantize_loihi


def test_identical_graphs_agree_fully():
    g = net()
    x = spikes()
    rep = compare(g, g, x, labels=np.zeros(5, int))
    out = rep["outputs"]["output"]
    assert out["identical"] and out["spike_agreement"] == 1.0 and out["class_agreement"] == 1.0
    assert out["accuracy_reference"] == out["accuracy_transformed"]
    assert rep["totals"]["synaptic_events"]["relative_change"] == 0.0
    assert rep["fixed_point"] is False


def test_pruning_reduces_synaptic_events():
    g = net()
    x = spikes()
    p, _ = magnitude_prune(g, 0.8)
    rep = compare(g, p, x)
    ev = rep["totals"]["synaptic_events"]
    assert ev["transformed"] < ev["reference"]
    assert ev["relative_change"] == pytest.approx(ev["transformed"] / ev["reference"] - 1)
    assert 0.0 <= rep["outputs"]["output"]["spike_agreement"] <= 1.0
    assert rep["nodes"]["fc1"]["synaptic_events"][1] < rep["nodes"]["fc1"]["synaptic_events"][0]


def test_loihi_graph_runs_in_fixed_point_and_mostly_agrees():
    g = net(rec=False)
    q, _ = quantize_loihi(g)
    rep = compare(g, q, spikes(batch=8, steps=80))
    assert rep["fixed_point"] is True
    assert rep["outputs"]["output"]["spike_agreement"] > 0.9
    with pytest.raises(InputDataError, match="labels"):
        compare(g, q, spikes(), labels=np.zeros(3, int))
