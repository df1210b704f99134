"""Trained models on Lava: every hidden spike equals the reference simulator's, float and fixed.

The model is trained here (a few Adam epochs on the digits task), exported with an Output node
per spiking layer, so the comparison covers hidden spikes at every step, not only the readout.
Float: spikes must be identical; the LI readout membrane may differ in the last bits because Lava
folds the input gain into the weights and sums in another order (bounded below). Fixed point:
every value is an integer and must be identical.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_lava_helpers import ensure_lava_env

from neurocompile.data import load_dataset
from neurocompile.passes.quantize import quantize_loihi
from neurocompile.targets import get_target
from neurocompile.targets.reference import simulate

pytestmark = [pytest.mark.lava, pytest.mark.slow]


@pytest.fixture(scope="module")
def trained():
    if ensure_lava_env() is None:
        pytest.skip("no Lava interpreter: set NEUROCOMPILE_LAVA_PYTHON or run `make lava-venv`")
    from neurocompile.train.export import to_nir
    from neurocompile.train.loop import TrainConfig, fit

    data = load_dataset("digits", steps=12)
    config = TrainConfig(model="ff", model_kwargs={"n_hidden": 32}, optimizer="adam", lr=5e-3,
                         epochs=3, progress=False)
    model, metrics = fit(config, data=data)
    graph = to_nir(model, spike_outputs=True)
    return graph, {"input": data.test.x[:6].astype(np.float64)}, metrics


def run_both(graph, x, fixed: bool):
    lava = get_target("lava")
    got = lava.run(lava.compile(graph, {"fixed_point": fixed}), x)
    ref = simulate(graph, x, fixed_point=fixed)
    return got, ref


def test_trained_float_model_hidden_spikes_identical(trained):
    graph, x, metrics = trained
    assert metrics["test_spikes_per_sample"] > 10  # an active network, not a silent one
    got, ref = run_both(graph, x, fixed=False)
    spike_outputs = [k for k in ref.outputs if k.startswith("spikes_")]
    assert spike_outputs
    for name in spike_outputs:
        np.testing.assert_array_equal(got.outputs[name], ref.outputs[name], err_msg=name)
    np.testing.assert_allclose(got.outputs["output"], ref.outputs["output"], rtol=0, atol=1e-9)
    assert got.counters_dict() == ref.counters_dict()


def test_trained_fixed_point_model_bit_identical(trained):
    graph, x, _ = trained
    qgraph, _ = quantize_loihi(graph)
    got, ref = run_both(qgraph, x, fixed=True)
    assert sum(int(v.sum()) for k, v in ref.outputs.items() if k.startswith("spikes_")) > 0
    for name in ref.outputs:
        np.testing.assert_array_equal(got.outputs[name], ref.outputs[name], err_msg=name)
    assert got.counters_dict() == ref.counters_dict()
