"""Read and write NIR graphs and spike data; every write is atomic (temporary file, then rename)."""

from __future__ import annotations

import contextlib
import io
import os
import stat
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import h5py
import nir
import numpy as np

from neurocompile.errors import InputDataError, NIRFileError
from neurocompile.ir.limits import check_bytes


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path for `path`'s new content; on success it is fsynced and renamed
    onto `path`, on failure removed.

    Where the file system allows (Linux O_TMPFILE), the temporary file has no name until the
    block succeeds, so a killed process leaves nothing behind; it is written through
    /proc/self/fd. Elsewhere a hidden `.NAME.*.tmp` file beside `path` is used.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _unnamed_file(path.parent)
    if fd is not None:
        try:
            yield Path(f"/proc/self/fd/{fd}")
            os.fsync(fd)
            tmp = path.parent / f".{path.name}.{os.getpid()}.link.tmp"
            dirfd = os.open(path.parent, os.O_RDONLY)
            try:  # a dir fd makes CPython call linkat(..., AT_SYMLINK_FOLLOW), not link()
                os.link(f"/proc/self/fd/{fd}", tmp.name, dst_dir_fd=dirfd, follow_symlinks=True)
            finally:
                os.close(dirfd)
            try:
                os.replace(tmp, path)
            finally:
                if os.path.lexists(tmp):
                    os.unlink(tmp)
            _fsync_dir(path.parent)
        finally:
            os.close(fd)
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix,
                               dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; give the file the usual mode
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """`atomic_path` as an open binary file (what HDF5 writers get: h5py writes file objects)."""
    with atomic_path(path) as tmp, open(tmp, "w+b") as f:
        yield f
        f.flush()


def _unnamed_file(directory: Path) -> int | None:
    """An O_TMPFILE descriptor in `directory` that can be linked later, or None."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(directory, flag | os.O_RDWR, 0o666 & ~current_umask())
    except OSError:
        return None


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def current_umask() -> int:
    """The process umask (read without changing it for longer than one call)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


NUMERIC_KINDS = "biuf"  # bool, int, unsigned, float: what a graph or input array may hold


