"""Spike-count loss: hand counts, per-layer weights, normalisation, gradient sign."""

from __future__ import annotations

import pytest
import torch

from neurocompile.train.losses import (
    layer_spike_counts,
    per_sample_spike_counts,
    spike_count_loss,
    task_loss,
    total_loss,
)


class _Spike(torch.autograd.Function):
    """Heaviside forward, fast-sigmoid surrogate backward (a stand-in spike function)."""

    @staticmethod
    def forward(ctx, v):
        ctx.save_for_backward(v)
        return (v > 0).to(v.dtype)

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        return grad / (1 + 5 * v.abs()) ** 2


def _known_spikes():
    a = torch.zeros(2, 3, 4)
    a.view(-1)[torch.arange(0, 20, 2)] = 1  # 10 spikes
    b = torch.zeros(2, 3, 5)
    b[0, 0, :] = 1
    b[1, 2, 1] = 1  # 6 spikes
    return {"a": a, "b": b}


def test_counts_by_hand():
    spikes = _known_spikes()
    counts = layer_spike_counts(spikes)
    assert float(counts["a"]) == 5.0 and float(counts["b"]) == 3.0  # per sample (batch 2)
    assert float(spike_count_loss(spikes, weight=0.5)) == pytest.approx(0.5 * (5 + 3))
    loss = spike_count_loss(spikes, weight=0.5, layer_weights={"b": 2.0})
    assert float(loss) == pytest.approx(0.5 * (5 + 2 * 3))
    off = spike_count_loss(spikes, weight=1.0, layer_weights={"a": 0.0})
    assert float(off) == pytest.approx(3.0)


def test_normalisation_by_neurons_and_steps():
    spikes = _known_spikes()
    counts = layer_spike_counts(spikes, normalize=True)
    assert float(counts["a"]) == pytest.approx(10 / (2 * 3 * 4))
    assert float(counts["b"]) == pytest.approx(6 / (2 * 3 * 5))
    loss = spike_count_loss(spikes, 0.5, {"b": 2.0}, normalize=True)
    assert float(loss) == pytest.approx(0.5 * (10 / 24 + 2 * 6 / 30))


def test_unknown_layer_weight_raises():
    with pytest.raises(ValueError, match="layer_weights"):
        spike_count_loss(_known_spikes(), layer_weights={"c": 1.0})


def test_gradient_is_positive_for_weights_feeding_active_neurons():
    torch.manual_seed(0)
    x = torch.rand(4, 6, 3)  # (batch, steps, inputs), all positive
    x[:, :, 2] = 0.0  # input 2 never active
    w = torch.full((2, 3), 0.8, requires_grad=True)  # neuron currents near threshold 1
    s = _Spike.apply(x @ w.T - 1.0)
    assert 0 < float(s.detach().sum()) < s.numel()
    loss = spike_count_loss({"lif": s}, weight=0.3)
    loss.backward()
    assert torch.all(w.grad[:, :2] > 0)
    assert torch.all(w.grad[:, 2] == 0)
    # raising the weights indeed raises the count (the sign the gradient claims)
    with torch.no_grad():
        s_up = _Spike.apply(x @ (w + 0.1).T - 1.0)
    assert float(s_up.sum()) > float(s.detach().sum())


def test_total_loss_adds_the_penalty_to_cross_entropy():
    out = torch.randn(3, 5, 4)
    labels = torch.tensor([0, 3, 1])
    spikes = _known_spikes()
    spikes = {k: v[:1].expand(3, -1, -1) for k, v in spikes.items()}

    def classify(o):
        return o.mean(1)

    loss, parts = total_loss(out, spikes, labels, classify, spike_weight=0.1)
    ce = task_loss(out.mean(1), labels)
    pen = 0.1 * sum(float(v[0].sum()) for v in spikes.values())
    assert float(loss) == pytest.approx(float(ce) + pen, rel=1e-6)
    assert parts["task"] == pytest.approx(float(ce)) and parts["spikes"] == pytest.approx(pen)
    plain, parts = total_loss(out, spikes, labels, classify)
    assert float(plain) == pytest.approx(float(ce)) and "spikes" not in parts


def test_per_sample_counts_and_hinge_by_hand():
    spikes = _known_spikes()  # sample 0: a 6 + b 5 = 11 spikes; sample 1: a 4 + b 1 = 5
    per = per_sample_spike_counts(spikes)
    assert per.tolist() == [11.0, 5.0]
    assert per_sample_spike_counts(spikes, {"b": 2.0}).tolist() == [16.0, 6.0]
    # floor 0 is the plain penalty; a floor takes the hinge per sample, then the batch mean
    assert float(spike_count_loss(spikes, 0.5, floor=0.0)) == pytest.approx(0.5 * 8)
    assert float(spike_count_loss(spikes, 0.5, floor=7.0)) == pytest.approx(0.5 * (4 + 0) / 2)
    assert float(spike_count_loss(spikes, 0.5, {"b": 2.0}, floor=7.0)) == pytest.approx(
        0.5 * (9 + 0) / 2)
    assert float(spike_count_loss(spikes, 0.5, floor=20.0)) == 0.0
    with pytest.raises(ValueError, match="floor"):
        spike_count_loss(spikes, floor=-1.0)
    with pytest.raises(ValueError, match="layer_weights"):
        spike_count_loss(spikes, layer_weights={"c": 1.0}, floor=1.0)


def test_hinge_gradient_is_zero_below_the_floor():
    torch.manual_seed(0)
    x = torch.rand(2, 6, 3)
    x[1] *= 0.3  # sample 1 drives the neurons far less than sample 0
    w = torch.full((4, 3), 0.8, requires_grad=True)
    s = _Spike.apply(x @ w.T - 1.0)
    per = s.detach().reshape(2, -1).sum(1)
    floor = float(per[1]) + 0.5  # sample 1 below the floor, sample 0 above
    assert float(per[0]) > floor
    # only sample 0 contributes: same gradient as penalising sample 0 alone (half weight)
    spike_count_loss({"lif": s}, weight=0.3, floor=floor).backward()
    w_alone = w.detach().clone().requires_grad_(True)
    s0 = _Spike.apply(x[:1] @ w_alone.T - 1.0)
    (0.3 / 2 * s0.sum()).backward()
    torch.testing.assert_close(w.grad, w_alone.grad)
    assert torch.any(w.grad != 0)
    # everything below the floor: exactly zero gradient
    w.grad = None
    s = _Spike.apply(x @ w.T - 1.0)
    loss = spike_count_loss({"lif": s}, weight=0.3, floor=float(per.max()) + 1)
    loss.backward()
    assert float(loss.detach()) == 0.0 and torch.all(w.grad == 0)


def test_total_loss_passes_the_floor():
    out = torch.randn(2, 3, 4)
    labels = torch.tensor([0, 1])
    spikes = _known_spikes()
    loss, parts = total_loss(out, spikes, labels, lambda o: o.mean(1), spike_weight=0.5,
                             floor=7.0)
    assert parts["spikes"] == pytest.approx(1.0)
    assert float(loss) == pytest.approx(parts["task"] + 1.0, rel=1e-6)
