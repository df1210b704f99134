"""Files that would read other files, hang, or allocate without bound are refused before any
of that happens, each with one line naming the file."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile

import h5py
import numpy as np
import pytest
from conftest import REPO
from test_ir import ff_graph

from neurocompile.cli.main import main
from neurocompile.errors import InputDataError, NIRFileError
from neurocompile.ir.io import load_graph, load_spikes, save_graph

SECRET = b"secret-bytes-that-must-not-travel"


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "secret.bin"
    path.write_bytes(SECRET * 4)
    return path


def _weight_path(f: h5py.File) -> str:
    found = []
    f.visititems(lambda name, obj: found.append(name)
                 if isinstance(obj, h5py.Dataset) and name.endswith("/weight") else None)
    return found[0]


def test_external_raw_storage_is_refused(tmp_path, secret):
    path = save_graph(ff_graph(), tmp_path / "g.nir")
    with h5py.File(path, "r+") as f:
        name = _weight_path(f)
        shape = f[name].shape
        del f[name]
        f.create_dataset(name, shape=shape, dtype="u1", external=[(str(secret), 0, 4096)])
    with pytest.raises(NIRFileError, match="keeps its data in another file"):
        load_graph(path)


@pytest.mark.parametrize("link", ["external", "soft"])
def test_links_are_refused(tmp_path, secret, link):
    other = save_graph(ff_graph(), tmp_path / "other.nir")
    path = save_graph(ff_graph(), tmp_path / "g.nir")
    with h5py.File(path, "r+") as f:
        name = _weight_path(f)
        del f[name]
        f[name] = (h5py.ExternalLink(str(other), "/" + name) if link == "external"
                   else h5py.SoftLink("/version"))
    with pytest.raises(NIRFileError, match="is a link"):
        load_graph(path)


def test_inspect_of_an_external_file_is_an_error_and_no_output_is_written(tmp_path, secret,
                                                                          capsys):
    path = save_graph(ff_graph(), tmp_path / "g.nir")
    with h5py.File(path, "r+") as f:
        name = _weight_path(f)
        shape = f[name].shape
        del f[name]
        f.create_dataset(name, shape=shape, dtype="u1", external=[(str(secret), 0, 4096)])
    for args in (["inspect", str(path)],
                 ["prune", str(path), "--sparsity", "0.5", "-o", str(tmp_path / "p.nir")]):
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and "another file" in err
    assert not (tmp_path / "p.nir").exists()


@pytest.mark.parametrize("special", ["/dev/zero", "fifo", "dir"])
def test_non_regular_files_are_refused_without_reading(tmp_path, special):
    if special == "fifo":
        path = tmp_path / "pipe.nir"
        os.mkfifo(path)
    elif special == "dir":
        path = tmp_path / "d.nir"
        path.mkdir()
    else:
        path = special
    with pytest.raises(NIRFileError, match="not a regular file|is a directory"):
        load_graph(path)
    with pytest.raises(InputDataError, match="not a regular file|is a directory"):
        load_spikes(path)


def _bomb(path, shape=(400_000_000,), dtype="<f8") -> None:
    """An .npz of a few hundred bytes whose array header declares `shape` (3.2 GB)."""
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": dtype, "fortran_order": False,
                                                "shape": shape})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("input.npy", head.getvalue() + b"\0" * 64)


def test_deflate_bomb_npz_is_refused_from_its_header_with_little_memory(tmp_path):
    bomb = tmp_path / "bomb.npz"
    _bomb(bomb)
    code = ("import resource, sys; from neurocompile.ir.io import load_spikes\n"
            f"try:\n    load_spikes({str(bomb)!r})\nexcept Exception as e:\n"
            "    print(type(e).__name__, e)\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "NEUROCOMPILE_MAX_BYTES": str(2**30)}, timeout=60)
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("InputDataError") and "3,200,000,000 bytes" in lines[0]
    assert int(lines[1]) * 1024 < 2**30  # peak resident memory under 1 GiB


@pytest.mark.parametrize("dtype", ["|O", "<c16", [("a", "<f8")]])
def test_npz_of_non_numbers_is_refused(tmp_path, dtype):
    path = tmp_path / "x.npz"
    _bomb(path, shape=(2, 3, 4), dtype=dtype)
    with pytest.raises(InputDataError, match="expected numbers"):
        load_spikes(path)


def test_huge_simulation_is_refused_before_allocation(monkeypatch):
    from neurocompile.targets.reference import simulate

    monkeypatch.setenv("NEUROCOMPILE_MAX_BYTES", str(10**6))
    x = np.zeros((64, 2000, 3))
    with pytest.raises(InputDataError, match=r"simulating 64 sample\(s\) x 2000 steps .* above "
                                             r"the limit of 1,000,000"):
        simulate(ff_graph(), {"in": x})
