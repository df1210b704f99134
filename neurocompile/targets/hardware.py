"""Hardware descriptions (core limits, precisions, energy per operation) read from TOML data files.

Every number in a description is a table
``{ value = ..., unit = "...", source = "...", provenance = "..." }``: the published source
(paper, table) sits beside the figure, and `provenance` says what kind of figure it is (one of
`PROVENANCE`). `load_hardware` refuses a file where a number lacks either. Plain strings
(``name``, ``description``, ``note``, ``figures_from``) carry no number.

Energy models are *profiles*: ``[profiles.<name>]`` with a ``description`` and a ``model``
table mapping a count (``synaptic_ops``, ``active_neuron_updates``, ...) to the dotted key of its
per-operation energy, or to a list of keys whose energies add up. Where sources disagree a
description has several profiles; ``[model] nominal`` names the one reported as the estimate,
the others span the range. ``load_hardware("loihi:sanafe")`` makes another profile the nominal.
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

# What kind of figure a number is. Every quantity in a description names one.
PROVENANCE = {
    "silicon": "measured on fabricated silicon",
    "silicon-secondary": "measured on silicon, value taken from a secondary tabulation (named in "
                         "the source) and not checked against the primary paper's text",
    "pre-silicon": "simulated before fabrication (circuit simulation / pre-silicon model)",
    "calibrated": "parameter of a simulator model calibrated against silicon measurements",
    "all-in": "measured on silicon at one operating point: total energy divided by events, so "
              "it includes the work an event causes (neuron updates, routing, static power)",
    "estimate": "technology-level estimate for a process node (not one chip's measurement)",
    "spec": "design figure published by the makers (counts, sizes, precisions, clocks)",
    "derived": "computed from other published figures (the source says how)",
    "assumed": "no published figure for this hardware; a stand-in (the source says whose)",
}
MODEL_KEYS = ("latency", "nominal")  # [model] entries that are not energy terms


class HardwareSpecError(NeurocompileError):
    """A hardware description file that is malformed or has a number without source/provenance."""


def list_hardware() -> list[str]:
    """Names of the bundled hardware descriptions (file stems under targets/hardware/)."""
    return sorted(p.stem for p in HARDWARE_DIR.glob("*.toml"))


def _is_quantity(obj: Any) -> bool:
    return isinstance(obj, dict) and "value" in obj


def _check(obj: Any, path: str, problems: list[str]) -> None:
    """Collect every number outside a {value, source, provenance} table, and every bad table."""
    if _is_quantity(obj):
        src = obj.get("source")
        if not isinstance(src, str) or not src.strip():
            problems.append(f"{path}: value {obj['value']!r} has no source")
        prov = obj.get("provenance")
        if prov not in PROVENANCE:
            problems.append(f"{path}: value {obj['value']!r} has "
                            + ("no provenance" if prov is None else f"provenance {prov!r}")
                            + f" (one of: {', '.join(PROVENANCE)})")
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
        problems.append(f"{path}: bare number {obj!r} "
                        "(write {{ value = ..., source = ..., provenance = ... }})")


def _term_keys(ref: Any) -> list[str] | None:
    if isinstance(ref, str):
        return [ref]
    if isinstance(ref, list) and ref and all(isinstance(r, str) for r in ref):
        return list(ref)
    return None


def _check_profiles(spec: dict[str, Any], problems: list[str]) -> None:
    """Every profile term names energies the description defines; the nominal profile exists."""
    profiles = spec.get("profiles", {})
    if not isinstance(profiles, dict):
        problems.append("profiles: expected a table of [profiles.<name>]")
        return
    for pname, prof in profiles.items():
        model = prof.get("model") if isinstance(prof, dict) else None
        if not isinstance(model, dict) or not model:
            problems.append(f"profiles.{pname}: no model table (count = \"energy.key\")")
            continue
        for count, ref in model.items():
            keys = _term_keys(ref)
            if keys is None:
                problems.append(f"profiles.{pname}.model.{count}: expected a key or list of keys")
                continue
            for key in keys:
                if not _is_quantity(_lookup(spec, key)):
                    problems.append(f"profiles.{pname}.model.{count}: {key!r} is not defined")
    nominal = spec.get("model", {}).get("nominal")
    if profiles and nominal not in profiles:
        problems.append(f"model.nominal: {nominal!r} is not one of the profiles "
                        f"{sorted(profiles)}")


def validate_hardware(spec: dict[str, Any], where: str = "<spec>") -> None:
    """Raise HardwareSpecError listing every number in `spec` lacking a source or provenance."""
    problems: list[str] = []
    _check(spec, "", problems)
    _check_profiles(spec, problems)
    if problems:
        raise HardwareSpecError(f"{where}: " + "; ".join(problems))


def load_hardware(name: str) -> dict[str, Any]:
    """Load a bundled description by name ("loihi2"), or a .toml path; validated.

    "name:profile" loads the description with `profile` as its nominal energy profile; the
    loaded spec's name is then "name:profile".
    """
    base, _, profile = str(name).partition(":") if not str(name).endswith(".toml") else \
        (str(name), "", "")
    path = Path(base)
    if path.suffix != ".toml":
        path = HARDWARE_DIR / f"{base}.toml"
        if not path.is_file():
            raise UnsupportedError(
                f"unknown hardware {base!r}; known: {', '.join(list_hardware())}")
    elif not path.is_file():
        raise HardwareSpecError(f"hardware description {path} does not exist")
    try:
        with open(path, "rb") as f:
            spec = _toml.load(f)
    except _toml.TOMLDecodeError as e:
        raise HardwareSpecError(f"{path}: not valid TOML: {e}") from e
    validate_hardware(spec, str(path))
    spec.setdefault("name", path.stem)
    if profile:
        if profile not in spec.get("profiles", {}):
            raise UnsupportedError(f"hardware {base!r} has no energy profile {profile!r}; "
                                   f"profiles: {', '.join(spec.get('profiles', {})) or 'none'}")
        spec.setdefault("model", {})["nominal"] = profile
        spec["name"] = f"{spec['name']}:{profile}"
    return spec


def profiles(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The energy profiles of a loaded description, the nominal one first.

    A description without [profiles] but with energy terms in [model] (an older or hand-written
    file) has one profile, "nominal", made of those terms.
    """
    found = spec.get("profiles") or {}
    if not found:
        terms = {k: v for k, v in spec.get("model", {}).items() if k not in MODEL_KEYS}
        return {"nominal": {"description": "the description's [model] terms", "model": terms}} \
            if terms else {}
    nominal = spec.get("model", {}).get("nominal")
    return {k: found[k] for k in sorted(found, key=lambda k: k != nominal)}


