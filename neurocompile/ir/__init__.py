"""NIR core: read, validate and write graphs; shapes; the continuous-to-discrete mapping.

Needs numpy, nir and h5py only (no torch), so the Lava environment can import it.
"""

from neurocompile.ir.io import load_graph, load_spikes, save_graph, save_spikes
from neurocompile.ir.semantics import DEFAULT_DT, NeuronStep, graph_dt, neuron_step
from neurocompile.ir.shapes import infer_shapes
from neurocompile.ir.validate import check_graph, validate

__all__ = [
    "DEFAULT_DT",
    "NeuronStep",
    "check_graph",
    "graph_dt",
    "infer_shapes",
    "load_graph",
    "load_spikes",
    "neuron_step",
    "save_graph",
    "save_spikes",
    "validate",
]
