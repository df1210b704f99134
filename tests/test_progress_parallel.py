"""Progress of Lava runs (the worker reports samples done; bars only on a terminal, off with
-q) and the pipeline's two cross-check runs side by side with unchanged results and errors."""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager

import numpy as np
import pytest

import neurocompile.analysis
from neurocompile import pipeline as pipeline_mod
from neurocompile import progress
from neurocompile.demo import demo_graph, demo_input
from neurocompile.errors import InputDataError
from neurocompile.targets import get_target
from neurocompile.targets.lava import target as lava_target

REAL_CROSSCHECK = neurocompile.analysis.crosscheck


def test_bars_only_on_a_terminal_and_not_when_quiet(monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    progress.set_enabled(True)
    assert progress.shown()
    progress.set_enabled(False)
    assert not progress.shown()
    progress.set_enabled(True)
    monkeypatch.setattr("sys.stderr.isatty", lambda: False, raising=False)
    assert not progress.shown()
    with progress.bar(5, "x") as bar:  # not shown: a bar that does nothing
        bar.update(3)


def test_the_lava_worker_reports_each_sample(monkeypatch, lava_python_path):
    monkeypatch.setenv("NEUROCOMPILE_LAVA_PYTHON", lava_python_path)
    seen: list[tuple[int, int]] = []

    class Recorder:
        def update(self, done: int) -> None:
            seen.append((total, done))

    @contextmanager
    def record(n, description):
        nonlocal total
        total = n
        yield Recorder()

    total = 0
    monkeypatch.setattr(lava_target.progress, "bar", record)
    target = get_target("lava")
    target.run(target.compile(demo_graph()), {"input": demo_input(batch=3, steps=10)})
    dones = [d for _, d in seen]
    assert total == 3 and dones[-1] == 3 and dones == sorted(dones)


def test_progress_file_round_trip(tmp_path):
    assert lava_target.read_progress(tmp_path) == 0
    lava_target.write_progress(tmp_path, 7)
    assert lava_target.read_progress(tmp_path) == 7


@pytest.fixture(scope="module")
def compiled_run(tmp_path_factory):
    from neurocompile.config import replace

    run = tmp_path_factory.mktemp("par") / "run"
    base = pipeline_mod.PipelineConfig()
    train = replace(base.train, "test", model_kwargs={"n_hidden": 12}, epochs=1,
                    dataset_kwargs={"steps": 6}, optimizer="adam", lr=5e-3, progress=False)
    cfg = pipeline_mod.PipelineConfig(
        out_dir=str(run), train=train, prune=pipeline_mod.PruneStage(calibration_samples=32),
        simulate=pipeline_mod.SimulateStage(verify_samples=4, verify_target="reference"),
        energy=pipeline_mod.EnergyStage(hardware=["cmos45"]))
    pipe = pipeline_mod.Pipeline(cfg, console=None)
    pipe.console.quiet = True
    pipe.run(stop="compile")
    return cfg


def _simulate(cfg, monkeypatch, cores: int, fail: tuple[bool, ...] = ()):
    """Run the simulate stage with a crosscheck that takes 0.3 s; returns (simulate.json,
    the intervals each run took)."""
    import neurocompile.analysis as analysis

    real = REAL_CROSSCHECK
    spans = {}

    def slow(graph, target, x, options=None):
        start = time.perf_counter()
        time.sleep(0.3)
        if options["fixed_point"] in fail:
            raise InputDataError(f"run fixed_point={options['fixed_point']} failed")
        out = real(graph, target, x, options=options)
        spans[options["fixed_point"]] = (start, time.perf_counter(), threading.get_ident())
        return out

    monkeypatch.setattr(analysis, "crosscheck", slow)
    monkeypatch.setattr(pipeline_mod, "_cores", lambda: cores)
    pipe = pipeline_mod.Pipeline(cfg, console=None)
    pipe.console.quiet = True
    pipe.run(start="simulate", stop="simulate")
    return json.loads((pipe.dir / "simulate.json").read_text()), spans


def _without_times(sim):
    for mode in ("float", "fixed"):
        sim["crosscheck"][mode].pop("wall_time_s")
    return sim


def test_the_two_runs_overlap_where_there_are_cores(compiled_run, monkeypatch):
    parallel, spans = _simulate(compiled_run, monkeypatch, cores=2)
    (a0, a1, _), (b0, b1, _) = spans[False], spans[True]
    assert a0 < b1 and b0 < a1, "the runs did not overlap"
    serial, spans = _simulate(compiled_run, monkeypatch, cores=1)
    (a0, a1, _), (b0, b1, _) = spans[False], spans[True]
    assert a1 <= b0, "one core: one run after the other"
    assert _without_times(parallel) == _without_times(serial)
    assert np.isfinite(parallel["crosscheck"]["fixed"]["max_abs_readout_difference"])


def test_the_first_error_in_order_is_raised(compiled_run, monkeypatch):
    with pytest.raises(InputDataError, match="fixed_point=False failed"):
        _simulate(compiled_run, monkeypatch, cores=2, fail=(False, True))
    with pytest.raises(InputDataError, match="fixed_point=True failed"):
        _simulate(compiled_run, monkeypatch, cores=2, fail=(True,))
