"""A pip user's install: build the wheel, install it into a fresh venv (no source tree, the
package in that venv's site-packages beside Python 3.11's numpy), give it a Lava environment
through `neurocompile lava setup`, and run `simulate --target lava` through it.

The Lava venv: by default `lava setup` completes a fresh venv that sees the packages of an
existing Lava environment (NEUROCOMPILE_LAVA_PYTHON's, through a .pth file), so nothing is
downloaded; with NEUROCOMPILE_WHEEL_FULL_SETUP=1 it builds one from nothing (Python 3.10 from
$PYTHON310, lava-nc from the package index; a few minutes).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
CORE = ["numpy", "nir", "h5py", "scipy", "threadpoolctl", "click", "rich"]
SKIP = shutil.ignore_patterns(".git", ".venv*", "runs", "build", "*.egg-info", "__pycache__",
                              ".pytest_cache", ".ruff_cache", ".hypothesis")


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert out.returncode == 0, f"{cmd}: {out.stdout[-1500:]} {out.stderr[-1500:]}"
    return out


@pytest.mark.slow
def test_the_wheel_runs_lava_in_a_fresh_venv(tmp_path, lava_python_path):
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=SKIP)
    _run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
          "-q", "-w", str(tmp_path / "dist")])
    wheel = next((tmp_path / "dist").glob("neurocompile-*.whl"))

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",
                                                              "NEUROCOMPILE_LAVA_PYTHON")}
    env["XDG_DATA_HOME"] = str(tmp_path / "data")  # `lava setup`'s default place, found by run
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    py = str(venv / "bin" / "python")
    _run([py, "-m", "pip", "install", "-q", "--no-deps", str(wheel)])
    _run([py, "-m", "pip", "install", "-q", *CORE])  # from the index (local mirror here)
    site = _run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
                ).stdout.strip()
    where = _run([py, "-c", "import neurocompile, numpy; print(neurocompile.__file__); "
                            "print(numpy.__version__)"], cwd=tmp_path, env=env).stdout.split()
    assert where[0].startswith(site), "the package must come from the venv, not the source"
    assert (Path(site) / "numpy").is_dir()  # the site-packages the worker must not see

    lava_dir = tmp_path / "data" / "neurocompile" / "venv-lava"
    full = os.environ.get("NEUROCOMPILE_WHEEL_FULL_SETUP") == "1"
    if not full:  # a venv seeing the existing Lava environment's packages: nothing to download
        base = _run([lava_python_path, "-c", "import sysconfig; "
                     "print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
        _run([lava_python_path, "-m", "venv", "--without-pip", str(lava_dir)])
        own = next((lava_dir / "lib").glob("python3.10/site-packages"))
        (own / "lava-env.pth").write_text(base + "\n")
        python310 = lava_python_path
    else:
        python310 = os.environ.get("PYTHON310", "python3.10")
    cli = str(venv / "bin" / "neurocompile")
    setup = _run([cli, "lava", "setup", "--python", python310, "--json", "-"], env=env,
                 cwd=tmp_path, timeout=1800)
    report = json.loads(setup.stdout)
    assert report["python"] == str(lava_dir / "bin" / "python")
    assert report["check"]["status"] == "ok"

    # simulate --target lava through the installed command, the interpreter found by itself
    _run([cli, "demo", "-q", "-o", "demo"], env=env, cwd=tmp_path)
    out = _run([cli, "simulate", "demo/demo.nir", "--target", "lava", "--input",
                "demo/input.npz", "-o", "lava.npz", "--json", "-"], env=env, cwd=tmp_path)
    assert json.loads(out.stdout)["target"] == "lava"
    with np.load(tmp_path / "lava.npz") as lava, \
            np.load(tmp_path / "demo" / "output.npz") as ref:  # the demo's reference run
        np.testing.assert_array_equal(lava["output"], ref["output"])
    doctor = _run([cli, "doctor", "--target", "lava", "--json", "-"], env=env, cwd=tmp_path)
    assert json.loads(doctor.stdout)["targets"][0]["status"] == "ok"


def _project() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def test_extras_split_data_and_plots_need_no_torch():
    extras = _project()["optional-dependencies"]
    names = {k: {r.split("=")[0].split(">")[0].split("<")[0].strip() for r in v}
             for k, v in extras.items()}
    assert names["data"] == {"scikit-learn"} and names["plots"] == {"matplotlib"}
    assert not names["torch"] & {"scikit-learn", "matplotlib"}
    install = [line for line in (REPO / "Makefile").read_text().splitlines()
               if "pip install" in line and "-e" in line][0]
    listed = install.split('".[')[1].split(']"')[0].split(",")
    assert {"torch", "data", "plots", "dev", "norse", "onnx"} <= set(listed)


def test_license_is_the_declared_one():
    text = (REPO / "LICENSE").read_text()
    assert _project()["license"] == "BSD-3-Clause"
    assert text.startswith("BSD 3-Clause License") and "neurocompile contributors" in text
