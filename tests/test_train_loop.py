"""Training loop, checkpoints, trainer hooks, DDP and the `train` command, on tiny configs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from neurocompile.data import DataSplits, load_dataset
from neurocompile.errors import ConfigError
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


def test_spike_loss_schedule():
    cfg = tiny_config(spike_loss=0.3, spike_loss_warmup_epochs=2, spike_loss_ramp_epochs=3)
    assert [loop.spike_loss_weight(cfg, e) for e in range(1, 7)] == pytest.approx(
        [0.0, 0.0, 0.1, 0.2, 0.3, 0.3])
    assert loop.spike_loss_weight(tiny_config(spike_loss=0.3), 1) == 0.3


def test_warmup_penalty_is_zero_before_and_applied_after(tmp_path):
    data = tiny_data(n_train=64)
    kw = dict(epochs=4, lr=1e-2, spike_loss_warmup_epochs=2, spike_loss_ramp_epochs=2)
    _, m = fit(tiny_config(spike_loss=0.05, **kw), data=data,
               model_factory=stand_in_factory, classify=lambda out: out.mean(1))
    rows = m["epochs"]
    assert [r["spike_loss_weight"] for r in rows] == pytest.approx([0, 0, 0.025, 0.05])
    for r in rows[:2]:
        assert r["train_loss"] == r["train_task_loss"]  # exactly no penalty term
    for r in rows[2:]:  # the stand-in's spikes are positive: the penalty adds to the loss
        assert r["train_loss"] > r["train_task_loss"] + 1e-3
    # during warm-up the weights follow the unpenalised run exactly
    a = train(tiny_config(spike_loss=10.0, epochs=2, spike_loss_warmup_epochs=2,
                          out_dir=str(tmp_path / "a")), data=data)
    b = train(tiny_config(spike_loss=0.0, epochs=2, out_dir=str(tmp_path / "b")), data=data)
    sa, _ = load_checkpoint(tmp_path / "a" / "checkpoint.safetensors")
    sb, _ = load_checkpoint(tmp_path / "b" / "checkpoint.safetensors")
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0, msg=k)
    assert a["test_acc"] == b["test_acc"]


def test_spike_floor_keeps_activity_under_a_large_weight():
    data = tiny_data()
    kw = dict(epochs=3, lr=1e-2, spike_loss=0.05)
    _, plain = fit(tiny_config(**kw), data=data)
    _, floor = fit(tiny_config(spike_floor=30.0, **kw), data=data)
    assert plain["epochs"][-1]["train_spikes_per_sample"] < 3.0  # collapsed
    assert floor["epochs"][-1]["train_spikes_per_sample"] > 15.0


def test_sparse_selector_by_hand():
    sel = loop._SparseSelector(0.02)
    assert sel.add(1, 0.80, 100.0, {})[0] == 1
    assert sel.add(2, 0.90, 300.0, {})[0] == 2  # epoch 1 is out of tolerance now
    assert sel.add(3, 0.89, 200.0, {})[0] == 3  # within 0.02 of 0.90, fewer spikes
    assert sel.add(4, 0.88, 250.0, {})[0] == 3  # dominated by epoch 3
    assert [c[0] for c in sel.cands] == [2, 3]
    assert sel.add(5, 0.93, 400.0, {})[0] == 5  # 0.90 and 0.89 fall out of tolerance
    assert sel.add(6, 0.905, 150.0, {})[0] == 5  # 0.905 < 0.93 - 0.02
    assert sel.add(7, 0.91, 390.0, {})[0] == 7  # at the tolerance edge, fewer spikes


def test_sparse_selection_picks_fewest_spikes_within_tolerance(tmp_path):
    data = tiny_data()
    model, m = fit(tiny_config(epochs=5, lr=1e-2, spike_loss=2e-3, select="sparse",
                               select_tolerance=0.05, out_dir=str(tmp_path)), data=data)
    rows = m["epochs"]
    top = max(r["val_acc"] for r in rows)
    ok = [r for r in rows if r["val_acc"] >= top - 0.05 - 1e-12]
    best = min(ok, key=lambda r: (r["spikes_per_sample"], -r["val_acc"], r["epoch"]))
    assert m["best_epoch"] == best["epoch"] and m["val_acc"] == best["val_acc"]
    assert m["selection"] == {"criterion": "sparse", "tolerance": 0.05, "max_val_acc": top}
    # the returned model and the checkpoint are that epoch's weights
    val = loop.evaluate(model, data.val, loop._default_classify)
    assert val["acc"] == best["val_acc"]
    assert val["spikes_per_sample"] == pytest.approx(best["spikes_per_sample"])
    state, meta = load_checkpoint(tmp_path / "checkpoint.safetensors")
    assert meta["epoch"] == best["epoch"]
    for k, v in model.state_dict().items():
        torch.testing.assert_close(state[k], v)


def test_init_rescale_scales_the_kept_weights():
    data = tiny_data(n_train=64)
    built = {}
    for rescale in (False, True):
        cfg = tiny_config(optimizer="linbreg", density=0.25, lam=0.0, init_rescale=rescale,
                          seed=3)
        torch.manual_seed(3)
        model = loop.default_model_factory(cfg, data)
        TRAINERS["linbreg"](model, cfg).setup()
        built[rescale] = model.fc1.weight.detach().clone()
    assert torch.count_nonzero(built[False]) == round(0.25 * built[False].numel())
    torch.testing.assert_close(built[True], 2.0 * built[False])


@pytest.mark.parametrize("kw, match", [
    (dict(select="best"), "select: must be one of val_acc, sparse"), (dict(spike_floor=-1.0), "spike_floor"),
    (dict(spike_loss_warmup_epochs=-1), "warmup"), (dict(select_tolerance=-0.1), "tolerance")])
def test_bad_schedule_and_selection_options(kw, match):
    with pytest.raises(ConfigError, match=match):
        fit(tiny_config(**kw), data=tiny_data(n_train=32))


def test_train_command_passes_spike_options(tmp_path):
    from neurocompile.cli.main import cli

    out = tmp_path / "run"
    result = CliRunner().invoke(cli, [
        "train", "--hidden", "8", "--steps", "4", "--spike-loss", "0.001", "--spike-floor", "5",
        "--spike-loss-warmup", "1", "--spike-loss-ramp", "2", "--spike-layer-weight", "lif1=2",
        "--select", "sparse", "--select-tolerance", "0.02", "--density", "0.5",
        "--init-rescale", "--epochs", "2", "--no-progress", "-o", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    cfg = metrics["config"]
    assert (cfg["spike_floor"], cfg["spike_loss_warmup_epochs"], cfg["spike_loss_ramp_epochs"],
            cfg["spike_layer_weights"], cfg["select"], cfg["select_tolerance"],
            cfg["init_rescale"]) == (5.0, 1, 2, {"lif1": 2.0}, "sparse", 0.02, True)
    assert [r["spike_loss_weight"] for r in metrics["epochs"]] == pytest.approx([0, 0.0005])
    bad = CliRunner().invoke(cli, ["train", "--spike-layer-weight", "lif1", "-o", str(out)])
    assert isinstance(bad.exception, ConfigError)  # main() prints it as one line, exit 2
    assert "--spike-layer-weight: expected KEY=VALUE, got 'lif1'" in str(bad.exception)
