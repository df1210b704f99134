"""Compiled artifact directory: the NIR graph the runtime lowers, plus a JSON manifest.

Layout::

    ARTIFACT_DIR/
      graph.nir       the (validated) NIR graph; the Lava runtime lowers exactly this file
      manifest.json   target, options, lowering summary, resource map, file sha256 hashes

The directory is written atomically: everything goes into a temporary sibling directory that is
renamed into place; an existing artifact at the destination is replaced only after the new one
is complete. Reading checks the format version and every file's sha256.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from neurocompile.errors import NIRFileError
from neurocompile.ir.io import current_umask
from neurocompile.targets.base import Artifact

FORMAT = 1
GRAPH_FILE = "graph.nir"
MANIFEST_FILE = "manifest.json"


def sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return str(obj)
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def write_artifact(artifact: Artifact, out_dir: str | os.PathLike) -> Path:
    """Write `artifact` to `out_dir` atomically; refuses to replace a directory that is not one."""
    from neurocompile import __version__
    from neurocompile.ir.io import save_graph

    out_dir = Path(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise NIRFileError(f"{out_dir}: exists and is not a directory")
        if any(out_dir.iterdir()) and not (out_dir / MANIFEST_FILE).exists():
            raise NIRFileError(f"{out_dir}: exists, is not empty and holds no {MANIFEST_FILE}; "
                               "refusing to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700; give the directory the usual mode
    try:
        save_graph(artifact.graph, tmp / GRAPH_FILE)
        manifest = dict(artifact.manifest)
        manifest.update({
            "format": FORMAT,
            "target": artifact.target,
            "options": _jsonable(artifact.options),
            "neurocompile_version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "files": {GRAPH_FILE: {"sha256": sha256(tmp / GRAPH_FILE),
                                   "bytes": (tmp / GRAPH_FILE).stat().st_size}},
        })
        (tmp / MANIFEST_FILE).write_text(json.dumps(_jsonable(manifest), indent=2) + "\n")
        old = None
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old",
                                        dir=out_dir.parent))
            os.rmdir(old)
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """The manifest of an artifact directory, with its format checked."""
    path = Path(path)
    mpath = path / MANIFEST_FILE
    if not path.is_dir():
        raise NIRFileError(f"{path}: not an artifact directory")
    if not mpath.exists():
        raise NIRFileError(f"{path}: no {MANIFEST_FILE}; not a compiled artifact")
    try:
        manifest = json.loads(mpath.read_text())
    except (OSError, ValueError) as exc:
        raise NIRFileError(f"{mpath}: unreadable manifest ({exc})") from exc
    if manifest.get("format") != FORMAT:
        raise NIRFileError(f"{mpath}: artifact format {manifest.get('format')!r}, "
                           f"this version reads {FORMAT}")
    return manifest


def read_artifact(path: str | os.PathLike) -> Artifact:
    """Load an artifact directory; every file's sha256 must match the manifest."""
    from neurocompile.ir.io import load_graph

    path = Path(path)
    manifest = read_manifest(path)
    for name, info in manifest.get("files", {}).items():
        fpath = path / name
        if not fpath.exists():
            raise NIRFileError(f"{path}: {name} is missing")
        digest = sha256(fpath)
        if digest != info.get("sha256"):
            raise NIRFileError(f"{fpath}: sha256 {digest[:12]}... does not match the manifest's "
                               f"{str(info.get('sha256'))[:12]}... (file changed after compile)")
    graph = load_graph(path / GRAPH_FILE)
    options = dict(manifest.get("options", {}))
    return Artifact(manifest.get("target", "unknown"), graph, options, manifest)


__all__ = ["read_artifact", "read_manifest", "sha256", "write_artifact"]
