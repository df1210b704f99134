"""Import profiles: other frameworks' NIR conventions turned into the contract's terms.

One module per framework (snntorch, norse, sinabs, rockpool, lava_dl), each with `apply(graph,
dt)` and `looks_like(graph)`. `import_graph` applies a profile (named, or detected from the
graph's metadata), tolerates singleton dimensions on Input/Output nodes, and returns warnings,
among them one naming the profile when a graph without one looks like a framework's export.
What a profile did is recorded in graph.metadata (see `common`); docs/interop.md lists each.
"""

from __future__ import annotations

from collections.abc import Callable

import nir

from neurocompile.errors import UnsupportedError
from neurocompile.interop import lava_dl, norse, rockpool, sinabs, snntorch
from neurocompile.interop.common import CONVENTIONS_KEY, LAYOUT_KEY, PROFILE_KEY, copy_graph
from neurocompile.interop.layout import LAYOUTS, from_btf, layout_warning, squeeze_io, to_btf
from neurocompile.ir.validate import validate

PROFILES: dict[str, Callable[[nir.NIRGraph, float | None], nir.NIRGraph]] = {
    "snntorch": snntorch.apply,
    "snntorch-zero": snntorch.apply_zero,
    "norse": norse.apply,
    "sinabs": sinabs.apply,
    "sinabs-single": sinabs.apply_single,
    "rockpool": rockpool.apply,
    "lava-dl": lava_dl.apply,
}
# said when the profile is applied: what the file cannot tell, or what is not verified
NOTES = {"snntorch": snntorch.NOTE, "snntorch-zero": snntorch.NOTE, "rockpool": rockpool.NOTE,
         "lava-dl": lava_dl.NOTE}
DETECTORS = {"snntorch": snntorch.looks_like, "norse": norse.looks_like,
             "sinabs": sinabs.looks_like, "rockpool": rockpool.looks_like}

__all__ = ["CONVENTIONS_KEY", "LAYOUTS", "LAYOUT_KEY", "PROFILES", "PROFILE_KEY", "applied",
           "apply_profile", "from_btf", "graph_layout", "import_graph", "layout_warning",
           "shape_hint", "suspects", "to_btf"]


def applied(graph: nir.NIRGraph) -> str | None:
    """The profile recorded in graph.metadata (the file shows its origin), or None."""
    name = (graph.metadata or {}).get(PROFILE_KEY)
    if isinstance(name, bytes):
        name = name.decode()
    return str(name) if name is not None else None


def graph_layout(graph: nir.NIRGraph) -> str:
    """The input layout a profile recorded, else neurocompile's own (batch, time, features)."""
    layout = (graph.metadata or {}).get(LAYOUT_KEY, "btf")
    layout = layout.decode() if isinstance(layout, bytes) else str(layout)
    return layout if layout in LAYOUTS else "btf"


def apply_profile(graph: nir.NIRGraph, profile: str, dt: float | None = None) -> nir.NIRGraph:
    """A copy of `graph` with `profile`'s conventions applied and recorded."""
    if profile not in PROFILES:
        raise UnsupportedError(f"unknown import profile {profile!r}; known: "
                               f"{', '.join(PROFILES)}")
    done = applied(graph)
    if done is not None:
        if done != profile:
            raise UnsupportedError(f"the graph was imported with profile {done!r} already "
                                   f"(metadata {PROFILE_KEY!r}); --from {profile} would apply "
                                   "a second convention")
        return graph
    out = PROFILES[profile](graph, dt)
    out.metadata[PROFILE_KEY] = profile
    return out


def suspects(graph: nir.NIRGraph) -> list[str]:
    """Warnings naming the profile for each framework whose export the graph looks like."""
    out = []
    for name, looks in DETECTORS.items():
        reason = looks(graph)
        if reason:
            out.append(f"graph parameters look like {name}'s NIR export ({reason}) but no "
                       f"import profile was given: pass --from {name}")
    return out


def shape_hint(graph: nir.NIRGraph) -> str | None:
    """For a graph that does not validate: the profile whose Input/Output convention would
    make it valid (Sinabs writes the sample's time axis, (T, n) for n neurons), or None."""
    try:
        fixed, notes = squeeze_io(copy_graph(graph), leading=True)
    except Exception:  # noqa: BLE001 - no hint for a graph broken in another way
        return None
    if notes and not validate(fixed):
        return ("Input/Output shapes carry a leading axis, as Sinabs' export writes the "
                "sample's time axis: pass --from sinabs")
    return None


def import_graph(graph: nir.NIRGraph, profile: str | None = None, dt: float | None = None
                 ) -> tuple[nir.NIRGraph, list[str]]:
    """(graph ready to run, warnings): singleton dims tolerated, the profile applied (given, or
    already recorded in the file), or warnings naming the profile the parameters suggest."""
    graph, notes = copy_graph(graph), []
    if validate(graph):  # only a graph that does not validate as written is reshaped
        try:
            graph, notes = squeeze_io(graph)
        except Exception:  # noqa: BLE001 - validation reports what is really wrong
            notes = []
    warnings = []
    if profile is not None:
        fresh = applied(graph) is None
        graph = apply_profile(graph, profile, dt)
        if fresh and profile in NOTES:
            warnings.append(NOTES[profile])
    elif applied(graph) is None:
        warnings.extend(suspects(graph))
    return graph, notes + warnings
