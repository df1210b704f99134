"""The bundled default task: scikit-learn's 8x8 handwritten digits as spiking/sequential inputs.

The digits ship inside scikit-learn (`sklearn.datasets.load_digits`), so nothing is downloaded.
Three presentations, all arrays (batch, steps, features) float32 with int64 labels:

* ``rate``: rate-coded spike trains, 64 inputs, `steps` steps; each step a pixel spikes with
  probability ``max_rate * intensity`` (intensity in [0, 1]); seeded Bernoulli draws.
* ``seq``: sequential presentation, `pixels_per_step` pixels per step (8 = one image row per
  step, 1 = one pixel per step); values are the analog intensities, optionally each chunk
  repeated for `repeat` steps.
* ``pseq``: permuted sequential, the same after a fixed seeded permutation of the 64 pixels
  (a small stand-in for permuted sequential MNIST).

The train/val/test split is a fixed seeded, class-stratified permutation (`split_seed`), so
every presentation and every run sees the same images in the same split.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from neurocompile.errors import InputDataError

N_PIXELS = 64
N_CLASSES = 10
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)  # train, val, test
PERMUTATION_SEED = 1234  # the fixed pixel permutation of the ``pseq`` task


@dataclass
class SpikeDataset:
    """One split: inputs x (batch, steps, features) float32 and integer labels y (batch,)."""

    x: np.ndarray
    y: np.ndarray
    n_classes: int
    name: str = ""
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.x.ndim != 3:
            raise InputDataError(f"dataset {self.name!r}: x must be (batch, steps, features), "
                                 f"got shape {self.x.shape}")
        if len(self.x) != len(self.y):
            raise InputDataError(f"dataset {self.name!r}: {len(self.x)} inputs but "
                                 f"{len(self.y)} labels")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def steps(self) -> int:
        return int(self.x.shape[1])

    @property
    def n_features(self) -> int:
        return int(self.x.shape[2])

    def subset(self, index: np.ndarray) -> SpikeDataset:
        """The samples at `index` (a copy), keeping name and info."""
        return SpikeDataset(self.x[index], self.y[index], self.n_classes, self.name,
                            dict(self.info))


@dataclass
class DataSplits:
    """Train, validation and test splits of one task."""

    train: SpikeDataset
    val: SpikeDataset
    test: SpikeDataset

    @property
    def n_features(self) -> int:
        return self.train.n_features

    @property
    def n_classes(self) -> int:
        return self.train.n_classes

    @property
    def steps(self) -> int:
        return self.train.steps


@functools.lru_cache(maxsize=1)
def _digit_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # ships with scikit-learn: no download

    bunch = load_digits()
    x = np.asarray(bunch.data, dtype=np.float32) / 16.0
    return x, np.asarray(bunch.target, dtype=np.int64)


def digit_images() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits as (n, 64) float32 intensities in [0, 1] and int64 labels (copies)."""
    x, y = _digit_arrays()
    return x.copy(), y.copy()


def split_indices(labels: np.ndarray, seed: int = 0,
                  fractions: tuple[float, float, float] = SPLIT_FRACTIONS
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A seeded, class-stratified split into train/val/test index arrays (each sorted)."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise InputDataError(f"split fractions must be three non-negative numbers summing to 1, "
                             f"got {fractions}")
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_train = int(round(fractions[0] * len(idx)))
        n_val = int(round(fractions[1] * len(idx)))
        parts[0].append(idx[:n_train])
        parts[1].append(idx[n_train:n_train + n_val])
        parts[2].append(idx[n_train + n_val:])
    train, val, test = (np.sort(np.concatenate(p)) for p in parts)
    return train, val, test


def rate_code(images: np.ndarray, steps: int, seed: int = 0, max_rate: float = 1.0
              ) -> np.ndarray:
    """Bernoulli spike trains (n, steps, features), P(spike) = max_rate * intensity per step."""
    if steps < 1:
        raise InputDataError(f"rate coding needs steps >= 1, got {steps}")
    if not 0 < max_rate <= 1:
        raise InputDataError(f"max_rate is a per-step probability in (0, 1], got {max_rate}")
    p = np.clip(np.asarray(images, dtype=np.float64), 0.0, 1.0) * max_rate
    rng = np.random.default_rng(seed)
    draws = rng.random((p.shape[0], steps, p.shape[1]))
    return (draws < p[:, None, :]).astype(np.float32)


def sequential(images: np.ndarray, pixels_per_step: int = 8, repeat: int = 1,
               permutation: np.ndarray | None = None) -> np.ndarray:
    """Present each image `pixels_per_step` pixels at a time: (n, 64/pps * repeat, pps)."""
    images = np.asarray(images, dtype=np.float32)
    n_pix = images.shape[1]
    if pixels_per_step < 1 or n_pix % pixels_per_step:
        raise InputDataError(f"pixels_per_step must divide {n_pix}, got {pixels_per_step}")
    if repeat < 1:
        raise InputDataError(f"repeat must be >= 1, got {repeat}")
    if permutation is not None:
        images = images[:, permutation]
    seq = images.reshape(images.shape[0], n_pix // pixels_per_step, pixels_per_step)
    if repeat > 1:
        seq = np.repeat(seq, repeat, axis=1)
    return np.ascontiguousarray(seq, dtype=np.float32)


def pixel_permutation(seed: int = PERMUTATION_SEED, n: int = N_PIXELS) -> np.ndarray:
    """The fixed seeded pixel permutation of the permuted sequential task."""
    return np.random.default_rng(seed).permutation(n)


def load_digits_task(task: str = "rate", *, steps: int = 20, seed: int = 0, split_seed: int = 0,
                     max_rate: float = 1.0, pixels_per_step: int = 8, repeat: int = 1,
                     permutation_seed: int = PERMUTATION_SEED) -> DataSplits:
    """Build one digits task ('rate', 'seq' or 'pseq') with its fixed train/val/test split.

    `steps` and `max_rate` apply to 'rate' (the spike draws use `seed`, a different stream per
    split); `pixels_per_step`, `repeat` and `permutation_seed` to 'seq'/'pseq'.
    """
    images, labels = digit_images()
    index = split_indices(labels, split_seed)
    name = {"rate": "digits", "seq": "digits-seq", "pseq": "digits-pseq"}.get(task)
    if name is None:
        raise InputDataError(f"unknown digits task {task!r}; choose 'rate', 'seq' or 'pseq'")
    info: dict = {"task": task, "split_seed": split_seed}
    out = []
    for k, idx in enumerate(index):
        if task == "rate":
            x = rate_code(images[idx], steps, seed=seed * 3 + k, max_rate=max_rate)
            info.update(steps=steps, seed=seed, max_rate=max_rate)
        else:
            perm = pixel_permutation(permutation_seed) if task == "pseq" else None
            x = sequential(images[idx], pixels_per_step, repeat, perm)
            info.update(pixels_per_step=pixels_per_step, repeat=repeat)
            if task == "pseq":
                info["permutation_seed"] = permutation_seed
        out.append(SpikeDataset(x, labels[idx], N_CLASSES, name, dict(info)))
    return DataSplits(*out)
