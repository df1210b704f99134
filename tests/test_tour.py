"""The README tour runs as written: scripts/tour.sh creates its own inputs, runs every command
of the README's tour block (the same list), and overwrites none of its inputs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import lava_python

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "tour.sh"


def _commands(lines: list[str]) -> list[str]:
    """Commands with continuations joined, comments and extra spaces removed."""
    text = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return [" ".join(line.split("#")[0].split()) for line in text.splitlines()
            if line.split("#")[0].strip()]


def test_the_readme_tour_is_the_script():
    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- tour -->\n", 1)[1].split("<!-- /tour -->", 1)[0]
    script = _commands(SCRIPT.read_text().replace('"$EPOCHS"', "60").splitlines())
    steps = ["neurocompile " + line[len("step "):] for line in script if line.startswith("step ")]
    assert len(steps) == 12
    assert _commands(block.splitlines()) == steps


@pytest.mark.slow
def test_the_tour_runs_and_keeps_its_inputs(tmp_path):
    lava = lava_python()
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHON=sys.executable,
               NEUROCOMPILE=f"{sys.executable} -m neurocompile.cli.main", TOUR_EPOCHS="1",
               TOUR_SAMPLES="12", TOUR_LAVA="1" if lava else "0", COLUMNS="80")
    if lava:
        env["NEUROCOMPILE_LAVA_PYTHON"] = lava
    out = subprocess.run(["bash", str(SCRIPT), str(tmp_path)], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    from neurocompile.data import load_dataset

    test = load_dataset("digits").test
    with np.load(tmp_path / "y.npz") as y:  # still the labels the compare step read
        assert list(y.files) == ["labels"]
        np.testing.assert_array_equal(y["labels"], test.y[:12])
    with np.load(tmp_path / "x.npz") as x:
        np.testing.assert_array_equal(x["input"], test.x[:12])
    for name in ("ff/model.nir", "pruned.nir", "lnp.nir", "quantized.nir", "artifact",
                 "ref_out.npz", "energy/report.json"):
        assert (tmp_path / name).exists(), name
    if lava:  # fixed point: Lava's bit-accurate models give the reference's values exactly
        with np.load(tmp_path / "lava_out.npz") as a, np.load(tmp_path / "ref_out.npz") as b:
            np.testing.assert_array_equal(a["output"], b["output"])