def _check_regular(path: Path, error: type[Exception]) -> None:
    """A regular file (not a directory, FIFO or device such as /dev/zero)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{path}: is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{path}: not a regular file (a device, FIFO or socket)")


def _check_hdf5(path: Path, error: type[Exception] = NIRFileError) -> None:
    _check_regular(path, error)
    if not h5py.is_hdf5(path):
        raise error(f"{path}: not an HDF5 file (truncated or another format)")
    try:
        with h5py.File(path, "r") as f:
            _check_hdf5_objects(path, f, error)
    except (NIRFileError, InputDataError):
        raise
    except Exception as exc:  # damaged files raise many kinds
        raise error(f"{path}: cannot read HDF5 ({type(exc).__name__}: {exc})") from None


def _check_hdf5_objects(path: Path, root: h5py.File, error: type[Exception]) -> None:
    """Refuse what would make reading this file read another file, or allocate too much:
    external and soft links, external raw storage, virtual datasets; non-numeric arrays other
    than strings; more declared bytes than the limit."""
    total, count, stack = 0, 0, [("", root)]
    while stack:
        prefix, group = stack.pop()
        for name in group:
            where = f"{prefix}/{name}"
            count += 1
            if count > 1_000_000:
                raise error(f"{path}: more than 1,000,000 HDF5 objects")
            link = group.get(name, getlink=True)
            if isinstance(link, (h5py.ExternalLink, h5py.SoftLink)):
                raise error(f"{path}: {where} is a link ({type(link).__name__}); links to "
                            "other objects or files are not read")
            obj = group[name]
            if isinstance(obj, h5py.Group):
                stack.append((where, obj))
                continue
            if obj.external or obj.is_virtual:
                raise error(f"{path}: {where} keeps its data in another file (external or "
                            "virtual storage); not read")
            kind = obj.dtype.kind
            if kind not in NUMERIC_KINDS and not h5py.check_string_dtype(obj.dtype):
                raise error(f"{path}: {where} has dtype {obj.dtype}; arrays must be numbers")
            if obj.ndim == 2 and obj.size >= LARGE_WEIGHT_ENTRIES and obj.name.endswith(
                    "/weight"):
                continue  # read in blocks into CSR, its non-zeros checked as they come
            total += int(obj.size) * int(obj.dtype.itemsize)
    check_bytes(f"{path}: declared arrays", total)


def load_graph(path: str | os.PathLike, *, check: bool = True) -> nir.NIRGraph:
    """Read a NIR graph; unreadable files raise NIRFileError with a one-line reason, invalid
    graphs GraphValidationError naming the file and every problem (check=False: read only, for
    `inspect`, which lists the problems itself).

    Large Linear/Affine weights are read in row blocks straight into CSR (kept dense where
    they are dense), so memory follows the non-zero weights, not the declared matrix.
    """
    path = Path(path)
    _check_hdf5(path)
    blocks: dict = {}
    try:
        with h5py.File(path, "r") as f:
            if "node" not in f:
                raise NIRFileError(f"{path}: HDF5 file has no 'node' group; not a NIR graph")
            big = _large_weights(f)
            source: Any = path
            if big:
                blocks = {name: _read_weight(path, f[p]) for name, p in big.items()}
                source = io.BytesIO()
                with h5py.File(source, "w") as small:
                    _copy_except(f, small, set(big.values()))
                    for p in big.values():
                        small[p] = np.zeros((f[p].shape[0], 1))
                source.seek(0)
        graph = nir.read(source, type_check=False)
    except (NIRFileError, InputDataError):
        raise
    except Exception as exc:  # h5py/nir raise many kinds on damaged files
        raise NIRFileError(f"{path}: cannot read NIR graph ({type(exc).__name__}: {exc})") from exc
    if not isinstance(graph, nir.NIRGraph):
        raise NIRFileError(f"{path}: top-level node is {type(graph).__name__}, not a NIRGraph")
    for name, w in blocks.items():
        node = graph.nodes[name]
        node.weight = w
        node.input_type = {"input": np.array([w.shape[1]])}
        node.output_type = {"output": np.array([w.shape[0]])}
    if check:
        from neurocompile.ir.validate import check_graph

        check_graph(graph, str(path))
    return graph


LARGE_WEIGHT_ENTRIES = 1 << 22  # a weight this large is written chunked and read in blocks


def _large_weights(f: h5py.File) -> dict[str, str]:
    """{node: dataset path} of the top-level Linear/Affine weights of at least
    LARGE_WEIGHT_ENTRIES entries."""
    found: dict[str, str] = {}
    nodes = f.get("node/nodes")
    if not isinstance(nodes, h5py.Group):
        return found
    for name in nodes:
        group = nodes[name]
        if not isinstance(group, h5py.Group) or "weight" not in group or "type" not in group:
            continue
        kind = group["type"][()]
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        ds = group["weight"]
        if kind in ("Linear", "Affine") and isinstance(ds, h5py.Dataset) and ds.ndim == 2 \
                and ds.size >= LARGE_WEIGHT_ENTRIES:
            found[name] = ds.name.lstrip("/")
    return found


def _read_weight(path: Path, ds: h5py.Dataset):
    """A 2-D weight dataset in row blocks: CSR unless it is dense (then an array)."""
    import scipy.sparse as sp

    rows, cols = ds.shape
    step = max(1, (1 << 22) // max(1, cols))
    parts, nnz = [], 0
    for start in range(0, rows, step):
        block = np.asarray(ds[start:start + step], dtype=np.float64)
        csr = sp.csr_matrix(block)
        nnz += csr.nnz
        check_bytes(f"{path}: non-zero weights of {ds.name}", nnz * 12)
        parts.append(csr)
    out = sp.vstack(parts, format="csr") if parts else sp.csr_matrix((rows, cols))
    if nnz > 0.5 * rows * cols:
        check_bytes(f"{path}: dense weights of {ds.name}", rows * cols * 8)
        return out.toarray()
    return out


def _copy_except(src: h5py.Group, dst: h5py.Group, skip: set[str]) -> None:
    for name, obj in src.items():
        if obj.name.lstrip("/") in skip:
            continue
        if isinstance(obj, h5py.Group):
            _copy_except(obj, dst.create_group(name), skip)
        else:
            dst.create_dataset(name, data=obj[()])
        for key, value in obj.attrs.items():
            dst[name].attrs[key] = value


def save_graph(graph: nir.NIRGraph, path: str | os.PathLike) -> Path:
    """Write a NIR graph atomically; returns the path.

    Sparse (scipy) and large weights are written as standard dense datasets, chunked and
    gzip-compressed, block by block, so writing never expands the whole matrix in memory.
    """
    import copy

    from neurocompile.ir import weights

    path = Path(path)
    big = {n: node.weight for n, node in graph.nodes.items()
           if isinstance(node, (nir.Linear, nir.Affine)) and node.weight is not None
           and (weights.is_sparse(node.weight)
                or weights.entries(node.weight) >= LARGE_WEIGHT_ENTRIES)}
    plain = graph
    if big:
        plain = copy.copy(graph)
        plain.nodes = dict(graph.nodes)
        for name in big:
            node = copy.copy(graph.nodes[name])
            node.weight = np.zeros((1, 1))
            plain.nodes[name] = node
    with atomic_file(path) as f:
        nir.write(f, plain)
        if big:
            f.flush()
            with h5py.File(f, "r+") as h:
                for name, w in big.items():
                    _write_weight(h, f"node/nodes/{name}/weight", w)
    return path


def _write_weight(h: h5py.File, where: str, w) -> None:
    from neurocompile.ir import weights

    del h[where]
    rows, cols = weights.shape(w)
    step = max(1, min(rows, (1 << 20) // max(1, cols)))
    ds = h.create_dataset(where, shape=(rows, cols), dtype=np.float64,
                          chunks=(step, max(1, cols)), compression="gzip", compression_opts=1,
                          fillvalue=0.0)
    csr = weights.as_csr(w, np.float64) if weights.is_sparse(w) else None
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        block = csr[start:stop].toarray() if csr is not None else np.asarray(w[start:stop])
        if block.any():  # an all-zero chunk is not stored: it reads as the fill value
            ds[start:stop] = block


def load_spikes(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read spike/input data: .npz (arrays keyed by Input node name) or a NIR data file.

    Arrays are (batch, steps, *shape); a NIR TimeGriddedData is (samples, steps, neurons).
    .npz files are read with allow_pickle=False.
    """
    path = Path(path)
    _check_regular(path, InputDataError)
    if path.suffix == ".npz":
        _check_npz(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: np.asarray(data[k]) for k in data.files}
        except Exception as exc:
            raise InputDataError(f"{path}: cannot read .npz ({type(exc).__name__}: {exc})") from exc
    _check_hdf5(path, InputDataError)
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


