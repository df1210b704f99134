"""Energy report: built as a JSON-ready dict with stable keys, then rendered (table, Markdown)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nir

from neurocompile.energy.counts import count_activity
from neurocompile.energy.model import evaluate_hardware
from neurocompile.ir.graph import predecessors
from neurocompile.ir.io import write_text
from neurocompile.semantics import loihi
from neurocompile.targets.base import RunResult
from neurocompile.targets.hardware import PROVENANCE, load_hardware, profiles, term_keys

SCHEMA = "neurocompile.energy/2"
DEFAULT_HARDWARE = ("loihi", "loihi2", "truenorth", "spinnaker2", "snn-cmos45", "cmos45")

DEFINITIONS = {
    "per_inference": "run totals divided by the number of samples (batch)",
    "spikes": "non-zero outputs of spiking nodes (input spikes reported apart as input_spikes)",
    "neuron_spikes": "spikes of neuron nodes (what a neuron's soma emits; inputs excluded)",
    "synaptic_ops": "effective accumulates: each non-zero input x its non-zero fan-out, "
                    "every step (bias not counted)",
    "neuron_updates": "neurons x steps of neuron nodes",
    "active_neuron_updates": "updates in which the neuron received input, carried state (non-zero "
                             "current after the step, non-zero membrane before or after it) or "
                             "spiked",
    "inactive_neuron_updates": "neuron_updates - active_neuron_updates: neurons at rest",
    "dense_macs_per_step": "MACs of one dense pass: every connection, zero weights and inputs "
                           "included",
    "dense_macs": "dense_macs_per_step x steps: the same network evaluated densely every step",
    "ann_macs": "MACs of the equivalent ANN: one dense pass per inference",
    "spike_messages": "spikes of nodes that feed other nodes (one routed message per spike)",
    "messages": "per hardware: one message per spike per destination core (core placement: "
                "layers on consecutive cores in data-flow order)",
    "messages_within_tile": "per hardware: messages whose source and destination cores share a "
                            "tile",
    "hops_east_west": "per hardware: east-west tile hops of the messages between tiles",
    "hops_north_south": "per hardware: north-south tile hops of the messages between tiles",
    "activation_sparsity": "1 - spikes / (neurons x steps x samples), over spiking neuron nodes",
    "connection_sparsity": "zero weights / all weights, over Affine, Linear and Conv nodes",
    "energy": "sum over the nominal profile's model terms of count per inference x energy per op",
    "energy_range": "[min, max] of the energy over all of a hardware's profiles (sources that "
                    "disagree); equal ends where one source is all there is",
    "provenance": "what kind of figure a per-op energy is: " + "; ".join(
        f"{k}: {v}" for k, v in PROVENANCE.items()),
}


def build_report(graph: nir.NIRGraph, result: RunResult,
                 hardware: tuple[str, ...] | list[str] = DEFAULT_HARDWARE,
                 mapping: dict[str, Any] | None = None, source: str | None = None,
                 weight_bits: int | dict[str, int] | None = None) -> dict[str, Any]:
    """Counts, energy, latency and resources of `result` (a run of `graph`) on each hardware.

    mapping: an optional resource map from a compiler (per-core info); it is summarised for the
    hardware named by its "hardware" key, or the hardware of the target named by "target".
    weight_bits: default, each synapse's own width in a Loihi-quantized graph.
    """
    activity = count_activity(graph, result)
    preds = predecessors(graph)
    if weight_bits is None and loihi.is_quantized(graph):
        weight_bits = {n: s.bits for n, s in loihi.read_graph(graph).synapses.items()}
    mapped_hw = None
    if mapping is not None:
        mapped_hw = _mapped_hardware(mapping)
    per_hw = {}
    for name in hardware:
        hw = load_hardware(name)
        per_hw[hw["name"]] = evaluate_hardware(activity, hw, preds,
                                               mapping if hw["name"] == mapped_hw else None,
                                               weight_bits if hw["name"].startswith("loihi")
                                               else None)
    return {
        "schema": SCHEMA,
        "source": source,
        "run": {"target": result.target, "steps": activity["steps"], "batch": activity["batch"],
                "dt": graph.metadata.get("dt") if hasattr(graph, "metadata") else None},
        "definitions": DEFINITIONS,
        "totals": activity["totals"],
        "nodes": activity["nodes"],
        "hardware": per_hw,
    }


def _mapped_hardware(mapping: Any) -> str:
    """The hardware a resource map describes: its "hardware" key, else its target's."""
    if isinstance(mapping, dict) and mapping.get("hardware"):
        return str(mapping["hardware"])
    if isinstance(mapping, dict) and mapping.get("target"):
        from neurocompile.targets import target_class

        hw = target_class(str(mapping["target"])).hardware
        if hw:
            return hw
    return "loihi2"


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return obj