def term_keys(ref: str | list[str]) -> list[str]:
    """The energy keys of one model term (a key, or a list of keys whose energies add)."""
    keys = _term_keys(ref)
    if keys is None:
        raise HardwareSpecError(f"model term {ref!r}: expected a key or a list of keys")
    return keys


def _lookup(spec: dict[str, Any], key: str) -> Any:
    obj: Any = spec
    for part in key.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def hw_get(spec: dict[str, Any], key: str, default: Any = None) -> Any:
    """The number at a dotted key ("core.neurons") of a loaded description, or `default`."""
    obj = _lookup(spec, key)
    if obj is None:
        return default
    return obj["value"] if _is_quantity(obj) else obj


def hw_source(spec: dict[str, Any], key: str) -> str | None:
    """The published source of the number at a dotted key, or None."""
    obj = _lookup(spec, key)
    return obj.get("source") if _is_quantity(obj) else None


def hw_provenance(spec: dict[str, Any], key: str) -> str | None:
    """The provenance tag (a key of PROVENANCE) of the number at a dotted key, or None."""
    obj = _lookup(spec, key)
    return obj.get("provenance") if _is_quantity(obj) else None


__all__ = ["HARDWARE_DIR", "MODEL_KEYS", "PROVENANCE", "HardwareSpecError", "hw_get",
           "hw_provenance", "hw_source", "list_hardware", "load_hardware", "profiles",
           "term_keys", "validate_hardware"]
