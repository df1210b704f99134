"""--from, --layout and --dt as a user meets them: profiles applied, warnings that name the
profile or the layout, singleton Output dimensions accepted, and the dt energy records."""

from __future__ import annotations

import json

import nir
import numpy as np
import pytest

from neurocompile.cli.main import main
from neurocompile.interop import import_graph
from neurocompile.ir.io import load_spikes, save_graph, save_spikes
from neurocompile.targets.reference import simulate


def cli(capsys, *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def norse_like() -> nir.NIRGraph:
    """What Norse's to_nir writes for Linear -> LIFCell: tau = dt/tau_inv, w_in = 1, Input and
    Output with the sample's batch dimension."""
    rng = np.random.default_rng(0)
    n = 4
    return nir.NIRGraph(
        nodes={"input": nir.Input(np.array([1, 3])),
               "0": nir.Affine(rng.uniform(0, 2, (n, 3)), np.zeros(n)),
               "1": nir.CubaLIF(tau_syn=np.full(n, 5e-6), tau_mem=np.full(n, 1e-5),
                                r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.full(n, 0.3)),
               "output": nir.Output(np.array([1, n]))},
        edges=[("input", "0"), ("0", "1"), ("1", "output")], type_check=False)


def x_btf(batch=3, steps=40, n=3, seed=1) -> np.ndarray:
    return (np.random.default_rng(seed).random((batch, steps, n)) < 0.4).astype(np.float64)


def test_simulate_without_profile_names_it_and_with_it_runs(capsys, tmp_path):
    g = tmp_path / "n.nir"
    nir.write(g, norse_like())  # as Norse writes it: not valid as it stands
    x = x_btf()
    save_spikes({"input": x}, tmp_path / "x.npz")
    code, _, err = cli(capsys, "simulate", str(g), "--input", str(tmp_path / "x.npz"))
    assert code == 2
    assert "pass --from norse" in err and "dt/tau_syn" in err
    save_spikes({"input": np.swapaxes(x, 0, 1)}, tmp_path / "t.npz")  # Norse's (time, batch)
    code, _, err = cli(capsys, "simulate", str(g), "--input", str(tmp_path / "t.npz"),
                       "--from", "norse", "-o", str(tmp_path / "y.npz"))
    assert code == 0, err
    assert "reading inputs as tbf" in err
    expected = simulate(import_graph(norse_like(), "norse")[0], {"input": x}).outputs["output"]
    got = load_spikes(tmp_path / "y.npz")["output"]
    assert expected.sum() > 10
    np.testing.assert_array_equal(np.swapaxes(got, 0, 1), expected)  # written back as tbf


def test_singleton_output_dimensions_are_accepted(capsys, tmp_path):
    """Rockpool writes Output (1, 1, 1) for a (1,) population."""
    g = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([2])), "fc": nir.Linear(np.array([[0.75, 0.5]])),
               "lif": nir.LIF(tau=np.full(1, 2e-3), r=np.full(1, 2.0), v_leak=np.zeros(1),
                              v_threshold=np.full(1, 0.5)),
               "output": nir.Output(np.array([1, 1, 1]))},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")], type_check=False,
        metadata={"dt": 1e-3})
    nir.write(tmp_path / "r.nir", g)
    save_spikes({"input": x_btf(n=2)}, tmp_path / "x.npz")
    code, _, err = cli(capsys, "simulate", str(tmp_path / "r.nir"), "--input",
                       str(tmp_path / "x.npz"), "-o", str(tmp_path / "y.npz"))
    assert code == 0, err
    assert "Output 'output': shape (1, 1, 1) read as (1,)" in err
    assert load_spikes(tmp_path / "y.npz")["output"].shape == (3, 40, 1)


