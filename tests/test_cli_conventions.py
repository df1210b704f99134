"""One CLI convention over every command: -o/--out for outputs, --json [FILE|-], -q/-v,
one-line errors with exit 2, tables that fit 80 columns, missing extras named."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import run_main

from neurocompile.cli.main import COMMANDS, cli
from neurocompile.demo import demo_graph, demo_input
from neurocompile.ir.io import save_graph, save_spikes

REPORTS = ("inspect", "simulate", "compare", "targets", "demo", "compile", "lava-check",
           "prune", "quantize", "energy", "pipeline", "train", "doctor")
GROUPS = {"lava": ("setup",)}  # command groups: their subcommands follow the conventions


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    g = save_graph(demo_graph(), d / "g.nir")
    x = save_spikes({"input": demo_input(batch=2, steps=10)}, d / "x.npz")
    return d, g, x


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help_and_the_shared_options(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "--output" not in text  # outputs are -o/--out everywhere
    if "--out" in text:
        assert "-o, --out" in text
    if name in REPORTS:
        assert "--json [FILE|-]" in text and "-q, --quiet" in text and "-v, --verbose" in text
    for sub in GROUPS.get(name, ()):
        result = CliRunner().invoke(cli, [name, sub, "--help"])
        assert result.exit_code == 0, result.output
        assert "--json [FILE|-]" in result.output and "-q, --quiet" in result.output


def _run(args, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    return run_main(args, capsys)


def _commands(d, g, x):
    return {
        "inspect": ["inspect", str(g)],
        "simulate": ["simulate", str(g), "--input", str(x)],
        "compare": ["compare", str(g), str(g), "--input", str(x)],
        "targets": ["targets"],
        "prune": ["prune", str(g), "--sparsity", "0.5", "-o", str(d / "p.nir")],
        "quantize": ["quantize", str(g), "--scheme", "loihi", "-o", str(d / "q.nir")],
        "compile": ["compile", str(g), "-o", str(d / "art")],
        "energy": ["energy", str(g), "--input", str(x)],
        "demo": ["demo", "-o", str(d / "demo")],
        "doctor": ["doctor"],
        "lava-check": ["lava-check"],
    }


@pytest.mark.parametrize("name", ["inspect", "simulate", "compare", "targets", "prune",
                                  "quantize", "compile", "energy", "demo", "doctor",
                                  "lava-check"])
def test_json_dash_prints_only_json_and_tables_fit_80_columns(files, capsys, monkeypatch,
                                                               name):
    from conftest import lava_python

    d, g, x = files
    if name == "lava-check" and lava_python() is None:
        pytest.skip("no Lava environment")
    args = _commands(d, g, x)[name]
    code, out, err = _run(args + ["--json", "-"], capsys, monkeypatch)
    assert code == 0, err
    json.loads(out)  # nothing but the report on stdout
    code, out, err = _run(args, capsys, monkeypatch)
    assert code == 0, err
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert not any("…" in line for line in lines), "a header or value was truncated"
    code, out, _ = _run(args + ["-q"], capsys, monkeypatch)
    assert code == 0 and out.strip() == ""
    code, _, _ = _run(args + ["--json", str(d / f"{name}.json")], capsys, monkeypatch)
    assert code == 0 and json.loads((d / f"{name}.json").read_text())


@pytest.mark.parametrize("args, message", [
    (["inspect", "nope.nir"], "error: nope.nir: no such file"),
    (["simulate", "nope.nir"], "error: neurocompile simulate: Missing option '--input'"),
    (["prune", "g.nir", "--sparsity", "x", "-o", "p.nir"], "error: neurocompile prune:"),
    (["quantize"], "error: neurocompile quantize: Missing argument"),
    (["frobnicate"], "error: neurocompile: No such command 'frobnicate'"),
    (["train", "--epochs", "0", "-o", "run"], "error: "),
    (["pipeline", "missing.toml"], "error: missing.toml: no such config file"),
    (["doctor", "--target", "nope"], "error: unknown target 'nope'"),
    (["lava", "setup", "--python", "/nonexistent/python3.10"],
     "error: /nonexistent/python3.10 is not a working Python 3.10"),
    (["lava", "frobnicate"], "error: neurocompile lava: No such command 'frobnicate'"),
])
def test_user_errors_are_one_line_with_exit_2(files, capsys, monkeypatch, args, message):
    d, _, _ = files
    monkeypatch.chdir(d)
    code, out, err = _run(args, capsys, monkeypatch)
    assert code == 2
    assert err.startswith(message) and err.count("\n") == 1, err


def test_a_missing_extra_is_named(files, capsys, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError("No module named 'torch'", name="torch")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    for mod in [m for m in list(__import__("sys").modules) if m.startswith("neurocompile.train")
                or m.startswith("neurocompile.models")]:
        monkeypatch.delitem(__import__("sys").modules, mod)
    code, _, err = _run(["train", "--epochs", "1", "-o", str(files[0] / "run")], capsys,
                        monkeypatch)
    assert code == 2
    assert err.strip() == ("error: this command needs torch, which is not installed: "
                           "pip install 'neurocompile[torch]'")


def test_an_internal_error_says_so(capsys, monkeypatch):
    import neurocompile.cli.graph_cmds as graph_cmds

    def boom(*a, **k):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(graph_cmds, "available_targets", boom, raising=False)
    monkeypatch.setattr("neurocompile.targets.available_targets", boom)
    code, _, err = _run(["targets"], capsys, monkeypatch)
    assert code == 70 and err.startswith("internal error: ZeroDivisionError: oops")
    assert "Traceback" not in err
    np.testing.assert_equal(err.count("\n"), 1)


def test_doctor_reports_a_missing_backend_without_failing(capsys, monkeypatch):
    """A backend whose extra is not installed is `missing` (naming it), not an error."""
    from neurocompile.targets import target_class

    cls = target_class("onnx")
    monkeypatch.setattr(cls, "missing_requirements",
                        classmethod(lambda c: ["onnxruntime (pip install 'neurocompile[onnx]')"]))
    code, out, err = _run(["doctor", "--target", "reference", "--target", "onnx", "--json", "-"],
                          capsys, monkeypatch)
    assert code == 0, err
    rows = {r["target"]: r for r in json.loads(out)["targets"]}
    assert rows["reference"]["status"] == "ok"
    assert rows["onnx"]["status"] == "missing" and "neurocompile[onnx]" in rows["onnx"]["detail"]


def test_doctor_exits_1_when_an_installed_backend_differs(capsys, monkeypatch):
    from neurocompile.targets import target_class

    cls = target_class("torch")
    real = cls.run

    def wrong(self, artifact, inputs, steps=None):
        result = real(self, artifact, inputs, steps)
        result.outputs = {k: v + 1 for k, v in result.outputs.items()}
        return result

    monkeypatch.setattr(cls, "run", wrong)
    code, out, err = _run(["doctor", "--target", "torch"], capsys, monkeypatch)
    assert code == 1 and "differs" in out
    assert err.strip() == "error: backends not working: torch (details: doctor -v)"
