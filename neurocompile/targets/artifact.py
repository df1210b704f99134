"""Compiled artifact directory: the NIR graph the runtime lowers, plus a JSON manifest.

An artifact is data: its manifest names no program and no path outside the directory. Reading
resolves every listed file inside the directory, requires a regular file, and checks every
hash before anything is parsed; the options are the compiling target's, checked by that
target (`Target.load_artifact`) like any other options.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nir
import numpy as np

from neurocompile.errors import NIRFileError
from neurocompile.ir.io import current_umask
from neurocompile.targets.base import Artifact

FORMAT = 1
MAX_MANIFEST_BYTES = 16 << 20
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
        from neurocompile import config

        manifest.update({
            "format": FORMAT,
            "target": artifact.target,
            "options": _jsonable(config.to_mapping(artifact.options)),
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
    """The manifest of an artifact directory, with its format and file list checked."""
    path = Path(path)
    mpath = path / MANIFEST_FILE
    if not path.is_dir():
        raise NIRFileError(f"{path}: not an artifact directory")
    if not mpath.is_file():
        raise NIRFileError(f"{path}: no {MANIFEST_FILE}; not a compiled artifact")
    if mpath.stat().st_size > MAX_MANIFEST_BYTES:
        raise NIRFileError(f"{mpath}: {mpath.stat().st_size:,} bytes; a manifest is at most "
                           f"{MAX_MANIFEST_BYTES:,}")
    try:
        manifest = json.loads(mpath.read_text())
    except (OSError, ValueError, RecursionError) as exc:
        raise NIRFileError(f"{mpath}: unreadable manifest ({str(exc).splitlines()[0]})") from None
    if not isinstance(manifest, dict):
        raise NIRFileError(f"{mpath}: a manifest is a JSON object, got {type(manifest).__name__}")
    if manifest.get("format") != FORMAT:
        raise NIRFileError(f"{mpath}: artifact format {manifest.get('format')!r}, "
                           f"this version reads {FORMAT}")
    files = manifest.get("files")
    if not isinstance(files, dict) or GRAPH_FILE not in files:
        raise NIRFileError(f"{mpath}: 'files' must list {GRAPH_FILE} with its sha256")
    if not isinstance(manifest.get("target"), str) or not isinstance(manifest.get("options", {}),
                                                                       dict):
        raise NIRFileError(f"{mpath}: 'target' must be a name and 'options' a table")
    return manifest


def _inside(root: Path, name: Any) -> Path:
    """The listed file `name` resolved inside `root`; a regular file, or NIRFileError."""
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or \
            name in (".", "..") or name.startswith("."):
        raise NIRFileError(f"{root}: manifest lists {name!r}; files must be plain names inside "
                           "the artifact directory")
    fpath = root / name
    if fpath.is_symlink() or not fpath.exists():
        raise NIRFileError(f"{root}: {name} is missing or a link")
    if not fpath.is_file():
        raise NIRFileError(f"{root}: {name} is not a regular file")
    return fpath


@dataclass
class StoredArtifact:
    """An artifact directory as read: its target, graph, raw options and manifest."""

    target: str
    graph: nir.NIRGraph
    options: dict[str, Any]
    manifest: dict[str, Any]


def read_artifact(path: str | os.PathLike) -> StoredArtifact:
    """Load an artifact directory; every listed file's sha256 must match before it is read."""
    from neurocompile.ir.io import load_graph

    path = Path(path)
    manifest = read_manifest(path)
    for name, info in manifest["files"].items():
        fpath = _inside(path, name)
        want = info.get("sha256") if isinstance(info, dict) else None
        size = info.get("bytes") if isinstance(info, dict) else None
        if isinstance(size, int) and fpath.stat().st_size != size:
            raise NIRFileError(f"{fpath}: {fpath.stat().st_size:,} bytes, the manifest says "
                               f"{size:,} (file changed after compile)")
        digest = sha256(fpath)
        if digest != want:
            raise NIRFileError(f"{fpath}: sha256 {digest[:12]}... does not match the manifest's "
                               f"{str(want)[:12]}... (file changed after compile)")
    graph = load_graph(path / GRAPH_FILE)
    return StoredArtifact(manifest["target"], graph, dict(manifest.get("options", {})), manifest)


__all__ = ["StoredArtifact", "read_artifact", "read_manifest", "sha256", "write_artifact"]
