"""lava-dl netx files converted to NIR (the NIR project's lava-dl reader, read_cuba_lif).

lava-dl's CUBA neuron is Loihi's: u <- u (1 - du/4096) + x, v <- v (1 - dv/4096) + u, with du, dv
12-bit integers. The converter writes CubaLIF with tau_syn = 1/iDecay, tau_mem = 1/vDecay (the
integers), r = 1, w_in = tau_syn and v_threshold = vThMant, in the units of the weights. The
profile takes dt = 2^-12 (so dt/tau = decay/4096), sets unit input gains (r = 1/dv,
w_in = 1/du) and reset "zero". lava-dl blocks delay each layer by one step (delay_shift,
their default), as this contract does. Not checked against lava-dl here (not installed).
"""

from __future__ import annotations

import nir

from neurocompile.errors import UnsupportedError
from neurocompile.interop import common

NAME = "lava-dl"
DECAY_DT = 2.0 ** -12  # dt/tau = decay / 4096 with tau = 1 / decay
LAYOUT = "bft"  # lava-dl tensors are (batch, features, time)
NOTE = "the lava-dl profile follows the NIR project's lava-dl reader; it is not tested against lava-dl"


def apply(graph: nir.NIRGraph, dt: float | None) -> nir.NIRGraph:
    """The graph in the contract's terms (see the module docstring); dt is fixed by the format."""
    if dt is not None and dt != DECAY_DT:
        raise UnsupportedError(f"lava-dl's decays fix dt = 2^-12 (dt/tau = decay/4096); --dt "
                               f"{dt:g} would change them: leave --dt out with --from lava-dl")
    out = common.copy_graph(graph)
    for name, node in list(common.neurons(out, nir.CubaLIF, nir.CubaLI)):
        tau_m, tau_s = common.f64(node.tau_mem), common.f64(node.tau_syn)
        common.replace(out, name, r=tau_m / DECAY_DT, w_in=tau_s / DECAY_DT)
    common.set_rules(out, reset="zero")
    common.record(out, NAME, DECAY_DT, LAYOUT, {
        "tau": "tau = 1/decay with 12-bit decays: dt = 2^-12; r = 1/dv, w_in = 1/du",
        "reset": "zero", "delay": "one step per layer (lava-dl's delay_shift), as here",
        "w_in": "set to 1/du (the converter writes w_in = tau_syn)"})
    return out


def looks_like(graph: nir.NIRGraph) -> str | None:
    """lava-dl's files cannot be told from their parameters: never."""
    return None
