"""Energy, latency and resource estimates from a run's real counts and published per-op figures.

Torch-free (numpy, nir): importable in the Lava environment. Plots need matplotlib (optional).
"""

from neurocompile.energy.counts import count_activity
from neurocompile.energy.model import (
    estimate_energy,
    estimate_latency,
    estimate_resources,
    evaluate_hardware,
    mapped_resources,
)
from neurocompile.energy.report import (
    DEFAULT_HARDWARE,
    SCHEMA,
    build_report,
    render_markdown,
    render_tables,
    save_report,
    to_json,
)

__all__ = [
    "DEFAULT_HARDWARE",
    "SCHEMA",
    "build_report",
    "count_activity",
    "estimate_energy",
    "estimate_latency",
    "estimate_resources",
    "evaluate_hardware",
    "mapped_resources",
    "render_markdown",
    "render_tables",
    "save_report",
    "to_json",
]

from neurocompile.callable_module import make_callable  # noqa: E402

make_callable(__name__, "neurocompile.api:energy")  # neurocompile.energy(graph, inputs)
