"""Training loop, checkpoints, trainer hooks, DDP and the `train` command, on tiny configs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from neurocompile.data import DataSplits, load_dataset
from neurocompile.train import loop
from neurocompile.train.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model,
    metadata_path,
    save_checkpoint,
)
from neurocompile.train.loop import TRAINERS, AdamTrainer, TrainConfig, fit, train


def tiny_data(n_train: int = 256, n_val: int = 48, n_test: int = 48, steps: int = 8
              ) -> DataSplits:
    full = load_dataset("digits", steps=steps, seed=0)
    return DataSplits(full.train.subset(np.arange(n_train)), full.val.subset(np.arange(n_val)),
                      full.test.subset(np.arange(n_test)))


def tiny_config(**kw) -> TrainConfig:
    base = dict(model="ff", model_kwargs={"n_hidden": 16}, epochs=2, batch_size=32,
                progress=False)
    base.update(kw)
    return TrainConfig(**base)


class StandIn(torch.nn.Module):
    """A minimal non-zoo network with the contract's call signature: x -> (out, spikes)."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.fc = torch.nn.Linear(n_in, n_out)

    def forward(self, x):
        cur = self.fc(x)
        s = torch.sigmoid(4 * (cur - 0.5))  # a smooth stand-in for spikes
        return cur, {"layer": s}


def stand_in_factory(config: TrainConfig, data: DataSplits) -> torch.nn.Module:
    return StandIn(data.n_features, data.n_classes)


def test_fit_writes_checkpoint_and_metrics(tmp_path):
    data = tiny_data()
    model, metrics = fit(tiny_config(out_dir=str(tmp_path), epochs=3, lr=2e-2), data=data)
    assert (tmp_path / "metrics.json").is_file()
    assert (tmp_path / "checkpoint.safetensors").is_file()
    assert (tmp_path / "checkpoint.json").is_file()
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["test_acc"] == metrics["test_acc"]
    assert len(metrics["epochs"]) == 3
    row = metrics["epochs"][-1]
    for key in ("train_loss", "train_acc", "val_acc", "nonzero_weights", "nonzero_fraction",
                "spikes_per_sample", "spikes_per_layer"):
        assert key in row
    assert metrics["weight_count"] == 64 * 16 + 16 * 10
    assert metrics["nonzero_fraction"] == 1.0  # dense Adam
    assert metrics["val_acc"] > 0.4  # 10 classes: chance is 0.1
    assert metrics["val_acc"] == max(r["val_acc"] for r in metrics["epochs"])
    # the checkpoint holds the best epoch's weights, which fit() returned
    rebuilt, meta = load_model(tmp_path / "checkpoint.safetensors")
    assert meta["epoch"] == metrics["best_epoch"] and meta["model"] == "ff"
    for (k, a), (_, b) in zip(model.state_dict().items(), rebuilt.state_dict().items()):
        torch.testing.assert_close(a, b, msg=k)
    spikes = metrics["test_spikes_per_layer"]
    assert set(spikes) == {"lif1"} and metrics["test_spikes_per_sample"] == spikes["lif1"]


def test_early_stopping_with_patience(tmp_path):
    metrics = train(tiny_config(epochs=6, lr=0.0, patience=2), data=tiny_data())
    # lr 0: validation never improves after epoch 1, so epochs 2 and 3 exhaust the patience
    assert [r["epoch"] for r in metrics["epochs"]] == [1, 2, 3]
    assert metrics["stopped_early"] and metrics["best_epoch"] == 1


def test_bregman_training_stays_sparse():
    data = tiny_data()
    _, adam = fit(tiny_config(epochs=2), data=data)
    model, breg = fit(tiny_config(optimizer="adabreg", lam=0.5, density=0.2, epochs=2),
                      data=data)
    first = breg["epochs"][0]["nonzero_fraction"]
    assert first < 0.35 and breg["nonzero_fraction"] < 0.5 and adam["nonzero_fraction"] == 1.0
    nz = sum(int(torch.count_nonzero(p)) for p in model.parameters() if p.dim() >= 2)
    assert nz == breg["nonzero_weights"]
    _, lin = fit(tiny_config(optimizer="linbreg", lam=0.05, lr=1.0, density=0.1, epochs=1),
                 data=data)
    assert lin["nonzero_fraction"] < 0.3


def test_spike_loss_reduces_activity():
    data = tiny_data()
    _, plain = fit(tiny_config(epochs=2, lr=2e-2), data=data)
    _, quiet = fit(tiny_config(epochs=2, lr=2e-2, spike_loss=0.01), data=data)
    assert quiet["test_spikes_per_sample"] < 0.7 * plain["test_spikes_per_sample"]


