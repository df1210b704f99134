"""One strict configuration loader: mappings (TOML tables, JSON manifests, CLI options, keyword
arguments) into dataclasses, and click options generated from the same fields.

A field's metadata (`setting(...)`) gives its help text and range; its annotation gives its
type. `from_mapping` rejects unknown keys (naming the known ones), wrong types, NaN and
infinities, and values outside the range, each naming the key; `click_options` turns the fields
into command-line options whose defaults are the dataclass defaults, so the two cannot diverge.
NumPy-free and torch-free: every layer may use it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar, Union

from neurocompile.errors import ConfigError

__all__ = ["ConfigError", "check_value", "cli_values", "click_options", "fields",
           "from_mapping", "load_toml", "read_toml", "replace", "setting", "to_mapping",
           "union_options", "union_values"]

T = TypeVar("T")
MISSING = dataclasses.MISSING


def setting(default: Any = MISSING, *, help: str = "", min: float | None = None,
            max: float | None = None, min_open: bool = False, max_open: bool = False,
            choices: tuple[Any, ...] | None = None, cli: str | None = None,
            default_factory: Callable[[], Any] | None = None) -> Any:
    """A dataclass field with help text and a range (min/max inclusive unless *_open)."""
    meta = {"help": help, "min": min, "max": max, "min_open": min_open, "max_open": max_open,
            "choices": choices, "cli": cli}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _hints(cls: type) -> dict[str, Any]:
    """Field types, each resolved in the module of the class that declares it."""
    return typing.get_type_hints(cls)


def _args(tp: Any) -> tuple[Any, ...]:
    return typing.get_args(tp)


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) is Union or isinstance(tp, types.UnionType)


def _optional(tp: Any) -> tuple[Any, bool]:
    """(inner type, whether None is allowed)."""
    if _is_union(tp):
        args = [a for a in _args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], len(args) < len(_args(tp))
    return tp, False


def _describe(tp: Any) -> str:
    inner, opt = _optional(tp)
    name = getattr(inner, "__name__", None) or str(inner).replace("typing.", "")
    origin = typing.get_origin(inner)
    if origin in (tuple, list):
        item = _args(inner)[0] if _args(inner) else Any
        name = f"a list of {getattr(item, '__name__', item)}"
    elif origin is dict:
        name = "a table"
    return f"{name} or none" if opt else name


def _convert(value: Any, tp: Any, where: str) -> Any:
    """value checked against annotation tp (and converted: lists to tuples where declared)."""
    inner, optional = _optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where}: must be {_describe(tp)}, got none")
    if dataclasses.is_dataclass(inner):
        if isinstance(value, inner):
            value = to_mapping(value, shallow=True)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: must be a table of {inner.__name__} settings, "
                              f"got {value!r}")
        return from_mapping(inner, value, where)
    origin = typing.get_origin(inner)
    if origin in (tuple, list):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: must be {_describe(inner)}, got {value!r}")
        args = _args(inner)
        item = args[0] if args else Any
        out = [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: must be a table, got {value!r}")
        args = _args(inner)
        vt = args[1] if len(args) == 2 else Any
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"{where}: keys must be names, got {k!r}")
            out[k] = _convert(v, vt, f"{where}.{k}")
        return out
    if inner is Any:
        _check_plain(value, where)
        return value
    if inner is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: must be true or false, got {value!r}")
        return value
    if inner is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer() and math.isfinite(value):
                return int(value)
            raise ConfigError(f"{where}: must be an integer, got {value!r}")
        return int(value)
    if inner is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: must be a finite number, got {value!r}")
        return float(value)
    if inner is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: must be text, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported setting type {inner!r}")  # pragma: no cover


def _check_plain(value: Any, where: str, depth: int = 0) -> None:
    """Free-form values (Any): JSON-like data of bounded depth, finite numbers."""
    if depth > 8:
        raise ConfigError(f"{where}: nested too deeply")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: must be a finite number, got {value!r}")
    if isinstance(value, Mapping):
        for k, v in value.items():
            _check_plain(v, f"{where}.{k}", depth + 1)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]", depth + 1)
    elif not isinstance(value, (str, int, float, bool)) and value is not None:
        raise ConfigError(f"{where}: must be a number, text, list or table, got {value!r}")


def _check_range(value: Any, meta: Mapping[str, Any], where: str) -> None:
    choices = meta.get("choices")
    if choices is not None and value is not None and value not in choices:
        raise ConfigError(f"{where}: must be one of {', '.join(map(str, choices))}; got {value!r}")
    items = value if isinstance(value, (list, tuple)) else [value]
    for v in items:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        lo, hi = meta.get("min"), meta.get("max")
        if lo is not None and (v < lo or (meta.get("min_open") and v == lo)):
            rel = ">" if meta.get("min_open") else ">="
            raise ConfigError(f"{where}: must be {rel} {lo:g}, got {v!r}")
        if hi is not None and (v > hi or (meta.get("max_open") and v == hi)):
            rel = "<" if meta.get("max_open") else "<="
            raise ConfigError(f"{where}: must be {rel} {hi:g}, got {v!r}")


def fields(cls: type) -> list[dataclasses.Field]:
    """The init fields of a settings dataclass."""
    return [f for f in dataclasses.fields(cls) if f.init]


def check_value(cls: type, name: str, value: Any, where: str) -> Any:
    """One field's value, type- and range-checked (converted as from_mapping would)."""
    field = {f.name: f for f in fields(cls)}[name]
    value = _convert(value, _hints(cls)[name], where)
    _check_range(value, field.metadata, where)
    return value


