"""Graph -> graph transforms on NIR graphs (numpy and ir only): pruning, quantization.

Each pass deep-copies its input and returns ``(new_graph, PassReport)``. Passes never run a
graph: activity-based ones take the activity of a calibration run
(neurocompile.targets.reference.record_activity); comparing a graph with its transformed
version is neurocompile.targets.compare; the prune command's methods (PRUNE_METHODS) are
in neurocompile.targets.calibrate.
"""

from neurocompile.passes.prune import (
    activity_prune,
    magnitude_prune,
    remove_dead_neurons,
)
from neurocompile.passes.quantize import (
    QUANTIZE_SCHEMES,
    loihi_effective_weights,
    quantize_int8,
    quantize_loihi,
)
from neurocompile.passes.report import NodeReport, PassReport

__all__ = [
    "QUANTIZE_SCHEMES",
    "NodeReport",
    "PassReport",
    "activity_prune",
    "loihi_effective_weights",
    "magnitude_prune",
    "quantize_int8",
    "quantize_loihi",
    "remove_dead_neurons",
]
