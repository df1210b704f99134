"""Read and write NIR graphs and spike data; every write is atomic (temporary file, then rename)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import h5py
import nir
import numpy as np

from neurocompile.errors import InputDataError, NIRFileError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix,
                               dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; give the file the usual mode
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def current_umask() -> int:
    """The process umask (read without changing it for longer than one call)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _check_hdf5(path: Path) -> None:
    if not path.exists():
        raise NIRFileError(f"{path}: no such file")
    if path.is_dir():
        raise NIRFileError(f"{path}: is a directory, not a NIR file")
    if not h5py.is_hdf5(path):
        raise NIRFileError(f"{path}: not an HDF5 file (truncated or another format)")


def load_graph(path: str | os.PathLike) -> nir.NIRGraph:
    """Read a NIR graph; unreadable files raise NIRFileError with a one-line reason.

    Types are not checked here: `neurocompile.ir.validate` reports shape problems per node.
    """
    path = Path(path)
    _check_hdf5(path)
    try:
        with h5py.File(path, "r") as f:
            if "node" not in f:
                raise NIRFileError(f"{path}: HDF5 file has no 'node' group; not a NIR graph")
        graph = nir.read(path, type_check=False)
    except NIRFileError:
        raise
    except Exception as exc:  # h5py/nir raise many kinds on damaged files
        raise NIRFileError(f"{path}: cannot read NIR graph ({type(exc).__name__}: {exc})") from exc
    if not isinstance(graph, nir.NIRGraph):
        raise NIRFileError(f"{path}: top-level node is {type(graph).__name__}, not a NIRGraph")
    return graph


def save_graph(graph: nir.NIRGraph, path: str | os.PathLike) -> Path:
    """Write a NIR graph atomically; returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        nir.write(str(tmp), graph)
    return path


def load_spikes(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read spike/input data: .npz (arrays keyed by Input node name) or a NIR data file.

    Arrays are (batch, steps, *shape); a NIR TimeGriddedData is (samples, steps, neurons).
    .npz files are read with allow_pickle=False.
    """
    path = Path(path)
    if not path.exists():
        raise InputDataError(f"{path}: no such file")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: np.asarray(data[k]) for k in data.files}
        except Exception as exc:
            raise InputDataError(f"{path}: cannot read .npz ({type(exc).__name__}: {exc})") from exc
    _check_hdf5(path)
    try:
        data = nir.read_data(str(path))
    except Exception as exc:
        raise NIRFileError(f"{path}: cannot read NIR data ({type(exc).__name__}: {exc})") from exc
    out: dict[str, np.ndarray] = {}
    for name, node_data in data.nodes.items():
        if not isinstance(node_data, nir.NIRNodeData) or not node_data.observables:
            continue
        obs = next(iter(node_data.observables.values()))
        if isinstance(obs, nir.EventData):
            obs = obs.to_time_gridded(dt=1.0) if hasattr(obs, "to_time_gridded") else obs
        out[name] = np.asarray(obs.data)
    if not out:
        raise InputDataError(f"{path}: NIR data file holds no time-gridded node data")
    return out


def save_spikes(arrays: Mapping[str, np.ndarray], path: str | os.PathLike, dt: float = 1.0) -> Path:
    """Write arrays keyed by node name: .npz, or a NIR data file for any other suffix."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".npz":
            with open(tmp, "wb") as f:
                np.savez_compressed(f, **{k: np.asarray(v) for k, v in arrays.items()})
        else:
            nodes = {}
            for name, arr in arrays.items():
                arr = np.asarray(arr)
                flat = arr.reshape(arr.shape[0], arr.shape[1], -1)
                nodes[name] = nir.NIRNodeData(
                    observables={"output": nir.TimeGriddedData(data=flat, dt=float(dt))})
            nir.write_data(str(tmp), nir.NIRGraphData(nodes=nodes))
    return path