def from_mapping(cls: type[T], data: Mapping[str, Any] | None, where: str) -> T:
    """Build `cls` from a mapping; unknown keys, wrong types and out-of-range values raise
    ConfigError naming `where` and the key."""
    data = dict(data or {})
    known = {f.name: f for f in fields(cls)}
    unknown = [k for k in data if k not in known]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; known: {', '.join(known)}")
    values = {name: check_value(cls, name, value, f"{where}: {name}" if ":" not in where
                                else f"{where}.{name}")
              for name, value in data.items()}
    try:
        obj = cls(**values)
    except TypeError as exc:  # a required field is missing
        raise ConfigError(f"{where}: {exc}") from None
    check = getattr(obj, "check", None)
    if callable(check):
        check(where)
    return obj


def replace(obj: T, where: str, **changes: Any) -> T:
    """A copy of a settings dataclass with `changes`, each checked like from_mapping."""
    return from_mapping(type(obj), {**to_mapping(obj, shallow=True), **changes}, where)


def to_mapping(obj: Any, shallow: bool = False) -> dict[str, Any]:
    """A settings dataclass as a JSON-ready dict (tuples as lists)."""
    out = {}
    for f in fields(type(obj)):
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v) and not shallow:
            v = to_mapping(v)
        elif isinstance(v, tuple) and not shallow:
            v = list(v)
        out[f.name] = v
    return out


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file's tables; unreadable or invalid files raise ConfigError naming the file."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - the Python 3.10 (Lava) environment
        import tomli as tomllib
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    if path.stat().st_size > 1 << 20:
        raise ConfigError(f"{path}: {path.stat().st_size:,} bytes; a config is at most 1 MiB")
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({str(exc).splitlines()[0]})") from None


def load_toml(cls: type[T], path: str | Path) -> T:
    """A settings dataclass from a TOML file; every error names the file."""
    return from_mapping(cls, read_toml(path), str(path))


# -- command-line options ---------------------------------------------------------------------
def option_name(f: dataclasses.Field) -> str:
    """The long option of a field: its metadata 'cli' or --field-name."""
    return f.metadata.get("cli") or "--" + f.name.replace("_", "-")


def _parse_pairs(items: tuple[str, ...], where: str) -> dict[str, Any]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{where}: expected KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _parse_list(text: str | None, where: str) -> list[Any] | None:
    if text is None:
        return None
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(json.loads(part))
        except json.JSONDecodeError:
            out.append(part)
    return out


