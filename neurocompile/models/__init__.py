"""Torch SNN building blocks whose dynamics equal the reference semantics; the model zoo."""

from neurocompile.models.networks import (
    MODEL_NAMES,
    READOUT,
    RSNN,
    SNN,
    Affine,
    Conv2d,
    ConvSNN,
    FeedForwardSNN,
    HeteroRSNN,
    SumPool2d,
    build_model,
    classify,
    shift,
)
from neurocompile.models.neurons import (
    IF,
    LI,
    LIF,
    CubaLI,
    CubaLIF,
    NeuronLayer,
    NeuronState,
    StepParams,
    spike,
    step,
    torch_step_params,
)

__all__ = [
    "IF", "LI", "LIF", "MODEL_NAMES", "READOUT", "RSNN", "SNN", "Affine", "Conv2d", "ConvSNN",
    "CubaLI", "CubaLIF", "FeedForwardSNN", "HeteroRSNN", "NeuronLayer", "NeuronState",
    "StepParams", "SumPool2d", "build_model", "classify", "torch_step_params", "shift", "spike",
    "step",
]
