"""neurocompile: take a spiking neural network from training to a neuromorphic target."""

__version__ = "0.1.0"