def _check_npz(path: Path) -> None:
    """Read each member's header only: numeric dtypes, and the bytes they declare within the
    limit (a small compressed file may inflate to gigabytes)."""
    try:
        with zipfile.ZipFile(path) as zf:
            total = 0
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    raise InputDataError(f"{path}: member {info.filename!r} is not a .npy array")
                with zf.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                            else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read(member)
                if dtype.kind not in NUMERIC_KINDS or dtype.fields is not None:
                    raise InputDataError(f"{path}: array {info.filename[:-4]!r} has dtype "
                                         f"{dtype}; expected numbers")
                total += int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
                check_bytes(f"{path}: arrays", total)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise InputDataError(f"{path}: not a readable .npz ({type(exc).__name__}: "
                             f"{str(exc)[:120]})") from None


def save_spikes(arrays: Mapping[str, np.ndarray], path: str | os.PathLike, dt: float = 1.0) -> Path:
    """Write arrays keyed by node name: .npz, or a NIR data file for any other suffix."""
    path = Path(path)
    with atomic_file(path) as f:
        if path.suffix == ".npz":
            np.savez_compressed(f, **{k: np.asarray(v) for k, v in arrays.items()})
        else:
            nodes = {}
            for name, arr in arrays.items():
                arr = np.asarray(arr)
                flat = arr.reshape(arr.shape[0], arr.shape[1], -1)
                nodes[name] = nir.NIRNodeData(
                    observables={"output": nir.TimeGriddedData(data=flat, dt=float(dt))})
            nir.write_data(f, nir.NIRGraphData(nodes=nodes))
    return path
