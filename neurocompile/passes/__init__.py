"""Graph -> graph transforms on NIR graphs (numpy only): pruning, quantization, comparison.

Each pass deep-copies its input and returns ``(new_graph, PassReport)``.
"""

from neurocompile.passes.compare import compare
from neurocompile.passes.prune import (
    PRUNE_METHODS,
    PruneOptions,
    activity_prune,
    magnitude_prune,
    record_activity,
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
    "PRUNE_METHODS",
    "QUANTIZE_SCHEMES",
    "NodeReport",
    "PassReport",
    "PruneOptions",
    "activity_prune",
    "compare",
    "loihi_effective_weights",
    "magnitude_prune",
    "quantize_int8",
    "quantize_loihi",
    "record_activity",
    "remove_dead_neurons",
]
