"""The contract, executable: NIR parameters to per-step parameters and back, the one NumPy step
of every neuron kind (float.py), and the Loihi fixed-point format (loihi.py).

NumPy and `ir` only, so the Lava environment (no torch) runs the same contract it was compiled
with, and the torch models are property-tested against it.
"""

from neurocompile.semantics.float import (
    DEFAULT_DT,
    NEXT_STEP_RULES,
    PARAM_NAMES,
    RESET_KEY,
    RESET_RULES,
    SPIKE_RULES,
    SPIKES_KEY,
    Dynamics,
    NeuronParams,
    delay_steps,
    discretise,
    dt_fallback_warning,
    graph_dt,
    per_step,
    reset_rule,
    run,
    spike_rule,
    step,
)
from neurocompile.semantics.inverse import neuron_node

__all__ = [
    "DEFAULT_DT",
    "NEXT_STEP_RULES",
    "PARAM_NAMES",
    "RESET_KEY",
    "RESET_RULES",
    "SPIKES_KEY",
    "SPIKE_RULES",
    "Dynamics",
    "NeuronParams",
    "delay_steps",
    "discretise",
    "dt_fallback_warning",
    "graph_dt",
    "neuron_node",
    "per_step",
    "reset_rule",
    "run",
    "spike_rule",
    "step",
]
