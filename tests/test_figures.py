"""Figures quoted in README.md and docs/*.md equal the JSON they come from (scripts/figures.py
rewrites them; this fails when one was typed by hand or went stale)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("figures", REPO / "scripts" / "figures.py")
figures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(figures)


@pytest.mark.parametrize("path", figures.documents(), ids=lambda p: p.name)
def test_every_quoted_figure_equals_its_json(path):
    _, changes = figures.rewrite(path.read_text())
    assert not changes, (f"{path.name}: figures differ from their JSON (run python "
                         f"scripts/figures.py): {changes}")


@pytest.mark.parametrize("key", ["pipeline.accuracy.float", "pipeline.accuracy.pruned",
                                 "pipeline.accuracy.quantized",
                                 "pipeline.nonzero_parameters.pruned", "pipeline.wall_s"])
def test_the_headline_figures_are_marked(key):
    for doc in ("README.md", "docs/benchmarks.md"):
        keys = [m["key"] for m in figures.MARK.finditer((REPO / doc).read_text())]
        if doc == "docs/benchmarks.md" and key == "pipeline.nonzero_parameters.pruned":
            continue
        assert key in keys, f"{doc} quotes {key} without a marker"


def test_a_stale_figure_is_found_and_rewritten(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"acc": {"x": 0.93611}, "n": [5, 569],
                                                   "e": 1.19e-07, "t": 30.9}))
    text = ("accuracy <!-- fig:run.acc.x -->0.947<!-- /fig -->, "
            "<!-- fig:run.n.1 -->575<!-- /fig --> non-zero, "
            "<!-- fig:run.e fmt=si:J -->121 nJ<!-- /fig -->, "
            "<!-- fig:run.t fmt=.0f -->31<!-- /fig --> s")
    new, changes = figures.rewrite(text, tmp_path)
    assert [c[0] for c in changes] == ["run.acc.x", "run.n.1", "run.e"]
    assert new == ("accuracy <!-- fig:run.acc.x -->0.936<!-- /fig -->, "
                   "<!-- fig:run.n.1 -->569<!-- /fig --> non-zero, "
                   "<!-- fig:run.e fmt=si:J -->119 nJ<!-- /fig -->, "
                   "<!-- fig:run.t fmt=.0f -->31<!-- /fig --> s")
    assert figures.rewrite(new, tmp_path)[1] == []


@pytest.mark.parametrize("key, message", [("nope.x", "no such results file"),
                                          ("run.acc.y", "has no run.acc.y"),
                                          ("run.n.7", "not an index")])
def test_a_marker_naming_nothing_is_an_error(tmp_path, key, message):
    (tmp_path / "run.json").write_text(json.dumps({"acc": {"x": 1.0}, "n": [1]}))
    with pytest.raises(figures.FigureError, match=message):
        figures.rewrite(f"<!-- fig:{key} -->1<!-- /fig -->", tmp_path)


def test_si_format():
    assert figures.render(2.5018874999999997e-06, "si:J") == "2.5 uJ"
    assert figures.render(9.647e-08, "si:J") == "96.5 nJ"
    assert figures.render(3.0636e-09, "si:J") == "3.06 nJ"
    assert figures.render(569, None) == "569" and figures.render(0.93611, None) == "0.936"