def to_json(report: dict[str, Any]) -> str:
    """The report as indented JSON (keys in the report's own, stable order)."""
    return json.dumps(_jsonable(report), indent=2)


def save_report(report: dict[str, Any], path: str | Path) -> Path:
    """Write the JSON report atomically."""
    path = Path(path)
    write_text(path, to_json(report) + "\n")
    return path


def fmt_energy(j: float | None) -> str:
    """Joules with an SI prefix (pJ .. J); 'n/a' for None."""
    return _si(j, "J", ((1e-12, "p"), (1e-9, "n"), (1e-6, "u"), (1e-3, "m")))


def fmt_time(s: float | None) -> str:
    """Seconds with an SI prefix; 'n/a' for None."""
    return _si(s, "s", ((1e-9, "n"), (1e-6, "u"), (1e-3, "m")))


def _si(value: float | None, unit: str, prefixes: tuple[tuple[float, str], ...]) -> str:
    """value in the smallest listed prefix that keeps it below 1000, 3 significant digits."""
    if value is None:
        return "n/a"
    for scale, prefix in prefixes:
        if abs(value) < scale * 1000:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def _num(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:,.0f}" if float(x).is_integer() or abs(x) >= 100 else f"{x:,.2f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def summary_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(quantity, value) rows of the per-inference totals."""
    t, p = report["totals"], report["totals"]["per_inference"]
    return [("spikes", _num(p["spikes"])), ("input spikes", _num(p["input_spikes"])),
            ("synaptic ops (effective ACs)", _num(p["synaptic_ops"])),
            ("neuron updates", _num(p["neuron_updates"])),
            ("  active", _num(p["active_neuron_updates"])
             + ("" if t.get("active_counted", True) else " (not recorded: all counted active)")),
            ("  inactive", _num(p["inactive_neuron_updates"])),
            ("dense MACs per step", _num(p["dense_macs_per_step"])),
            ("dense MACs (x steps)", _num(p["dense_macs"])),
            ("activation sparsity", _pct(t["activation_sparsity"])),
            ("connection sparsity", _pct(t["connection_sparsity"]))]


def fmt_range(e: dict[str, Any]) -> str:
    """The energy range of one hardware as 'low - high' ('n/a' without energy)."""
    r = e.get("energy_range_j")
    if not r:
        return "n/a"
    return fmt_energy(r[0]) if r[0] == r[1] else f"{fmt_energy(r[0])} - {fmt_energy(r[1])}"


def hardware_rows(report: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """(hardware, energy, range, latency, cores, main term) rows; energy is the nominal
    profile's, range spans all profiles."""
    rows = []
    for name, hw in report["hardware"].items():
        e = hw["energy"]
        lat = hw["latency"].get("latency_per_inference_s") if hw["latency"]["available"] else None
        cores = hw["resources"].get("cores")
        if "resources_mapped" in hw:
            cores = hw["resources_mapped"]["cores"]
        ops = {k: v["energy_j"] for k, v in e["by_op"].items()}
        main = max(ops, key=ops.get) if ops and any(ops.values()) else "-"
        rows.append((hw.get("label", name), fmt_energy(e["energy_per_inference_j"]), fmt_range(e),
                     fmt_time(lat), "n/a" if cores is None else str(cores), main))
    return rows


def node_rows(report: dict[str, Any]) -> list[list[str]]:
    """Per-node counts and energy (one column per hardware) rows."""
    hw_names = list(report["hardware"])
    rows = []
    for name, n in report["nodes"].items():
        p = n["per_inference"]
        energies = [report["hardware"][h]["energy"]["nodes"].get(name, {}).get("energy_j")
                    for h in hw_names]
        if not (p["spikes"] or p["synaptic_ops"] or p["neuron_updates"] or any(energies)):
            continue
        rows.append([name, n["type"], _num(p["spikes"]), _num(p["synaptic_ops"]),
                     _num(p["neuron_updates"]), _num(p["dense_macs_per_step"]),
                     _pct(n.get("activation_sparsity")) if "activation_sparsity" in n else "",
                     _pct(n.get("connection_sparsity")) if "connection_sparsity" in n else ""]
                    + [fmt_energy(e) if e is not None else "-" for e in energies])
    return rows


NODE_COLUMNS = ["node", "type", "spikes", "synaptic ops", "neuron updates", "dense MACs/step",
                "act. sparsity", "conn. sparsity"]


def render_markdown(report: dict[str, Any], plots: list[str] | None = None) -> str:
    """The report as Markdown: summary, per-hardware totals, per-node breakdown, sources."""
    r = report["run"]
    lines = ["# Energy report", ""]
    if report.get("source"):
        lines.append(f"Model: `{report['source']}`  ")
    lines += [f"Run: {r['target']} simulator, {r['batch']} sample(s) x {r['steps']} steps"
              + (f", dt = {r['dt']} s" if r.get("dt") else "") + ". All figures are per inference "
              "(one sample).", "", "## Activity", "", "| quantity | per inference |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in summary_rows(report)]
    lines += ["", "## Energy, latency and cores per hardware", "",
              "| hardware | energy / inference (nominal) | range over profiles | latency / inference "
              "| cores | largest term |",
              "|---|---:|---:|---:|---:|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in hardware_rows(report)]
    hw_names = list(report["hardware"])
    lines += ["", "## Per node (nominal profiles)", "",
              "| " + " | ".join(NODE_COLUMNS + [f"E {report['hardware'][h].get('label', h)}"
                                                for h in hw_names]) + " |",
              "|" + "---|" * 2 + "---:|" * (len(NODE_COLUMNS) - 2 + len(hw_names))]
    lines += ["| " + " | ".join(row) + " |" for row in node_rows(report)]
    lines += ["", "## Energy model and sources", "",
              "Each hardware's energy is given under each of its profiles (sources that "
              "disagree); the first, nominal, is the estimate above and all of them span the "
              "range. Each per-op figure carries its source and provenance.", ""]
    for name, hw in report["hardware"].items():
        e = hw["energy"]
        lines.append(f"**{hw.get('label', name)}**: {hw['description']}.  ")
        if hw.get("figures_from"):
            lines.append(f"Every energy and time is a {hw['figures_from']} figure "
                         "(provenance: assumed): no per-op energy of this chip is published.  ")
        if not e["available"]:
            lines.append("Energy unavailable: " + hw["note"])
        for pname, prof in e.get("profiles", {}).items():
            tag = " (nominal)" if pname == e["nominal_profile"] else ""
            lines.append(f"- profile **{pname}**{tag}: {fmt_energy(prof['energy_per_inference_j'])}"
                         f" per inference; {prof['description']}")
            for k, op in prof["by_op"].items():
                lines.append(f"  - {k}: {_num(op['count'])} x {fmt_energy(op['energy_per_op_j'])}"
                             f" = {fmt_energy(op['energy_j'])} [{op['provenance']}] "
                             f"({op['source']})")
        if e.get("routing"):
            lines.append(f"- routing: {e['routing']['method']}")
        for note in e.get("notes", []):
            lines.append(f"- note: {note}")
        if hw["latency"]["available"]:
            lines.append(f"- latency: {hw['latency']['model']} "
                         f"({hw['latency'].get('source', '')})")
        for note in hw["resources"].get("notes", []):
            lines.append(f"- resources: {note}")
        if "resources_mapped" in hw:
            m = hw["resources_mapped"]
            lines.append(f"- resource map: {m['cores']} cores"
                         + (f"; violations: {'; '.join(m['violations'])}" if m["violations"] else ""))
        lines.append("")
    if plots:
        lines += ["## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots] + [""]
    lines += ["## Definitions", ""] + [f"- **{k}**: {v}" for k, v in report["definitions"].items()]
    return "\n".join(lines) + "\n"


def _table(title: str, columns: list[str], rows: list[list[str]], text: tuple[str, ...]):
    """A rich Table that fits 80 columns: text wraps, numbers are never narrower than their
    widest value."""
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for i, col in enumerate(columns):
        if col in text:
            t.add_column(col, overflow="fold")
        else:
            width = max([len(str(r[i])) for r in rows] + [1])
            t.add_column(col, justify="right", overflow="fold", min_width=width)
    for row in rows:
        t.add_row(*row)
    return t


def render_tables(report: dict[str, Any], wide: bool = False) -> list[Any]:
    """rich Tables (activity, per hardware, per node) for the terminal. The per-node table
    shows the first hardware's energy only unless `wide`."""
    r = report["run"]
    t1 = _table(f"activity per inference ({r['batch']} sample(s) x {r['steps']} steps)",
                ["quantity", "value"], [list(row) for row in summary_rows(report)],
                ("quantity",))
    t2 = _table("energy (nominal, range over profiles), latency, cores per inference",
                ["hardware", "energy", "range", "latency", "cores", "largest term"],
                [list(row) for row in hardware_rows(report)], ("hardware", "largest term"))
    hw_names = [hw.get("label", h) for h, hw in report["hardware"].items()]
    shown = hw_names if wide else hw_names[:1]
    rows = [row[:5] + row[len(NODE_COLUMNS):len(NODE_COLUMNS) + len(shown)]
            for row in node_rows(report)]
    t3 = _table("per node, per inference" + ("" if wide else " (energy on every hardware: -v; "
                                                         "sparsities: --json)"),
                NODE_COLUMNS[:5] + shown, rows, ("node", "type"))
    return [t1, t2, t3]


def _fmt_quantity(value: Any, unit: str) -> str:
    if isinstance(value, (int, float)) and unit.startswith("J"):
        return fmt_energy(float(value))
    if isinstance(value, (int, float)) and unit.startswith("s "):
        return fmt_time(float(value))
    if isinstance(value, (int, float)) and unit.startswith("W"):
        return f"{value * 1e3:.4g} mW"
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def constants_markdown(names: tuple[str, ...] | list[str] = DEFAULT_HARDWARE) -> str:
    """Every number of the named descriptions (key, value, provenance, source) and their energy
    profiles, as Markdown: the tables of docs/energy.md, generated so that they cannot drift."""
    out: list[str] = []
    for name in names:
        hw = load_hardware(name)
        out += [f"#### `{hw['name']}`", "", "| key | value | provenance | source |",
                "|---|---:|---|---|"]
        for section, table in hw.items():
            if not isinstance(table, dict) or section in ("model", "profiles"):
                continue
            for key, q in table.items():
                if isinstance(q, dict) and "value" in q:
                    unit = q.get("unit", "")
                    out.append(f"| `{section}.{key}` | {_fmt_quantity(q['value'], unit)} ({unit}) "
                               f"| {q['provenance']} | {q['source'].replace('|', '/')} |")
        out += ["", "Profiles:", ""]
        nominal = hw.get("model", {}).get("nominal")
        for pname, prof in profiles(hw).items():
            terms = " + ".join(f"`{c}` x " + " + ".join(f"`{k}`" for k in term_keys(r))
                               for c, r in prof["model"].items())
            out.append(f"* `{pname}`{' (nominal)' if pname == nominal else ''}: "
                       f"{prof.get('description', '')}. {terms}.")
        out.append("")
    return "\n".join(out)


__all__ = ["DEFAULT_HARDWARE", "DEFINITIONS", "SCHEMA", "build_report", "constants_markdown", "fmt_energy",
           "fmt_range", "fmt_time", "render_markdown", "render_tables", "save_report", "to_json"]