def click_options(cls: type, *, skip: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
    """Decorator adding one click option per field of `cls` (except `skip`), defaults included.

    Values reach the command as keyword arguments named like the fields; pass them through
    `cli_values(cls, kwargs)` to get checked settings. Tables take KEY=VALUE repeatedly, lists
    a comma-separated value, booleans --x/--no-x.
    """
    import click

    hints = _hints(cls)

    def decorate(func: Callable) -> Callable:
        for f in reversed(fields(cls)):
            if f.name in skip:
                continue
            default = f.default if f.default is not MISSING else (
                f.default_factory() if f.default_factory is not MISSING else None)
            inner, optional = _optional(hints[f.name])
            origin = typing.get_origin(inner)
            name = option_name(f)
            help_ = f.metadata.get("help", "")
            choices = f.metadata.get("choices")
            if inner is bool:
                base = name[2:]
                func = click.option(f"--{base}/--no-{base}", f.name, default=default,
                                    show_default=True, help=help_)(func)
            elif origin is dict:
                func = click.option(name, f.name, multiple=True, metavar="KEY=VALUE",
                                    help=f"{help_} (repeatable)")(func)
            elif origin in (tuple, list):
                shown = ",".join(map(str, default)) if default else None
                func = click.option(name, f.name, default=None, metavar="A,B,...",
                                    help=f"{help_}" + (f"  [default: {shown}]" if shown else "")
                                    )(func)
            elif optional:  # text, so that "none" can unset it; typed in cli_values
                func = click.option(name, f.name, type=str, default=None,
                                    help=help_ + f"  [default: {default}; 'none' unsets]"
                                    )(func)
            else:
                ctype = {int: int, float: float, str: str}.get(inner, str)
                if choices is not None:
                    ctype = click.Choice([str(c) for c in choices])
                func = click.option(name, f.name, type=ctype, default=default,
                                    show_default=True, help=help_)(func)
        return func

    return decorate


def cli_values(cls: type, kwargs: dict[str, Any], where: str = "options") -> dict[str, Any]:
    """Pop the fields of `cls` from click's kwargs, parsed into the fields' types (unchecked)."""
    hints = _hints(cls)
    out = {}
    for f in fields(cls):
        if f.name not in kwargs:
            continue
        value = kwargs.pop(f.name)
        inner, optional = _optional(hints[f.name])
        origin = typing.get_origin(inner)
        if origin is dict:
            value = _parse_pairs(value, option_name(f))
            if not value:
                continue
        elif origin in (tuple, list):
            value = _parse_list(value, option_name(f))
            if value is None:
                continue
        elif optional and isinstance(value, str):
            if value.strip().lower() == "none":
                value = None
            elif inner in (int, float):
                try:
                    value = json.loads(value)
                except json.JSONDecodeError:
                    raise ConfigError(f"{option_name(f)}: must be {_describe(inner)} or 'none', "
                                      f"got {value!r}") from None
        elif value is None:
            continue
        out[f.name] = value
    return out


def union_options(classes: dict[str, type], selector: str) -> Callable[[Callable], Callable]:
    """click options for the fields of several settings classes (one per method), each field
    once and unset by default: `union_values` then builds the chosen method's settings, so
    the defaults are always the dataclass's. `selector` names the option choosing the method."""
    import click

    seen: dict[str, tuple[dataclasses.Field, Any, list[str]]] = {}
    for method, cls in classes.items():
        hints = _hints(cls)
        for f in fields(cls):
            if f.name in seen:
                if _optional(seen[f.name][1])[0] != _optional(hints[f.name])[0]:
                    raise TypeError(f"{f.name}: differing types across {selector} methods")
                seen[f.name][2].append(method)
            else:
                seen[f.name] = (f, hints[f.name], [method])

    def decorate(func: Callable) -> Callable:
        for name, (f, tp, methods) in reversed(list(seen.items())):
            inner, _ = _optional(tp)
            origin = typing.get_origin(inner)
            defaults = []
            for m in methods:
                field = {g.name: g for g in fields(classes[m])}[name]
                d = field.default if field.default is not MISSING else None
                defaults.append(f"{m}: {d}")
            help_ = f"{f.metadata.get('help', '')} [{selector} {', '.join(methods)}; default " \
                    f"{'; '.join(defaults)}]"
            opt = option_name(f)
            if inner is bool:
                func = click.option(f"{opt}/--no-{opt[2:]}", name, default=None, help=help_)(func)
            elif origin in (tuple, list):
                func = click.option(opt, name, default=None, metavar="A,B,...", help=help_)(func)
            else:
                ctype = {int: int, float: float}.get(inner, str)
                choices = f.metadata.get("choices")
                if choices is not None:
                    ctype = click.Choice([str(c) for c in choices])
                func = click.option(opt, name, type=ctype, default=None, help=help_)(func)
        return func

    decorate.names = tuple(seen)  # type: ignore[attr-defined]
    return decorate


def union_values(classes: dict[str, type], method: str, kwargs: dict[str, Any],
                 selector: str, names: tuple[str, ...]) -> Any:
    """The settings of `method` from union_options' values; an option given for another
    method is an error naming it."""
    cls = classes[method]
    own = {f.name for f in fields(cls)}
    given = {}
    for name in names:
        value = kwargs.pop(name, None)
        if value is None:
            continue
        if name not in own:
            opt = "--" + name.replace("_", "-")
            raise ConfigError(f"option {opt} does not apply to {selector} {method}; its options: "
                              + ", ".join("--" + n.replace("_", "-") for n in own))
        given[name] = value
    parsed = cli_values(cls, dict(given))
    return from_mapping(cls, parsed, f"{selector} {method}")
