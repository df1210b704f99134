"""Model checkpoints as safetensors (no pickle), with a JSON metadata file beside them.

`save_checkpoint(path, model, metadata)` writes path (e.g. run/checkpoint.safetensors) and
path.with_suffix(".json") atomically. The JSON holds what rebuilds the model (zoo name and
build_model kwargs) plus whatever the caller adds (epoch, metrics); the safetensors header
carries the same JSON string under the key "neurocompile".
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from neurocompile.errors import NeurocompileError
from neurocompile.ir.io import atomic_file, write_text


class CheckpointError(NeurocompileError):
    """A checkpoint file that is missing, unreadable or does not fit the model."""


def metadata_path(path: str | os.PathLike) -> Path:
    """The JSON file beside a checkpoint."""
    return Path(path).with_suffix(".json")


def model_metadata(model: torch.nn.Module) -> dict[str, Any]:
    """What rebuilds a zoo model: {"model": name, "model_config": build_model kwargs}."""
    meta: dict[str, Any] = {}
    if hasattr(model, "name"):
        meta["model"] = str(model.name)
    if hasattr(model, "config"):
        meta["model_config"] = dict(model.config)
    return meta


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module,
                    metadata: dict[str, Any] | None = None) -> Path:
    """Write the model's state dict (safetensors) and metadata JSON, both atomically."""
    path = Path(path)
    meta = {**model_metadata(model), **(metadata or {})}
    text = json.dumps(meta, indent=2, sort_keys=True, default=str)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    data = save(tensors, metadata={"neurocompile": text})
    with atomic_file(path) as f:
        f.write(data)
    write_text(metadata_path(path), text + "\n")
    return path


def load_checkpoint(path: str | os.PathLike, model: torch.nn.Module | None = None
                    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read (state_dict, metadata); with `model`, also load the weights into it (strict)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc
    meta_file = metadata_path(path)
    meta: dict[str, Any] = {}
    if meta_file.is_file():
        try:
            meta = json.loads(meta_file.read_text())
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{meta_file}: invalid JSON ({exc})") from exc
    if model is not None:
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise CheckpointError(f"{path}: weights do not fit the model ({first})") from exc
    return state, meta


def load_model(path: str | os.PathLike) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild a zoo model from a checkpoint's metadata and load its weights."""
    _, meta = load_checkpoint(path)
    if "model" not in meta:
        raise CheckpointError(f"{metadata_path(path)}: no 'model' entry; cannot rebuild the model")
    from neurocompile.models import build_model

    model = build_model(meta["model"], **meta.get("model_config", {}))
    load_checkpoint(path, model)
    return model, meta
