"""Task loss plus an explicit spike-count penalty, so training trades accuracy for activity.

Spikes are what a neuromorphic chip pays for (each one fans out into synaptic operations), so
the penalty counts them directly: for the spike tensors {layer: (batch, steps, N)} a network
returns,

    count_l   = sum of layer l's spikes / batch              (spikes per sample)
                or / (batch * steps * N_l) with normalize    (firing probability per neuron-step)
    L_spikes  = weight * sum_l layer_weight_l * count_l
    L         = cross_entropy(classify(out), y) + L_spikes

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


def spike_count_loss(spikes: Mapping[str, torch.Tensor], weight: float = 1.0,
                     layer_weights: Mapping[str, float] | None = None,
                     normalize: bool = False) -> torch.Tensor:
    """weight * sum over layers of layer_weight * spike count (layers not listed weigh 1.0)."""
    counts = layer_spike_counts(spikes, normalize)
    layer_weights = layer_weights or {}
    unknown = set(layer_weights) - set(counts)
    if unknown:
        raise ValueError(f"layer_weights name layers the network does not have: "
                         f"{sorted(unknown)}; spiking layers are {sorted(counts)}")
    if not counts:
        return torch.zeros(())
    total = sum(float(layer_weights.get(k, 1.0)) * c for k, c in counts.items())
    return weight * total


def task_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the class logits."""
    return F.cross_entropy(logits, labels)


def total_loss(out: torch.Tensor, spikes: Mapping[str, torch.Tensor], labels: torch.Tensor,
               classify: Callable[[torch.Tensor], torch.Tensor], spike_weight: float = 0.0,
               layer_weights: Mapping[str, float] | None = None, normalize: bool = False
               ) -> tuple[torch.Tensor, dict[str, float]]:
    """Task loss on classify(out) plus the spike penalty; returns (loss, float parts for logs)."""
    logits = classify(out)
    task = task_loss(logits, labels)
    loss = task
    parts = {"task": float(task.detach())}
    if spike_weight:
        pen = spike_count_loss(spikes, spike_weight, layer_weights, normalize)
        loss = loss + pen
        parts["spikes"] = float(pen.detach())
    return loss, parts
