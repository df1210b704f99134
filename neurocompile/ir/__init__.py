"""NIR core: read, validate and write graphs; shapes; graph structure and analyses.

Needs numpy, nir and h5py only (no torch), so the Lava environment can import it. The
discrete-time contract built on it is `neurocompile.semantics`.
"""

from neurocompile.ir.io import load_graph, load_spikes, save_graph, save_spikes
from neurocompile.ir.shapes import infer_shapes
from neurocompile.ir.validate import check_graph, validate

__all__ = [
    "check_graph",
    "infer_shapes",
    "load_graph",
    "load_spikes",
    "save_graph",
    "save_spikes",
    "validate",
]
