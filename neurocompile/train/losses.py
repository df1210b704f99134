"""Task loss plus an explicit spike-count penalty, so training trades accuracy for activity.

Spikes are what a neuromorphic chip pays for (each one fans out into synaptic operations), so
the penalty counts them directly: for the spike tensors {layer: (batch, steps, N)} a network
returns,

    count_l   = sum of layer l's spikes / batch              (spikes per sample)
                or / (batch * steps * N_l) with normalize    (firing probability per neuron-step)
    L_spikes  = weight * sum_l layer_weight_l * count_l
    L         = cross_entropy(classify(out), y) + L_spikes

With a `floor` > 0 the penalty is a hinge on each sample's weighted count c_b =
sum_l layer_weight_l * count_{l,b}:  L_spikes = weight * mean_b max(c_b - floor, 0), so a
sample already at or below the floor feels no push towards silence (activity cannot collapse
to zero under a large weight). floor = 0 is exactly the plain penalty.

The surrogate gradient of the spike function carries d count / d w back to the weights, so
raising a weight that feeds active neurons raises the penalty (a positive gradient).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F


def layer_spike_counts(spikes: Mapping[str, torch.Tensor], normalize: bool = False
                       ) -> dict[str, torch.Tensor]:
    """Per-layer spikes per sample (or per neuron-step with `normalize`), differentiable."""
    out = {}
    for name, s in spikes.items():
        if s.dim() < 2:
            raise ValueError(f"spikes[{name!r}] must be (batch, steps, ...), got shape "
                             f"{tuple(s.shape)}")
        count = s.sum() / s.shape[0]
        if normalize:
            count = count / (s[0].numel())  # steps * neurons
        out[name] = count
    return out


def per_sample_spike_counts(spikes: Mapping[str, torch.Tensor],
                            layer_weights: Mapping[str, float] | None = None,
                            normalize: bool = False) -> torch.Tensor:
    """(batch,) weighted spike count of each sample: sum_l layer_weight_l * count_{l,b}."""
    layer_weights = layer_weights or {}
    _check_layer_weights(spikes, layer_weights)
    total = None
    for name, s in spikes.items():
        if s.dim() < 2:
            raise ValueError(f"spikes[{name!r}] must be (batch, steps, ...), got shape "
                             f"{tuple(s.shape)}")
        c = s.reshape(s.shape[0], -1).sum(1)
        if normalize:
            c = c / s[0].numel()
        c = float(layer_weights.get(name, 1.0)) * c
        total = c if total is None else total + c
    return total if total is not None else torch.zeros(0)


def _check_layer_weights(spikes: Mapping[str, torch.Tensor],
                         layer_weights: Mapping[str, float]) -> None:
    unknown = set(layer_weights) - set(spikes)
    if unknown:
        raise ValueError(f"layer_weights name layers the network does not have: "
                         f"{sorted(unknown)}; spiking layers are {sorted(spikes)}")


def spike_count_loss(spikes: Mapping[str, torch.Tensor], weight: float = 1.0,
                     layer_weights: Mapping[str, float] | None = None,
                     normalize: bool = False, floor: float = 0.0) -> torch.Tensor:
    """weight * sum over layers of layer_weight * spike count (layers not listed weigh 1.0).

    With floor > 0: weight * mean over samples of max(weighted count - floor, 0) (a hinge).
    """
    if floor < 0:
        raise ValueError(f"spike floor must be >= 0, got {floor}")
    layer_weights = layer_weights or {}
    if floor > 0:
        per_sample = per_sample_spike_counts(spikes, layer_weights, normalize)
        if per_sample.numel() == 0:
            return torch.zeros(())
        return weight * torch.clamp(per_sample - floor, min=0).mean()
    counts = layer_spike_counts(spikes, normalize)
    _check_layer_weights(spikes, layer_weights)
    if not counts:
        return torch.zeros(())
    total = sum(float(layer_weights.get(k, 1.0)) * c for k, c in counts.items())
    return weight * total


def task_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the class logits."""
    return F.cross_entropy(logits, labels)


def total_loss(out: torch.Tensor, spikes: Mapping[str, torch.Tensor], labels: torch.Tensor,
               classify: Callable[[torch.Tensor], torch.Tensor], spike_weight: float = 0.0,
               layer_weights: Mapping[str, float] | None = None, normalize: bool = False,
               floor: float = 0.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Task loss on classify(out) plus the spike penalty; returns (loss, float parts for logs)."""
    logits = classify(out)
    task = task_loss(logits, labels)
    loss = task
    parts = {"task": float(task.detach())}
    if spike_weight:
        pen = spike_count_loss(spikes, spike_weight, layer_weights, normalize, floor)
        loss = loss + pen
        parts["spikes"] = float(pen.detach())
    return loss, parts
