"""Datasets as (batch, steps, features) float32 arrays with integer labels.

`load_dataset(name, **options)` builds the train/val/test splits of a named task:

    digits        rate-coded handwritten digits (bundled with scikit-learn; no download)
    digits-seq    the digits presented row by row (sequential)
    digits-pseq   the digits after a fixed pixel permutation, presented sequentially
    shd, ssc      Spiking Heidelberg Digits / Spiking Speech Commands from local HDF5 files

NumPy only; torch is imported inside `make_dataloader` alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from neurocompile.data.digits import DataSplits, SpikeDataset, load_digits_task
from neurocompile.data.shd import DatasetNotFoundError, load_shd
from neurocompile.errors import InputDataError

DATASETS: dict[str, str] = {
    "digits": "rate-coded 8x8 digits, 64 inputs (scikit-learn; bundled)",
    "digits-seq": "8x8 digits one row per step (sequential)",
    "digits-pseq": "8x8 digits after a fixed pixel permutation, sequential",
    "shd": "Spiking Heidelberg Digits, 700 inputs (local HDF5 files)",
    "ssc": "Spiking Speech Commands, 700 inputs (local HDF5 files)",
}

_DIGIT_TASKS = {"digits": "rate", "digits-seq": "seq", "digits-pseq": "pseq"}


def load_dataset(name: str, **options: Any) -> DataSplits:
    """Train/val/test splits of dataset `name` (see DATASETS); options go to its loader."""
    if name in _DIGIT_TASKS:
        return load_digits_task(_DIGIT_TASKS[name], **options)
    if name in ("shd", "ssc"):
        return load_shd(name, **options)
    raise InputDataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


def iterate_batches(data: SpikeDataset, batch_size: int, *, shuffle: bool = False,
                    seed: int = 0, rank: int = 0, world_size: int = 1, pad: bool = True
                    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (x, y) NumPy batches; with world_size > 1 this rank's shard.

    With `pad` every rank gets ceil(n / world_size) samples (the order wraps around), so all
    ranks of a data-parallel run take the same number of steps; without it the shards are
    disjoint and together cover each sample exactly once (for evaluation).
    """
    n = len(data)
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    if world_size > 1:
        if pad:
            order = np.resize(order, -(-n // world_size) * world_size)
        order = order[rank::world_size]
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        yield data.x[idx], data.y[idx]


def make_dataloader(data: SpikeDataset, batch_size: int = 64, *, shuffle: bool = False,
                    seed: int = 0, rank: int = 0, world_size: int = 1, num_workers: int = 0):
    """A torch DataLoader over `data` (a DistributedSampler when world_size > 1)."""
    import torch
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

    ds = TensorDataset(torch.from_numpy(data.x), torch.from_numpy(data.y))
    if world_size > 1:
        sampler = DistributedSampler(ds, num_replicas=world_size, rank=rank, shuffle=shuffle,
                                     seed=seed)
        return DataLoader(ds, batch_size=batch_size, sampler=sampler, num_workers=num_workers)
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=gen,
                      num_workers=num_workers)


__all__ = [
    "DATASETS",
    "DataSplits",
    "DatasetNotFoundError",
    "SpikeDataset",
    "iterate_batches",
    "load_dataset",
    "load_digits_task",
    "load_shd",
    "make_dataloader",
]
