"""The training configuration: every setting of one run, torch-free (the CLI's options and
the pipeline's [train] table are read into it without importing torch)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from neurocompile.config import setting
from neurocompile.errors import ConfigError

# "val_acc": the epoch of highest validation accuracy (the first, on ties).
# "sparse": among epochs whose validation accuracy is within select_tolerance of the highest,
#           the one with the fewest validation spikes per sample (accuracy, then epoch, on ties).
SELECT_MODES = ("val_acc", "sparse")



@dataclass
class TrainConfig:
    """Everything one training run depends on (saved into metrics.json and the checkpoint).

    The `train` command's options are generated from these fields (neurocompile.config), so
    its defaults are these.
    """

    model: str = setting("ff", choices=("ff", "rsnn", "hrsnn", "conv"),
                         help="Zoo model (neurocompile.models.build_model).")
    model_kwargs: dict[str, Any] = setting(default_factory=dict, cli="--model-opt",
                                           help="build_model keyword, e.g. neuron=cubalif")
    dataset: str = setting("digits", choices=("digits", "digits-seq", "digits-pseq", "shd",
                                              "ssc"), help="Dataset (neurocompile.data).")
    dataset_kwargs: dict[str, Any] = setting(default_factory=dict, cli="--dataset-opt",
                                             help="Dataset loader keyword, e.g. steps=20")
    optimizer: str = setting("adam", help="adam | linbreg | adabreg | admm (TRAINERS, RUNNERS).")
    optimizer_kwargs: dict[str, Any] = setting(
        default_factory=dict, cli="--optimizer-opt",
        help="admm only: ADMMConfig keyword, e.g. rho=1e-4, rho_mode=constant|geometric|balance")
    lr: float | None = setting(None, min=0,
                               help="Learning rate (none: the optimizer's default).")
    lam: float = setting(0.05, min=0, cli="--lambda",
                         help="Bregman regularisation strength (threshold on the dual).")
    reg: str | None = setting("l1", choices=("l1", "elastic", "group", None),
                              help="Bregman regulariser of the weights.")
    l2: float = setting(0.0, min=0, help="l2 part of the elastic regulariser.")
    delta: float = setting(1.0, min=0, min_open=True, help="Bregman elastic-net scale delta.")
    density: float | None = setting(None, min=0, max=1, min_open=True,
                                    help="Initial weight density (none: 1 for adam, 0.1 for "
                                         "Bregman).")
    init_rescale: bool = setting(False, help="Scale kept initial weights by 1/sqrt(density).")
    spike_loss: float = setting(0.0, min=0, help="Weight of the spike-count penalty.")
    spike_layer_weights: dict[str, float] | None = setting(
        None, cli="--spike-layer-weight", help="Per-layer penalty factor, e.g. lif1=2")
    normalize_spikes: bool = setting(False, help="Penalise spikes per neuron and step.")
    spike_loss_warmup_epochs: int = setting(0, min=0, cli="--spike-loss-warmup",
                                            help="Epochs without the spike penalty first.")
    spike_loss_ramp_epochs: int = setting(0, min=0, cli="--spike-loss-ramp",
                                          help="Epochs over which the penalty then rises.")
    spike_floor: float = setting(0.0, min=0, help="Penalise only a sample's spikes above this.")
    select: str = setting("val_acc", choices=SELECT_MODES,
                          help="Best epoch: highest val accuracy, or fewest spikes within "
                               "select_tolerance.")
    select_tolerance: float = setting(0.01, min=0, max=1,
                                      help="'sparse' selection: allowed val-accuracy drop.")
    epochs: int = setting(10, min=1, help="Training epochs.")
    batch_size: int = setting(64, min=1, help="Batch size.")
    patience: int | None = setting(5, min=1, help="Epochs without a better validation accuracy "
                                                  "before stopping (none: never).")
    grad_clip: float | None = setting(None, min=0, min_open=True, help="Gradient norm clip.")
    seed: int = setting(0, min=0, help="Random seed.")
    nproc: int = setting(1, min=1, help="Data-parallel processes (torch DDP, gloo).")
    threads: int | None = setting(1, min=1, help="Torch threads per process.")
    out_dir: str | None = setting(None, cli="--out", help="Run directory.")
    progress: bool = setting(True, help="Progress bar and per-epoch lines.")

    def check(self, where: str) -> None:
        """Raise ConfigError for options that the chosen optimizer would silently ignore."""
        if self.optimizer_kwargs and self.optimizer != "admm":
            raise ConfigError(f"{where}: optimizer_kwargs ({', '.join(self.optimizer_kwargs)}) "
                              f"apply to optimizer 'admm' only, got optimizer "
                              f"{self.optimizer!r}")

    def to_json(self) -> dict[str, Any]:
        """The config as a JSON-ready dict."""
        return dataclasses.asdict(self)
