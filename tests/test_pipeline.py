"""The main job end to end: a tiny config in every CI run, the default config as a slow test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from neurocompile.errors import ConfigError, InputDataError
from neurocompile.pipeline import EnergyStage, Pipeline, PipelineConfig, PruneStage, SimulateStage

TINY = """
[train]
optimizer = "adam"
lr = 5e-3
epochs = 3
seed = 1
model_kwargs = { n_hidden = 24 }
dataset_kwargs = { steps = 10 }

[simulate]
verify_samples = 3
"""

RUN_FILES = ("config.json", "model.nir", "pruned.nir", "quantized.nir", "artifact/graph.nir",
             "artifact/manifest.json", "simulate.json", "energy/report.json", "energy/report.md",
             "energy/energy_breakdown.png", "energy/spikes_per_layer.png", "summary.json",
             "train/checkpoint.safetensors", "train/metrics.json", "train/training.png")


def run_cli(args: list[str], lava: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, NEUROCOMPILE_LAVA_PYTHON=lava)
    return subprocess.run([sys.executable, "-m", "neurocompile.cli.main", "pipeline", *args],
                          capture_output=True, text=True, cwd=REPO, env=env,
                          stdin=subprocess.DEVNULL, timeout=900)


@pytest.mark.lava
def test_tiny_pipeline_writes_every_artifact_and_reruns_from_a_stage(tmp_path, lava_python_path):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    out = run_cli([str(config), "--out", str(tmp_path / "run")], lava_python_path)
    assert out.returncode == 0, out.stderr[-3000:]
    run = tmp_path / "run"
    for name in RUN_FILES:
        assert (run / name).exists(), name
    summary = json.loads((run / "summary.json").read_text())
    lava = summary["simulate"]["crosscheck"]
    assert lava["target"] == "lava" and lava["samples"] == 3
    assert lava["fixed"]["all_identical"] is True
    assert lava["float"]["class_agreement"] == 1.0
    assert summary["checks"]["crosscheck_fixed_point_identical_to_reference"] is True
    assert summary["simulate"]["spikes_per_sample"]["quantized"] > 10  # not a silent network
    assert set(summary["energy_per_inference_J"]) >= {"loihi", "loihi2", "truenorth", "cmos45"}

    # rerun from the quantize stage: earlier files are read, not rewritten
    model_mtime = (run / "model.nir").stat().st_mtime_ns
    out = run_cli([str(config), "--out", str(run), "--from", "quantize", "--verify-samples", "0"],
                  lava_python_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (run / "model.nir").stat().st_mtime_ns == model_mtime
    again = json.loads((run / "summary.json").read_text())
    assert again["simulate"]["accuracy"] == summary["simulate"]["accuracy"]


QUIET_TINY = """
[train]
optimizer = "adam"
lr = 5e-3
epochs = 1
model_kwargs = { n_hidden = 12 }
dataset_kwargs = { steps = 6 }

[prune]
calibration_samples = 32

[simulate]
verify_samples = 0