def test_layout_tbf_reads_time_first_and_warns_when_the_shape_suggests_it(capsys, tmp_path):
    g = import_graph(norse_like(), "norse")[0]
    g.metadata.pop("interop.layout")  # neurocompile's own layout
    g.metadata.pop("interop.profile")
    save_graph(g, tmp_path / "g.nir")
    x = x_btf(batch=4, steps=60)
    save_spikes({"input": np.swapaxes(x, 0, 1)}, tmp_path / "t.npz")
    code, _, err = cli(capsys, "simulate", str(tmp_path / "g.nir"), "--input",
                       str(tmp_path / "t.npz"), "--json", str(tmp_path / "a.json"))
    assert code == 0 and "pass --layout tbf" in err  # 60 samples of 4 steps: looks swapped
    assert json.loads((tmp_path / "a.json").read_text())["batch"] == 60
    code, _, err = cli(capsys, "simulate", str(tmp_path / "g.nir"), "--input",
                       str(tmp_path / "t.npz"), "--layout", "tbf", "--json",
                       str(tmp_path / "b.json"))
    assert code == 0 and "--layout" not in err
    summary = json.loads((tmp_path / "b.json").read_text())
    ref = simulate(g, {"input": x})
    assert summary["batch"] == 4 and summary["totals"]["spikes"] == ref.summary()["totals"]["spikes"]


@pytest.mark.parametrize("command", ["quantize", "compare", "energy"])
def test_dt_is_taken_by_every_command_that_interprets_a_graph(capsys, tmp_path, command):
    g = import_graph(norse_like(), "norse")[0]
    for key in ("dt", "interop.profile", "interop.layout", "interop.conventions"):
        g.metadata.pop(key)  # a file without stored dt, at 1 ms as the profile made it
    path = save_graph(g, tmp_path / "g.nir")
    save_spikes({"input": x_btf()}, tmp_path / "x.npz")
    if command == "quantize":
        args = ["quantize", str(path), "--scheme", "loihi", "--dt", "1e-3", "-o",
                str(tmp_path / "q.nir")]
    elif command == "compare":
        args = ["compare", str(path), str(path), "--input", str(tmp_path / "x.npz"), "--dt",
                "1e-3", "--json", str(tmp_path / "c.json")]
    else:
        args = ["energy", str(path), "--input", str(tmp_path / "x.npz"), "--dt", "1e-3",
                "--json", str(tmp_path / "e.json")]
    code, _, err = cli(capsys, *args)
    assert code == 0, err
    assert "using dt = 0.001" not in err  # the fallback warning: dt was given
    if command == "energy":
        assert json.loads((tmp_path / "e.json").read_text())["run"]["dt"] == 1e-3
    code, _, err = cli(capsys, *[a for a in args if a not in ("--dt", "1e-3")])
    assert code == 0 and "stores no time step" in err


def test_energy_records_the_dt_of_the_artifact(capsys, tmp_path):
    g = import_graph(norse_like(), "norse")[0]
    path = save_graph(g, tmp_path / "g.nir")
    save_spikes({"input": x_btf()}, tmp_path / "x.npz")
    code, _, err = cli(capsys, "compile", str(path), "--target", "reference", "--dt", "5e-4",
                       "-o", str(tmp_path / "art"))
    assert code == 0, err
    code, _, err = cli(capsys, "energy", str(tmp_path / "art"), "--input",
                       str(tmp_path / "x.npz"), "--json", str(tmp_path / "e.json"))
    assert code == 0, err
    assert json.loads((tmp_path / "e.json").read_text())["run"]["dt"] == 5e-4


def test_sinabs_time_axis_without_the_profile_is_refused_naming_it(capsys, tmp_path):
    g = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([60, 2])), "fc": nir.Affine(np.ones((1, 2)),
                                                                       np.zeros(1)),
               "if": nir.IF(r=np.ones(1), v_threshold=np.ones(1)),
               "output": nir.Output(np.array([60, 1]))},
        edges=[("input", "fc"), ("fc", "if"), ("if", "output")], type_check=False)
    nir.write(tmp_path / "s.nir", g)
    save_spikes({"input": x_btf(n=2)}, tmp_path / "x.npz")
    code, _, err = cli(capsys, "simulate", str(tmp_path / "s.nir"), "--input",
                       str(tmp_path / "x.npz"))
    assert code == 2 and err.count("\n") == 1 and "pass --from sinabs" in err
    code, _, err = cli(capsys, "simulate", str(tmp_path / "s.nir"), "--input",
                       str(tmp_path / "x.npz"), "--from", "sinabs")
    assert code == 0, err
