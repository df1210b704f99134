"""The top-level API: its docstring examples run (and check results), and importing the
package stays light (no torch) until a function needs it."""

from __future__ import annotations

import doctest
import subprocess
import sys

import numpy as np
import pytest

import neurocompile as nc
from neurocompile import api
from neurocompile.demo import demo_graph, demo_input


def test_docstring_examples_run():
    result = doctest.testmod(api, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted >= 30  # every public function's example ran


@pytest.mark.parametrize("name", api.__all__)
def test_every_function_has_an_example_and_is_the_packages(name):
    doc = getattr(api, name).__doc__ or ""
    assert name == "save" or ">>> " in doc, f"{name} has no example"
    assert name in nc.__all__ and callable(getattr(nc, name))


def test_energy_and_train_stay_callable_and_subpackages():
    import neurocompile.energy.plots  # noqa: F401  (rebinds nothing: the call survives)
    from neurocompile.energy import build_report

    assert nc.energy.build_report is build_report
    report = nc.energy(demo_graph(), demo_input(batch=1, steps=10), hardware=["loihi"])
    assert list(report["hardware"]) == ["loihi"]
    assert report["hardware"]["loihi"]["energy"]["energy_per_inference_j"] > 0


def test_import_is_torch_free():
    code = ("import sys, neurocompile as nc; nc.load; nc.simulate; "
            "assert 'torch' not in sys.modules and 'neurocompile.train' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_simulate_equals_the_reference_and_artifacts_keep_their_target():
    from neurocompile.targets.reference import simulate

    x = {"input": demo_input(batch=2, steps=15)}
    graph = demo_graph()
    expected = simulate(graph, x).outputs["output"]
    np.testing.assert_array_equal(nc.simulate(graph, x).outputs["output"], expected)
    artifact = nc.compile(graph, target="torch")
    result = nc.simulate(artifact, x)
    assert result.target == "torch"
    np.testing.assert_array_equal(result.outputs["output"], expected)
    with pytest.raises(TypeError, match="options apply when compiling"):
        nc.simulate(artifact, x, dt=1e-3)


def test_pass_options_are_checked():
    from neurocompile.errors import NeurocompileError

    with pytest.raises(NeurocompileError, match="sparsity"):
        nc.prune(demo_graph(), sparsity=2.0)
    with pytest.raises(NeurocompileError):
        nc.quantize(demo_graph(), scheme="nope")
