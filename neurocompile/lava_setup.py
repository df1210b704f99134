"""Create the Lava environment: a Python 3.10 venv with lava-nc and this package's runtime
dependencies, for the lava target's worker (`neurocompile lava setup`, `make lava-venv`).

The package itself is not installed there: each run stages this interpreter's own
`neurocompile` package onto the worker's path (targets/worker.py), so parent and worker always
run the same code. Python 3.10 is found in this order: --python, $PYTHON310 (a path or a
command line), a plain `python3.10`, then pyenv's newest 3.10.x.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path

from neurocompile.errors import UnsupportedError

LAVA_REQUIREMENTS = ["lava-nc==0.10.0", "numpy<2", "scipy<1.16"]  # pyproject's `lava` extra
# the package's runtime dependencies when it is not installed (a source checkout on PYTHONPATH)
CORE_REQUIREMENTS = ["numpy>=1.24", "nir>=1.0.8,<2", "h5py>=3.8", "scipy>=1.10",
                     "threadpoolctl>=3", "click>=8.1", "rich>=13", "tomli>=2"]


def is_python310(python: str) -> bool:
    """Whether the command `python` (a path, or a command line such as
    "env PYENV_VERSION=3.10.13 python3.10") runs and is a Python 3.10."""
    try:
        out = subprocess.run([*shlex.split(python), "-c", "import sys; assert sys.version_info[:2] == (3, 10)"],
                             capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0


def find_python310(given: str | None = None) -> str:
    """The Python 3.10 interpreter to build the venv from: `given`, $PYTHON310, `python3.10`
    on PATH, else the newest pyenv 3.10.x. Raises UnsupportedError naming what was tried."""
    explicit = given or os.environ.get("PYTHON310")
    if explicit:
        if is_python310(explicit):
            return explicit
        raise UnsupportedError(f"{explicit} is not a working Python 3.10 (Lava 0.10 needs 3.10)")
    plain = shutil.which("python3.10")
    if plain and is_python310(plain):
        return plain
    if shutil.which("pyenv"):
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
        bare = subprocess.run(["pyenv", "versions", "--bare"], capture_output=True,
                              text=True).stdout.split()
        versions = [v for v in bare if v == "3.10" or v.startswith("3.10.")]
        for v in sorted(versions, key=lambda v: [int(p) for p in v.split(".") if p.isdigit()],
                        reverse=True):
            cand = str(Path(root) / "versions" / v / "bin" / "python3.10")
            if is_python310(cand):
                return cand
    raise UnsupportedError("no Python 3.10 found: pass --python /path/to/python3.10 or set "
                           "PYTHON310 (Lava 0.10 needs 3.10)")


def requirements() -> list[str]:
    """What the Lava venv needs: this package's core dependencies and its `lava` extra, from
    the installed metadata (the constants above where the package runs from a checkout)."""
    try:
        meta = requires("neurocompile") or []
    except PackageNotFoundError:
        return CORE_REQUIREMENTS + LAVA_REQUIREMENTS
    core = [r for r in meta if "extra ==" not in r]
    lava = [r for r in meta if r.replace('"', "'").endswith("extra == 'lava'")]
    # the venv is Python 3.10: a requirement marked for < 3.11 applies, no other marker occurs
    core = [r.split(";")[0].strip() for r in core
            if ";" not in r or "python_version < '3.11'" in r.replace('"', "'")]
    return core + [r.split(";")[0].strip() for r in lava]


def setup(directory: Path, python: str | None = None, extra: list[str] | None = None,
          log: Callable[[str], None] = print) -> Path:
    """Create (or complete) the venv at `directory` and check that lava-nc imports there.

    Returns the venv's interpreter. `extra` are further requirements (e.g. pytest).
    """
    py310 = find_python310(python)
    directory = Path(directory).absolute()  # the worker starts in another directory
    venv_python = directory / "bin" / "python"
    if not venv_python.is_file():
        log(f"creating {directory} with {py310}")
        _run([*shlex.split(py310), "-m", "venv", str(directory)], "create the venv")
    elif not is_python310(str(venv_python)):
        raise UnsupportedError(f"{directory} holds a venv that is not Python 3.10; remove it or "
                               "choose another --dir")
    reqs = requirements() + list(extra or [])
    log(f"installing {' '.join(reqs)}")
    _run([str(venv_python), "-m", "pip", "install", "-q", *reqs], "install lava-nc")
    _run([str(venv_python), "-c", "import lava, nir, h5py"], "import lava-nc")
    return venv_python


def _run(cmd: list[str], what: str) -> None:
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        tail = " | ".join((out.stderr or out.stdout).strip().splitlines()[-2:])
        raise UnsupportedError(f"cannot {what} ({' '.join(cmd[:3])} ...): {tail}")


def default_directory() -> Path:
    """Where the lava target looks when NEUROCOMPILE_LAVA_PYTHON is not set."""
    from neurocompile.targets.lava.target import user_environment

    return user_environment()


if __name__ == "__main__":  # pragma: no cover - `python -m neurocompile.lava_setup DIR`
    setup(Path(sys.argv[1]) if len(sys.argv) > 1 else default_directory())
