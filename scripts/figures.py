"""Rewrite the figures quoted in README.md and docs/*.md from the JSON the benchmarks write.

A quoted figure is marked in the markdown with the JSON value it shows:

    <!-- fig:pipeline.accuracy.float -->0.936<!-- /fig -->
    <!-- fig:pipeline.wall_s fmt=.0f -->31<!-- /fig --> s
    <!-- fig:pipeline.energy_per_inference_J.loihi fmt=si:J -->121 nJ<!-- /fig -->

The key's first part names benchmarks/results/<name>.json, the rest the path inside it (dict
keys, list indices). After ` fmt=` a format: a Python format spec, or `si:UNIT` (three significant
digits with an SI prefix). Without one: integers as they are, other numbers with three decimals.

    python scripts/figures.py            # rewrite the marked figures in place
    python scripts/figures.py --check    # list the figures that differ; exit 1 if any
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
MARK = re.compile(r"<!-- fig:(?P<key>[\w.\-]+)(?: fmt=(?P<fmt>\S+))? -->(?P<value>.*?)"
                  r"<!-- /fig -->")
PREFIXES = [(1e-15, "f"), (1e-12, "p"), (1e-9, "n"), (1e-6, "u"), (1e-3, "m"), (1.0, ""),
            (1e3, "k"), (1e6, "M"), (1e9, "G")]


class FigureError(Exception):
    """A marker names a file or key that does not exist, or a format that does not apply."""


def documents(root: Path = REPO) -> list[Path]:
    """The markdown files whose figures are kept: README.md and docs/*.md."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def lookup(key: str, results: Path = RESULTS) -> Any:
    """The JSON value a key names (benchmarks/results/<first part>.json, then the path)."""
    name, *path = key.split(".")
    file = results / f"{name}.json"
    if not file.is_file():
        raise FigureError(f"{key}: no such results file {file}")
    value: Any = json.loads(file.read_text())
    for i, part in enumerate(path):
        where = ".".join([name, *path[:i + 1]])
        if isinstance(value, list):
            if not part.isdigit() or int(part) >= len(value):
                raise FigureError(f"{key}: {where} is not an index of a {len(value)}-item list")
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise FigureError(f"{key}: {file.name} has no {where}")
    return value


def render(value: Any, fmt: str | None) -> str:
    """The text of a figure: `fmt` a format spec, `si:UNIT`, or None (see the module doc)."""
    if fmt and fmt.startswith("si:"):
        unit = fmt[3:]
        if not isinstance(value, (int, float)) or value == 0 or not math.isfinite(value):
            return f"{value} {unit}"
        scale, prefix = max((p for p in PREFIXES if abs(value) >= p[0] * 0.9995),
                            default=PREFIXES[0])
        return f"{value / scale:.3g} {prefix}{unit}"
    if fmt:
        try:
            return format(value, fmt)
        except (TypeError, ValueError) as exc:
            raise FigureError(f"format {fmt!r} does not apply to {value!r}: {exc}") from exc
    if isinstance(value, bool) or isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def rewrite(text: str, results: Path = RESULTS) -> tuple[str, list[tuple[str, str, str]]]:
    """`text` with every marked figure set from its JSON; also (key, quoted, new) per change."""
    changes: list[tuple[str, str, str]] = []

    def one(match: re.Match) -> str:
        key, fmt, old = match["key"], match["fmt"], match["value"]
        new = render(lookup(key, results), fmt)
        if new != old:
            changes.append((key, old, new))
        return match[0].replace(f"-->{old}<!--", f"-->{new}<!--", 1)

    return MARK.sub(one, text), changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="Only list the figures that differ from their JSON; exit 1 if any.")
    args = parser.parse_args(argv)
    stale = 0
    for path in documents():
        text = path.read_text()
        try:
            new, changes = rewrite(text)
        except FigureError as exc:
            print(f"error: {path.relative_to(REPO)}: {exc}", file=sys.stderr)
            return 2
        for key, old, value in changes:
            print(f"{path.relative_to(REPO)}: {key}: {old!r} -> {value!r}")
        stale += len(changes)
        if changes and not args.check:
            tmp = path.with_suffix(".md.tmp")
            tmp.write_text(new)
            tmp.replace(path)
    if args.check and stale:
        print(f"{stale} figure(s) differ from their JSON: run python scripts/figures.py",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