def test_trainer_registry_hook(monkeypatch):
    calls: list[str] = []

    class Recording(AdamTrainer):
        def extra_loss(self):
            calls.append("extra")
            return 0.0 * sum(p.sum() for p in self.model.parameters())

        def end_epoch(self, epoch):
            calls.append(f"epoch{epoch}")

        def finalize(self):
            calls.append("final")
            with torch.no_grad():
                self.model.fc.weight[0].zero_()

    monkeypatch.setitem(TRAINERS, "recording", Recording)
    data = tiny_data(n_train=64)
    model, metrics = fit(tiny_config(optimizer="recording", epochs=2), data=data,
                         model_factory=stand_in_factory, classify=lambda out: out.mean(1))
    assert calls == ["extra", "extra", "epoch1", "extra", "extra", "epoch2", "final"]
    # finalize acts on the returned weights and the reported counts
    assert metrics["nonzero_weights"] == 64 * 10 - 64
    assert torch.count_nonzero(model.fc.weight[0]) == 0


def test_whole_run_trainers_are_dispatched(tmp_path):
    pytest.importorskip("neurocompile.train.admm")
    assert "admm" in loop.RUNNERS
    metrics = train(tiny_config(optimizer="admm", reg=None, epochs=1, out_dir=str(tmp_path)),
                    data=tiny_data(n_train=64))
    assert (tmp_path / "metrics.json").is_file() and 0.0 <= metrics["test_acc"] <= 1.0
    load_model(tmp_path / "checkpoint.safetensors")


def test_unknown_optimizer():
    with pytest.raises(Exception, match="unknown optimizer 'sgd'"):
        train(tiny_config(optimizer="sgd"), data=tiny_data())


def test_checkpoint_roundtrip_and_errors(tmp_path):
    net = torch.nn.Linear(3, 2)
    path = save_checkpoint(tmp_path / "c.safetensors", net, {"epoch": 4})
    assert json.loads(metadata_path(path).read_text())["epoch"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json", "c.safetensors"]  # no temp
    other = torch.nn.Linear(3, 2)
    state, meta = load_checkpoint(path, other)
    torch.testing.assert_close(other.weight, net.weight)
    assert meta == {"epoch": 4}
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(path, torch.nn.Linear(4, 2))
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 32)
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointError, match="no such"):
        load_checkpoint(tmp_path / "missing.safetensors")


@pytest.mark.slow
def test_ddp_two_processes_match_one_process_with_double_batch(tmp_path):
    data = tiny_data(n_train=64, n_val=32, n_test=32, steps=4)
    one = train(tiny_config(batch_size=16, out_dir=str(tmp_path / "one"), lr=5e-3), data=data)
    two = train(tiny_config(batch_size=8, nproc=2, out_dir=str(tmp_path / "two"), lr=5e-3),
                data=data)
    assert two["world_size"] == 2 and (tmp_path / "two" / "metrics.json").is_file()
    # each rank takes half of every 16-sample batch, gradients are averaged: same updates
    a, _ = load_checkpoint(tmp_path / "one" / "checkpoint.safetensors")
    b, _ = load_checkpoint(tmp_path / "two" / "checkpoint.safetensors")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)
    assert two["val_acc"] == one["val_acc"] and two["dataset"]["val"] == 32


def test_train_command_writes_run_dir(tmp_path):
    from neurocompile.cli.main import cli
    from neurocompile.ir.io import load_graph
    from neurocompile.models import classify
    from neurocompile.targets.reference import simulate

    out = tmp_path / "run"
    result = CliRunner().invoke(cli, [
        "train", "--model", "ff", "--hidden", "12", "--dataset", "digits", "--steps", "5",
        "--optimizer", "linbreg", "--lr", "1.0", "--lambda", "0.02", "--spike-loss", "0.001",
        "--epochs", "1", "--no-progress", "-o", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("checkpoint.safetensors", "checkpoint.json", "metrics.json", "model.nir"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["optimizer"] == "linbreg" and metrics["config"]["spike_loss"] == 0.001
    assert metrics["nonzero_fraction"] < 0.5
    # the exported graph computes what the trained model computes
    graph = load_graph(out / "model.nir")
    model, _ = load_model(out / "checkpoint.safetensors")
    x = load_dataset("digits", steps=5).test.x[:20]
    with torch.no_grad():
        torch_pred = classify(model(torch.from_numpy(x))[0]).argmax(-1).numpy()
    sim = simulate(graph, {"input": x}, steps=5)
    ref_pred = classify(sim.outputs["output"]).argmax(-1)
    assert np.mean(ref_pred == torch_pred) >= 0.9


def test_train_command_errors(tmp_path, monkeypatch):
    from neurocompile.cli.main import main

    monkeypatch.delenv("NEUROCOMPILE_SHD_DIR", raising=False)
    monkeypatch.delenv("NEUROCOMPILE_DATA_DIR", raising=False)
    with pytest.raises(SystemExit) as exc:
        main(["train", "--dataset", "shd", "--data-path", str(tmp_path), "-o",
              str(tmp_path / "r")])
    assert exc.value.code == 2
    assert loop.CHECKPOINT_NAME == "checkpoint.safetensors"
