"""Cross-check against NeuroBench: synaptic operations (effective ACs), activation sparsity and
connection sparsity of the same small network on the same inputs.

The torch model below is written by hand (no snnTorch layers): two Linear layers and a LIF module
with the reference simulator's step, in float64, obeying the one-step delay rule. Each Linear is
applied to every step's input, as the reference simulator and Lava's Dense process do.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("neurobench")
import nir  # noqa: E402
from neurobench.metrics.static import ConnectionSparsity  # noqa: E402
from neurobench.metrics.workload import ActivationSparsity, SynapticOperations  # noqa: E402
from neurobench.models import TorchModel  # noqa: E402

from neurocompile.energy import count_activity  # noqa: E402
from neurocompile.targets.reference import simulate  # noqa: E402

DT, TAU = 1e-3, 4e-3


class LIF(torch.nn.Module):
    """u = I (du = 1); v = v * (1 - dv) + u; spike when v > 1; reset to 0 (reference order)."""

    def __init__(self):
        super().__init__()
        self.keep_v = 1.0 - DT / TAU
        self.v = None  # membrane state; the module returns spikes only (what NeuroBench hooks)

    def forward(self, i_t):
        u = i_t  # gain = dv * r = 1 with r = tau / dt
        v = (torch.zeros_like(u) if self.v is None else self.v) * self.keep_v + u
        s = v > 1.0
        self.v = torch.where(s, torch.zeros_like(v), v)
        return s.to(v.dtype)


class Net(torch.nn.Module):
    def __init__(self, w1, w2):
        super().__init__()
        self.fc1 = torch.nn.Linear(w1.shape[1], w1.shape[0], bias=False, dtype=torch.float64)
        self.lif1 = LIF()
        self.fc2 = torch.nn.Linear(w2.shape[1], w2.shape[0], bias=False, dtype=torch.float64)
        self.lif2 = LIF()
        with torch.no_grad():
            self.fc1.weight.copy_(torch.from_numpy(w1))
            self.fc2.weight.copy_(torch.from_numpy(w2))

    def forward(self, x):  # x: (batch, steps, features)
        b, steps, _ = x.shape
        i1 = torch.zeros(b, self.fc1.out_features, dtype=x.dtype)  # fc1 of zeros (no bias)
        i2 = torch.zeros(b, self.fc2.out_features, dtype=x.dtype)
        self.lif1.v = self.lif2.v = None
        out = []
        for t in range(steps):
            s1 = self.lif1(i1)  # a neuron reads its synapse's output of step t-1
            s2 = self.lif2(i2)
            i1, i2 = self.fc1(x[:, t]), self.fc2(s1)
            out.append(s2)
        return torch.stack(out, 1)


def _lif(n):
    return nir.LIF(tau=np.full(n, TAU), r=np.full(n, TAU / DT), v_leak=np.zeros(n),
                   v_threshold=np.ones(n))


def test_counts_match_neurobench():
    rng = np.random.default_rng(3)
    w1 = rng.normal(0.6, 1.0, (12, 10))
    w1[rng.random(w1.shape) < 0.4] = 0.0
    w2 = rng.normal(0.5, 1.0, (4, 12))
    w2[rng.random(w2.shape) < 0.25] = 0.0
    x = (rng.random((3, 15, 10)) < 0.3).astype(np.float64)

    nodes = {"input": nir.Input(input_type={"input": np.array([10])}),
             "fc1": nir.Linear(weight=w1), "lif1": _lif(12),
             "fc2": nir.Linear(weight=w2), "lif2": _lif(4),
             "output": nir.Output(output_type={"output": np.array([4])})}
    names = list(nodes)
    graph = nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), metadata={"dt": DT})
    res = simulate(graph, {"input": x})
    ours = count_activity(graph, res)

    net = Net(w1, w2)
    model = TorchModel(net)
    model.add_activation_module(LIF)
    model.register_hooks()
    data = (torch.from_numpy(x), torch.zeros(3))
    with torch.no_grad():
        preds = model(data[0])
    # Same network, same spikes: the torch model reproduces the reference output exactly.
    assert np.array_equal(preds.numpy(), res.outputs["output"])

    synops = SynapticOperations()(model, preds, data)
    act = ActivationSparsity()(model, preds, data)
    conn = ConnectionSparsity()(model)
    per_inf = ours["totals"]["per_inference"]
    assert synops["Effective_MACs"] == 0  # all layer inputs are binary spikes
    assert synops["Effective_ACs"] == pytest.approx(per_inf["synaptic_ops"], rel=0, abs=1e-9)
    assert synops["Dense"] == pytest.approx(per_inf["dense_macs"], rel=0, abs=1e-9)
    assert act == pytest.approx(ours["totals"]["activation_sparsity"], abs=1e-12)
    assert conn == pytest.approx(round(ours["totals"]["connection_sparsity"], 4), abs=1e-12)
    model.reset_hooks()

    # Graded (non-binary) input: NeuroBench then books the first layer as MACs, not ACs; our
    # synaptic_ops keeps counting both layers as operations (a documented difference).
    xg = x * 0.7
    res_g = simulate(graph, {"input": xg})
    ours_g = count_activity(graph, res_g)["nodes"]
    with torch.no_grad():
        preds_g = model(torch.from_numpy(xg))
    synops_g = SynapticOperations()(model, preds_g, (torch.from_numpy(xg), torch.zeros(3)))
    assert synops_g["Effective_MACs"] == pytest.approx(ours_g["fc1"]["per_inference"]["synaptic_ops"])
    assert synops_g["Effective_ACs"] == pytest.approx(ours_g["fc2"]["per_inference"]["synaptic_ops"])
    print("neurobench", synops, act, conn, "ours", per_inf["synaptic_ops"], per_inf["dense_macs"],
          ours["totals"]["activation_sparsity"], ours["totals"]["connection_sparsity"],
          "graded", synops_g)
    model.cleanup_hooks()
