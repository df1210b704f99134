"""Training curves PNG from a metrics dict."""

from __future__ import annotations

import pytest

from neurocompile.train.plots import plot_training


def test_plot_training_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    epochs = [{"epoch": k, "train_acc": 0.1 * k, "val_acc": 0.1 * k, "nonzero_fraction": 0.5,
               "spikes_per_sample": 100.0 - k} for k in range(1, 6)]
    path = plot_training({"epochs": epochs, "best_epoch": 4, "config": {"optimizer": "adam"}},
                         tmp_path / "curves.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]  # no temporary file left
