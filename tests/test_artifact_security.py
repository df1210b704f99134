"""An artifact is data: its manifest cannot name programs, files outside it, special files or
undeclared options, and nothing in it is read before its hash is checked."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest
from test_lava_helpers import feedforward

from neurocompile.config import ConfigError
from neurocompile.errors import NIRFileError
from neurocompile.targets import get_target
from neurocompile.targets.artifact import read_artifact, write_artifact


@pytest.fixture
def artifact(tmp_path):
    art = get_target("lava").compile(feedforward(np.random.default_rng(0)))
    return write_artifact(art, tmp_path / "art")


def _edit(art, **changes):
    manifest = json.loads((art / "manifest.json").read_text())
    for key, value in changes.items():
        if value is None:
            manifest.pop(key, None)
        else:
            manifest[key] = value
    (art / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def _graph_entry(art):
    return json.loads((art / "manifest.json").read_text())["files"]["graph.nir"]


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "sub/graph.nir", "..",
                                  ".hidden", ""])
def test_listed_files_must_be_plain_names_inside(artifact, name):
    _edit(artifact, files={"graph.nir": _graph_entry(artifact), name: {"sha256": "0" * 64}})
    with pytest.raises(NIRFileError, match="plain names inside the artifact"):
        read_artifact(artifact)


@pytest.mark.parametrize("kind", ["symlink", "fifo", "dev-zero-link"])
def test_listed_files_must_be_regular_files_and_nothing_hangs(artifact, kind):
    extra = artifact / "extra.bin"
    if kind == "symlink":
        os.symlink("/etc/passwd", extra)
    elif kind == "fifo":
        os.mkfifo(extra)
    else:
        os.symlink("/dev/zero", extra)
    _edit(artifact, files={"graph.nir": _graph_entry(artifact), "extra.bin": {"sha256": "0"}})
    with pytest.raises(NIRFileError, match="missing or a link|not a regular file"):
        read_artifact(artifact)
    assert stat.S_ISFIFO(os.lstat(extra).st_mode) or os.path.islink(extra)


def test_files_key_cannot_be_dropped_to_skip_the_hashes(artifact):
    _edit(artifact, files=None)
    with pytest.raises(NIRFileError, match="'files' must list graph.nir"):
        read_artifact(artifact)


@pytest.mark.parametrize("options, match", [
    ({"python": "/bin/sh"}, "unknown key 'python'"),
    ({"fixedpoint": True}, "unknown key 'fixedpoint'"),
    ({"timeout_s": "forever"}, "timeout_s: must be a number"),
    ({"timeout_s": float("nan")}, "timeout_s"),
])
def test_manifest_options_are_checked_against_the_target(artifact, options, match):
    _edit(artifact, options=options)
    with pytest.raises(ConfigError, match=match):
        get_target("lava").load_artifact(artifact)


def test_another_target_takes_only_the_semantic_options(artifact):
    _edit(artifact, options={"dt": 1e-3, "fixed_point": False, "sparse": "dense",
                             "timeout_s": 5})
    loaded = get_target("reference").load_artifact(artifact)
    assert loaded.options.dt == 1e-3 and loaded.options.fixed_point is False
    assert loaded.options.dtype == get_target("reference").options().dtype