[energy]
hardware = ["cmos45"]
"""


def test_quiet_pipeline_prints_nothing_on_success(tmp_path):
    """-q: no stage lines, no training progress or epoch lines, on stdout or stderr; the
    --json file still gets the summary. The same run without -q prints them."""
    config = tmp_path / "tiny.toml"
    config.write_text(QUIET_TINY)
    run = tmp_path / "run"
    loud = run_cli([str(config), "-o", str(run)], "")
    assert loud.returncode == 0, loud.stderr[-3000:]
    assert "epoch   1" in loud.stdout and "train" in loud.stdout  # what -q must silence
    quiet = run_cli([str(config), "-o", str(run), "-q", "--json", str(tmp_path / "s.json")], "")
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert quiet.stdout == "" and quiet.stderr == ""
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary == json.loads((run / "summary.json").read_text())


def test_rerun_without_earlier_stage_names_missing_file(tmp_path):
    cfg = PipelineConfig(out_dir=str(tmp_path / "empty"))
    with pytest.raises(InputDataError, match="model.nir: missing"):
        Pipeline(cfg).run("prune", "prune")


def test_config_errors_name_file_and_key(tmp_path):
    bad = tmp_path / "bad.toml"
    for text, message in [
            ("[train]\nepochz = 3\n", r"bad.toml: train: unknown key 'epochz'; known: model,"),
            ("[tarin]\nepochs = 3\n", r"bad.toml: unknown key 'tarin'; known: out_dir, train"),
            ("[train\n", r"bad.toml: not valid TOML"),
            ('[train]\nepochs = "three"\n', r"bad.toml: train.epochs: must be an integer, got "
                                            r"'three'"),
            ("[prune]\nsparsity = 1.5\n", r"bad.toml: prune.sparsity: must be < 1, got 1.5"),
            ("[simulate]\nverify_samples = nan\n", r"verify_samples: must be an integer"),
            ("[quantize]\nbits = 9\n", r"quantize.bits: must be <= 8, got 9")]:
        bad.write_text(text)
        with pytest.raises(ConfigError, match=message):
            PipelineConfig.from_toml(bad)


def test_a_table_overrides_only_the_keys_it_names(tmp_path):
    path = tmp_path / "part.toml"
    path.write_text("[train]\nepochs = 2\n")
    cfg = PipelineConfig.from_toml(path)
    default = PipelineConfig()
    assert cfg.train.epochs == 2 and cfg.train.optimizer == default.train.optimizer == "adabreg"
    assert cfg.train.model_kwargs == default.train.model_kwargs
    assert cfg.simulate == default.simulate


def test_rerun_removes_outputs_of_later_stages(tmp_path):
    from neurocompile.config import replace

    train = replace(PipelineConfig().train, "test", model_kwargs={"n_hidden": 16}, epochs=2,
                    dataset_kwargs={"steps": 8}, optimizer="adam", lr=5e-3)
    cfg = PipelineConfig(out_dir=str(tmp_path / "run"), train=train,
                         simulate=SimulateStage(verify_samples=0),
                         energy=EnergyStage(hardware=["loihi", "cmos45"]))
    pipe = Pipeline(cfg, console=None)
    pipe.console.quiet = True
    first = pipe.run("train", "energy")
    assert first["energy_per_inference_J"]["loihi"] > 0
    again = pipe.run("simulate", "simulate")
    assert not (tmp_path / "run" / "energy").exists()
    assert "energy_per_inference_J" not in again
    assert again["simulate"]["accuracy"] == first["simulate"]["accuracy"]
    # neuron spikes only (input spikes not counted): what the torch model emitted in training
    torch_spikes = first["train"]["test_spikes_per_sample"]
    assert torch_spikes > 10
    assert again["simulate"]["spikes_per_sample"]["float"] == pytest.approx(torch_spikes, rel=0.01)


@pytest.mark.slow
@pytest.mark.lava
def test_default_pipeline_meets_its_promises(tmp_path, lava_python_path):
    out = run_cli(["--out", str(tmp_path / "run")], lava_python_path)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["checks"] == {"crosscheck_fixed_point_identical_to_reference": True,
                                 "accuracy_within_2_points_after_prune_and_quantize": True,
                                 "nonzero_parameters_at_most_half_of_dense": True}
    assert summary["simulate"]["accuracy"]["float"] >= 0.9


def _tiny_cfg(out: Path, **train) -> PipelineConfig:
    from neurocompile.config import replace

    base = dict(model_kwargs={"n_hidden": 12}, epochs=1, dataset_kwargs={"steps": 6},
                optimizer="adam", lr=5e-3, progress=False)
    t = replace(PipelineConfig().train, "test", **{**base, **train})
    return PipelineConfig(out_dir=str(out), train=t, simulate=SimulateStage(verify_samples=0),
                          prune=PruneStage(calibration_samples=32),
                          energy=EnergyStage(hardware=["cmos45"]))


def _snapshot(run: Path) -> dict[str, int]:
    return {str(p.relative_to(run)): p.stat().st_mtime_ns for p in sorted(run.rglob("*"))
            if p.is_file() and p.name != ".lock"
            and not str(p.relative_to(run)).startswith(".staging-")}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("tx") / "run"
    pipe = Pipeline(_tiny_cfg(run), console=None)
    pipe.console.quiet = True
    pipe.run()
    return run


def test_a_failed_rerun_leaves_the_run_directory_as_it_was(finished_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = _snapshot(run)
    assert "energy/report.json" in before and "model.nir" in before
    bad = Pipeline(_tiny_cfg(run, model_kwargs={"n_hiden": 3}), console=None)
    bad.console.quiet = True
    with pytest.raises(Exception, match="n_hiden"):
        bad.run()
    assert _snapshot(run) == before
    assert not list(run.glob(".staging-*"))
    with pytest.raises(InputDataError, match="--to prune comes before --from simulate"):
        Pipeline(_tiny_cfg(run), console=None).run("simulate", "prune")
    assert _snapshot(run) == before


def test_a_second_run_on_the_same_directory_is_refused(finished_run, tmp_path):
    from neurocompile.rundir import run_lock

    with run_lock(finished_run):
        with pytest.raises(InputDataError, match=r"another run is using this directory \(pid"):
            Pipeline(_tiny_cfg(finished_run), console=None).run("energy", "energy")


def _processes_naming(path) -> list[int]:
    """Pids of live processes whose command line mentions `path`."""
    import os

    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if str(path).encode() in f.read():
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def test_watchdog_puts_back_an_output_set_aside_when_the_run_is_killed(tmp_path):
    """SIGKILL between commit's two renames (old output aside, new not yet in): the watchdog
    moves the old output back and removes the staging directory."""
    import time

    d = tmp_path / "run"
    (d / "out").mkdir(parents=True)
    (d / "out" / "a.txt").write_text("old")
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from neurocompile.rundir import ASIDE, run_lock, staging_dir\n"
        "d = Path(sys.argv[1])\n"
        "with run_lock(d), staging_dir(d) as w:\n"
        "    (w / 'out').mkdir(); (w / 'out' / 'a.txt').write_text('new')\n"
        "    (w / ASIDE).mkdir(); os.replace(d / 'out', w / ASIDE / 'out')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", script, str(d)], cwd=REPO)
    assert proc.returncode == -9
    deadline = time.monotonic() + 20
    while list(d.glob(".staging-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not list(d.glob(".staging-*"))
    assert (d / "out" / "a.txt").read_text() == "old"


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM"])
def test_killed_rerun_keeps_earlier_outputs(finished_run, tmp_path, sig):
    """kill -9 / SIGTERM of the CLI mid-run: every earlier output intact, no process and no
    staging directory left (after SIGKILL the run's watchdog removes it)."""
    import shutil
    import signal
    import time

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = _snapshot(run)
    config = tmp_path / "slow.toml"
    config.write_text('[train]\noptimizer = "adam"\nepochs = 50\nprogress = false\n'
                      'model_kwargs = { n_hidden = 64 }\n[simulate]\nverify_samples = 0\n')
    proc = subprocess.Popen([sys.executable, "-m", "neurocompile.cli.main", "pipeline",
                             str(config), "--out", str(run)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(run.glob(".staging-*/train/*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(run.glob(".staging-*/train/*")), "the rerun never started training"
    proc.send_signal(getattr(signal, sig))
    rc = proc.wait(timeout=60)
    assert rc != 0
    assert _snapshot(run) == before
    deadline = time.monotonic() + 20
    while (list(run.glob(".staging-*")) or _processes_naming(run)) and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    assert not list(run.glob(".staging-*"))
    assert not _processes_naming(run), "a process of the killed run is still alive"
    assert _snapshot(run) == before
    again = Pipeline(_tiny_cfg(run), console=None)
    again.console.quiet = True
    again.run("energy", "energy")  # takes the lock, removes what a killed run left
    assert not list(run.glob(".staging-*"))
