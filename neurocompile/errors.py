"""Errors a user can act on: each names the file, node, limit or value at fault."""

from __future__ import annotations

from dataclasses import dataclass


class NeurocompileError(Exception):
    """Base class; the CLI prints these as one line, without a traceback."""


class NIRFileError(NeurocompileError):
    """A file that is not a readable NIR graph or data file."""


class InputDataError(NeurocompileError):
    """Input spike data that does not fit the graph (missing key, wrong shape)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a graph, tied to the node (or edge) where it is."""

    node: str
    message: str

    def __str__(self) -> str:
        return f"node {self.node!r}: {self.message}"


class GraphValidationError(NeurocompileError):
    """A graph with one or more problems; all of them are listed."""

    def __init__(self, problems: list[Problem], source: str | None = None):
        self.problems = list(problems)
        where = f"{source}: " if source else ""
        shown = "; ".join(str(p) for p in self.problems[:5])
        more = f"; and {len(self.problems) - 5} more" if len(self.problems) > 5 else ""
        super().__init__(f"{where}{len(self.problems)} problem(s): {shown}{more}")


class UnsupportedError(NeurocompileError):
    """A node or option a target or pass cannot handle."""


class ConfigError(NeurocompileError):
    """A configuration value (file, option or field) of the wrong name, type or range."""
