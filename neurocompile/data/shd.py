"""Spiking Heidelberg Digits (SHD) and Spiking Speech Commands (SSC) from their HDF5 files.

The published files (Cramer, Stradmann, Schemmel, Zenke, "The Heidelberg spiking data sets
for the systematic evaluation of spiking neural networks", IEEE TNNLS 2022) hold, per sample,
ragged (variable-length) arrays:

    spikes/times   float, seconds      (vlen array per sample)
    spikes/units   int, channel 0..699 (vlen array per sample, same length as times)
    labels         int, one per sample

This module reads exactly that layout and bins each sample into `steps` steps over `duration`
seconds: x[n, t, u] = number of spikes of unit u with t*duration/steps <= time < (t+1)*...
(or 1/0 with ``binary=True``); spikes at or after `duration` are dropped. Nothing is ever
downloaded: point at local files with ``path=`` or the environment variables below.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from neurocompile.data.digits import DataSplits, SpikeDataset
from neurocompile.errors import InputDataError

N_UNITS = 700  # cochlea-model channels of SHD and SSC (Cramer et al. 2022, Sec. III)
N_CLASSES = {"shd": 20, "ssc": 35}  # Cramer et al. 2022, Sec. IV
ENV_VARS = {"shd": "NEUROCOMPILE_SHD_DIR", "ssc": "NEUROCOMPILE_SSC_DIR"}
DATA_DIR_ENV = "NEUROCOMPILE_DATA_DIR"
SOURCE_URL = "https://zenkelab.org/datasets/"


class DatasetNotFoundError(InputDataError):
    """A dataset whose files are not on this machine (neurocompile never downloads them)."""


def bin_spikes(times: list[np.ndarray] | np.ndarray, units: list[np.ndarray] | np.ndarray,
               steps: int, duration: float, n_units: int = N_UNITS, binary: bool = False,
               source: str = "spike data") -> np.ndarray:
    """Bin ragged per-sample (times [s], units) into a (samples, steps, n_units) float32 array."""
    if steps < 1 or not duration > 0:
        raise InputDataError(f"{source}: need steps >= 1 and duration > 0, "
                             f"got steps={steps}, duration={duration}")
    n = len(times)
    if len(units) != n:
        raise InputDataError(f"{source}: {n} time arrays but {len(units)} unit arrays")
    lengths = np.fromiter((len(t) for t in times), dtype=np.int64, count=n)
    for i in range(n):
        if len(units[i]) != lengths[i]:
            raise InputDataError(f"{source}: sample {i} has {lengths[i]} spike times but "
                                 f"{len(units[i])} units")
    out = np.zeros((n, steps, n_units), dtype=np.float32)
    if lengths.sum() == 0:
        return out
    t_all = np.concatenate([np.asarray(t, dtype=np.float64) for t in times])
    u_all = np.concatenate([np.asarray(u, dtype=np.int64) for u in units])
    s_all = np.repeat(np.arange(n, dtype=np.int64), lengths)
    if u_all.min() < 0 or u_all.max() >= n_units:
        bad = int(u_all.max() if u_all.max() >= n_units else u_all.min())
        raise InputDataError(f"{source}: unit index {bad} outside 0..{n_units - 1} "
                             f"(n_units={n_units})")
    if np.any(t_all < 0) or not np.all(np.isfinite(t_all)):
        raise InputDataError(f"{source}: spike times must be finite and >= 0 seconds")
    b_all = np.floor(t_all * (steps / duration)).astype(np.int64)
    keep = b_all < steps
    flat = (s_all[keep] * steps + b_all[keep]) * n_units + u_all[keep]
    counts = np.bincount(flat, minlength=out.size).astype(np.float32)
    out = counts.reshape(out.shape)
    if binary:
        np.minimum(out, 1.0, out=out)
    return out


def read_spike_file(path: str | os.PathLike, steps: int = 100, duration: float = 1.0,
                    n_units: int = N_UNITS, binary: bool = False, max_samples: int | None = None,
                    n_classes: int | None = None, name: str = "shd") -> SpikeDataset:
    """Read one SHD/SSC-format HDF5 file and bin it (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: no such file")
    if not h5py.is_hdf5(path):
        raise InputDataError(f"{path}: not an HDF5 file")
    with h5py.File(path, "r") as f:
        for key in ("spikes/times", "spikes/units", "labels"):
            if key not in f:
                raise InputDataError(f"{path}: missing dataset {key!r} (expected the SHD/SSC "
                                     f"layout: spikes/times, spikes/units, labels)")
        sel = slice(None) if max_samples is None else slice(0, int(max_samples))
        times = list(f["spikes/times"][sel])
        units = list(f["spikes/units"][sel])
        labels = np.asarray(f["labels"][sel], dtype=np.int64)
    if len(labels) != len(times):
        raise InputDataError(f"{path}: {len(times)} samples but {len(labels)} labels")
    x = bin_spikes(times, units, steps, duration, n_units, binary, source=str(path))
    n_cls = int(n_classes) if n_classes is not None else int(labels.max(initial=-1)) + 1
    if len(labels) and (labels.min() < 0 or labels.max() >= n_cls):
        raise InputDataError(f"{path}: label {int(labels.max())} outside 0..{n_cls - 1}")
    info = {"file": str(path), "steps": steps, "duration": duration, "binary": binary}
    return SpikeDataset(x, labels, n_cls, name, info)


def find_file(kind: str, split: str, path: str | os.PathLike | None = None) -> Path:
    """Locate `{kind}_{split}.h5` in directory `path` (a file's directory), else env variables."""
    fname = f"{kind}_{split}.h5"
    candidates: list[Path] = []
    if path is not None:
        p = Path(path)
        candidates.append((p.parent if p.is_file() else p) / fname)
    else:
        for var in (ENV_VARS[kind], DATA_DIR_ENV):
            if os.environ.get(var):
                candidates.append(Path(os.environ[var]) / fname)
    for c in candidates:
        if c.is_file():
            return c
    looked = ", ".join(str(c) for c in candidates) or "nowhere (no path given, no env variable set)"
    raise DatasetNotFoundError(
        f"{kind.upper()} file {fname} is not present (looked in: {looked}). neurocompile does not "
        f"download datasets: fetch {fname}.gz from {SOURCE_URL}, gunzip it, and pass its "
        f"directory with path=... (CLI: --data-path DIR) or set {ENV_VARS[kind]} "
        f"(or {DATA_DIR_ENV}) to that directory.")


def load_shd(kind: str = "shd", *, steps: int = 100, duration: float = 1.0,
             path: str | os.PathLike | None = None, binary: bool = False,
             val_fraction: float = 0.1, seed: int = 0, max_samples: int | None = None,
             n_units: int = N_UNITS) -> DataSplits:
    """Load SHD or SSC train/val/test splits from local files (never downloads).

    SSC ships a validation file (ssc_valid.h5); SHD has none, so a seeded `val_fraction` of
    its training file becomes the validation split. `path` is a directory holding the files.
    """
    kind = kind.lower()
    if kind not in N_CLASSES:
        raise InputDataError(f"unknown spike dataset {kind!r}; choose 'shd' or 'ssc'")
    kw = dict(steps=steps, duration=duration, n_units=n_units, binary=binary,
              max_samples=max_samples, n_classes=N_CLASSES[kind], name=kind)
    train = read_spike_file(find_file(kind, "train", path), **kw)
    test = read_spike_file(find_file(kind, "test", path), **kw)
    if kind == "ssc":
        val = read_spike_file(find_file(kind, "valid", path), **kw)
    else:
        if not 0 < val_fraction < 1:
            raise InputDataError(f"val_fraction must be in (0, 1), got {val_fraction}")
        perm = np.random.default_rng(seed).permutation(len(train))
        n_val = max(1, int(round(val_fraction * len(train))))
        val, train = train.subset(np.sort(perm[:n_val])), train.subset(np.sort(perm[n_val:]))
    return DataSplits(train, val, test)
