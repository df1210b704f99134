"""`neurocompile energy` end to end on the small sample network, and the plots."""

from __future__ import annotations

import json

import pytest

from neurocompile.cli.main import main
from neurocompile.energy.sample import write_sample


@pytest.fixture
def sample(tmp_path):
    return write_sample(tmp_path / "model")


def test_cli_writes_json_and_markdown(sample, tmp_path, capsys):
    graph, data = sample
    out = tmp_path / "r.json"
    main(["energy", str(graph), "--input", str(data), "--targets", "loihi,cmos45",
          "--format", "md", "--json", str(out)])
    md = capsys.readouterr().out
    rep = json.loads(out.read_text())
    assert set(rep["hardware"]) == {"loihi", "cmos45"}
    assert rep["run"]["batch"] == 4 and rep["run"]["steps"] == 25
    assert rep["totals"]["per_inference"]["synaptic_ops"] > 0
    assert "# Energy report" in md and "| loihi |" in md


def test_cli_accepts_a_compiled_artifact_and_checks_it(sample, tmp_path, capsys):
    from neurocompile.ir.io import load_graph
    from neurocompile.targets import get_target
    from neurocompile.targets.artifact import write_artifact

    graph, data = sample
    art = write_artifact(get_target("lava").compile(load_graph(graph)), tmp_path / "artifact")
    main(["energy", str(art), "--input", str(data), "--targets", "loihi2", "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert rep["hardware"]["loihi2"]["resources_mapped"]["cores"] >= 1
    manifest = json.loads((art / "manifest.json").read_text())
    manifest["files"] = {"../../etc/passwd": {"sha256": "0" * 64}, "graph.nir":
                         manifest["files"]["graph.nir"]}
    (art / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SystemExit) as exc:
        main(["energy", str(art), "--input", str(data)])
    assert exc.value.code == 2
    assert "files must be plain names inside the artifact" in capsys.readouterr().err


def test_cli_errors_are_one_line(sample, tmp_path, capsys):
    graph, data = sample
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit) as exc:
        main(["energy", str(empty), "--input", str(data)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "no manifest.json; not a compiled artifact" in err and err.count("\n") == 1
    with pytest.raises(SystemExit):
        main(["energy", str(graph), "--input", str(data), "--targets", "nosuchchip"])
    assert "unknown hardware 'nosuchchip'" in capsys.readouterr().err


@pytest.mark.slow
def test_plots_are_png(sample, tmp_path):
    pytest.importorskip("matplotlib")
    graph, data = sample
    main(["energy", str(graph), "--input", str(data), "-o", str(tmp_path / "plots"), "-q"])
    assert json.loads((tmp_path / "plots" / "report.json").read_text())["hardware"]
    for name in ("energy_breakdown.png", "spikes_per_layer.png"):
        assert (tmp_path / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "plots" / "report.md").read_text()
    assert "![energy_breakdown](energy_breakdown.png)" in md


def test_cli_profile_selection_and_ranges(sample, tmp_path, capsys):
    graph, data = sample
    main(["energy", str(graph), "--input", str(data), "--targets", "loihi,loihi:sanafe,loihi2",
          "--json"])
    rep = json.loads(capsys.readouterr().out)
    nominal, alt = rep["hardware"]["loihi"]["energy"], rep["hardware"]["loihi:sanafe"]["energy"]
    assert nominal["nominal_profile"] == "davies2018" and alt["nominal_profile"] == "sanafe"
    assert alt["energy_per_inference_j"] == nominal["profiles"]["sanafe"]["energy_per_inference_j"]
    assert alt["energy_range_j"] == nominal["energy_range_j"]
    assert rep["hardware"]["loihi2"]["label"] == "loihi2 (Loihi 1 figures)"
    main(["energy", str(graph), "--input", str(data), "--targets", "loihi2"])
    out = capsys.readouterr().out  # the table may wrap the label
    assert "loihi2 (Loihi 1" in out and "figures)" in out
