"""The Lava environment: the worker's path holds only this package, the environment check is a
real worker round trip, and `neurocompile lava setup` builds (or completes) the venv."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_main

from neurocompile import lava_setup
from neurocompile.errors import UnsupportedError
from neurocompile.targets import worker
from neurocompile.targets.lava import target as lava_target

REPO = Path(__file__).resolve().parents[1]


def _run(args, capsys):
    return run_main(args, capsys)


def test_the_worker_path_holds_only_this_package(tmp_path):
    path = Path(worker.worker_pythonpath(tmp_path))
    assert [p.name for p in path.iterdir()] == ["neurocompile"]
    import neurocompile

    assert (path / "neurocompile").resolve() == Path(neurocompile.__file__).resolve().parent
    assert "site-packages" not in str(path)


def test_the_environment_check_runs_the_worker_not_only_an_import(tmp_path, capsys,
                                                                  monkeypatch,
                                                                  lava_python_path):
    """An interpreter where `-c "import lava"` works but the worker module cannot start (the
    numpy of another Python on its path) must fail lava-check, with one line, exit 2."""
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\n"
                    f'if [ "$1" = "-c" ]; then exec {lava_python_path} "$@"; fi\n'
                    "echo \"ModuleNotFoundError: No module named "
                    "'numpy._core._multiarray_umath'\" >&2\nexit 1\n")
    fake.chmod(0o755)
    subprocess.run([str(fake), "-c", "import lava"], check=True)  # the old check passed here
    monkeypatch.setenv("NEUROCOMPILE_LAVA_PYTHON", str(fake))
    code, _, err = _run(["lava-check"], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("error: Lava environment failed:") and "numpy._core" in err
    monkeypatch.setenv("NEUROCOMPILE_LAVA_PYTHON", lava_python_path)
    code, out, err = _run(["lava-check", "--json", "-"], capsys)
    assert code == 0, err
    import json

    report = json.loads(out)
    assert report["status"] == "ok" and report["max_abs_diff"] == 0.0
    assert "Python 3.10" in report["environment"] and "lava-nc 0.10.0" in report["environment"]


def test_without_an_environment_the_hint_names_lava_setup(tmp_path, monkeypatch):
    monkeypatch.delenv("NEUROCOMPILE_LAVA_PYTHON", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.setattr(lava_target, "package_environment", lambda: None)
    with pytest.raises(UnsupportedError, match="neurocompile lava setup"):
        lava_target.find_lava_python()
    made = tmp_path / "neurocompile" / "venv-lava" / "bin" / "python"
    made.parent.mkdir(parents=True)
    made.write_text("")
    assert lava_target.find_lava_python() == str(made)
    assert lava_setup.default_directory() == made.parent.parent


def test_requirements_are_the_core_dependencies_and_the_lava_extra():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    strip = [r.split(";")[0].strip().replace(" ", "") for r in project["dependencies"]]

    def norm(reqs):  # metadata may reorder a specifier set ("nir<2,>=1.0.8")
        return sorted("".join(sorted(r.replace(" ", ""))) for r in reqs)

    lava = project["optional-dependencies"]["lava"]
    assert norm(lava_setup.CORE_REQUIREMENTS) == norm(strip)
    assert lava_setup.LAVA_REQUIREMENTS == lava
    assert norm(lava_setup.requirements()) == norm(strip + lava)


def test_python310_lookup(lava_python_path, monkeypatch, capsys):
    assert lava_setup.find_python310(lava_python_path) == lava_python_path
    command = f"env NEUROCOMPILE_UNUSED=1 {lava_python_path}"  # a command line, as PYTHON310
    monkeypatch.setenv("PYTHON310", command)
    assert lava_setup.find_python310() == command
    with pytest.raises(UnsupportedError, match="is not a working Python 3.10"):
        lava_setup.find_python310(sys.executable)
    code, _, err = _run(["lava", "setup", "--python", sys.executable, "--dir", "x"], capsys)
    assert code == 2 and err.count("\n") == 1 and "not a working Python 3.10" in err


def test_setup_completes_a_venv_and_checks_it_with_a_round_trip(tmp_path, capsys,
                                                                lava_python_path, monkeypatch):
    """A venv whose packages are already there (here: seen through a .pth file, so pip has
    nothing to download) is completed and checked; the check is the worker round trip. The
    directory is given relative to the current one, as the Makefile gives it."""
    site = subprocess.run([lava_python_path, "-c", "import sysconfig; "
                           "print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    venv = tmp_path / "venv"
    subprocess.run([lava_python_path, "-m", "venv", "--without-pip", str(venv)], check=True)
    own_site = next((venv / "lib").glob("python3.10/site-packages"))
    (own_site / "lava-env.pth").write_text(site + "\n")
    # pip itself comes from the seen site-packages: the venv was made without it
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(["lava", "setup", "--dir", "venv", "--json", "-"], capsys)
    assert code == 0, err
    import json

    report = json.loads(out)
    assert report["python"] == str(venv / "bin" / "python")
    assert report["check"]["status"] == "ok"
    assert str(venv / "bin" / "python") in report["check"]["environment"]
    assert os.environ.get("NEUROCOMPILE_LAVA_PYTHON") != report["python"]  # restored
