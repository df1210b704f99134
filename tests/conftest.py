"""Shared test helpers: small graph builders and the Lava interpreter lookup."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nir
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def lava_python() -> str | None:
    """The Python 3.10 interpreter with lava-nc, or None (tests needing it are skipped)."""
    env = os.environ.get("NEUROCOMPILE_LAVA_PYTHON")
    if env and (shutil.which(env) or Path(env).exists()):
        return env
    local = REPO / ".venv-lava" / "bin" / "python"
    return str(local) if local.exists() else None


@pytest.fixture
def lava_python_path() -> str:
    path = lava_python()
    if path is None:
        pytest.skip("no Lava environment: run `make lava-venv` or set NEUROCOMPILE_LAVA_PYTHON")
    return path


def lif(n: int, tau: float = 2e-3, r: float = 2.0, v_leak: float = 0.0, vth: float = 1.0) -> nir.LIF:
    """LIF population; with dt = 1 ms the defaults give dv = 0.5 and gain = dv * r = 1."""
    return nir.LIF(tau=np.full(n, tau), r=np.full(n, r), v_leak=np.full(n, v_leak),
                   v_threshold=np.full(n, vth))


def chain(*pairs: tuple[str, nir.NIRNode], extra_edges=(), dt: float = 1e-3) -> nir.NIRGraph:
    """A graph whose nodes are connected in the given order, plus extra edges."""
    nodes = dict(pairs)
    names = list(nodes)
    edges = [(a, b) for a, b in zip(names, names[1:])] + list(extra_edges)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": dt}, type_check=False)


def run_main(args: list[str], capsys) -> tuple[int, str, str]:
    """Run the CLI's entry point in this process: (exit status, stdout, stderr)."""
    from neurocompile.cli.main import main

    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err
