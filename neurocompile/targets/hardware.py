"""Hardware descriptions (core limits, precisions, energy per operation) read from TOML data files.

Every number in a description is a table ``{ value = ..., unit = "...", source = "..." }`` so that
the published source sits beside the figure; `load_hardware` refuses a file where one does not.
Plain strings (``name``, ``description``, ``note``) carry no number.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from neurocompile.errors import NeurocompileError, UnsupportedError

if sys.version_info >= (3, 11):
    import tomllib as _toml
else:  # pragma: no cover - exercised in the Python 3.10 (Lava) environment
    import tomli as _toml

HARDWARE_DIR = Path(__file__).with_name("hardware")


class HardwareSpecError(NeurocompileError):
    """A hardware description file that is malformed or has a number without a source."""


def list_hardware() -> list[str]:
    """Names of the bundled hardware descriptions (file stems under targets/hardware/)."""
    return sorted(p.stem for p in HARDWARE_DIR.glob("*.toml"))


def _is_quantity(obj: Any) -> bool:
    return isinstance(obj, dict) and "value" in obj


def _check(obj: Any, path: str, problems: list[str]) -> None:
    """Collect every number that is not a {value, source} table, and every quantity lacking one."""
    if _is_quantity(obj):
        src = obj.get("source")
        if not isinstance(src, str) or not src.strip():
            problems.append(f"{path}: value {obj['value']!r} has no source")
        val = obj["value"]
        vals = val if isinstance(val, list) else [val]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            problems.append(f"{path}: value {val!r} is not a number (or list of numbers)")
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            _check(v, f"{path}.{k}" if path else k, problems)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _check(v, f"{path}[{i}]", problems)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        problems.append(f"{path}: bare number {obj!r} (write {{ value = ..., source = ... }})")


def validate_hardware(spec: dict[str, Any], where: str = "<spec>") -> None:
    """Raise HardwareSpecError listing every number in `spec` that lacks a published source."""
    problems: list[str] = []
    _check(spec, "", problems)
    if problems:
        raise HardwareSpecError(f"{where}: " + "; ".join(problems))


def load_hardware(name: str) -> dict[str, Any]:
    """Load a bundled description by name (e.g. "loihi2") or a path to a .toml file; validated."""
    path = Path(name)
    if path.suffix != ".toml":
        path = HARDWARE_DIR / f"{name}.toml"
        if not path.is_file():
            raise UnsupportedError(
                f"unknown hardware {name!r}; known: {', '.join(list_hardware())}")
    elif not path.is_file():
        raise HardwareSpecError(f"hardware description {path} does not exist")
    try:
        with open(path, "rb") as f:
            spec = _toml.load(f)
    except _toml.TOMLDecodeError as e:
        raise HardwareSpecError(f"{path}: not valid TOML: {e}") from e
    validate_hardware(spec, str(path))
    spec.setdefault("name", path.stem)
    return spec


def hw_get(spec: dict[str, Any], key: str, default: Any = None) -> Any:
    """The number at a dotted key ("core.neurons") of a loaded description, or `default`."""
    obj: Any = spec
    for part in key.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return default
        obj = obj[part]
    return obj["value"] if _is_quantity(obj) else obj


def hw_source(spec: dict[str, Any], key: str) -> str | None:
    """The published source of the number at a dotted key, or None."""
    obj: Any = spec
    for part in key.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj.get("source") if _is_quantity(obj) else None


__all__ = ["HARDWARE_DIR", "HardwareSpecError", "hw_get", "hw_source", "list_hardware",
           "load_hardware", "validate_hardware"]
