"""Hardware descriptions: every number carries a source and a provenance; each published constant
equals its source's value; the loader refuses what is missing; profiles are well formed."""

from __future__ import annotations

import sys

import pytest

from neurocompile.errors import UnsupportedError
from neurocompile.targets.hardware import (
    HARDWARE_DIR,
    PROVENANCE,
    HardwareSpecError,
    hw_get,
    hw_provenance,
    hw_source,
    list_hardware,
    load_hardware,
    profiles,
    term_keys,
    validate_hardware,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

EXPECTED = {"loihi", "loihi2", "truenorth", "spinnaker2", "cmos45", "snn-cmos45"}
DAVIES = "Davies et al. 2018, IEEE Micro 38(1), Table 2"
SANAFE = "SANA-FE arch/loihi.yaml (commit 8951ab0)"
MEROLLA = "Merolla et al. 2014, Science 345(6197):668"
HOEPPNER = "Hoeppner et al. 2019, IEEE TCAS-I 66(8)"
HOROWITZ = "Horowitz, ISSCC 2014, Fig. 1.1.9"

# (hardware, key, value, provenance, citation): each figure as its source gives it.
PUBLISHED = [
    # Davies et al. 2018, Table 2 (pre-silicon, 0.75 V).
    ("loihi", "energy.synaptic_op", 23.6e-12, "pre-silicon", DAVIES),
    ("loihi", "energy.synaptic_update", 120e-12, "pre-silicon", DAVIES),
    ("loihi", "energy.neuron_update_active", 81e-12, "pre-silicon", DAVIES),
    ("loihi", "energy.neuron_update_inactive", 52e-12, "pre-silicon", DAVIES),
    ("loihi", "energy.spike_within_tile", 1.7e-12, "pre-silicon", DAVIES),
    ("loihi", "energy.spike_hop_east_west", 3.0e-12, "pre-silicon", DAVIES),
    ("loihi", "energy.spike_hop_north_south", 4.0e-12, "pre-silicon", DAVIES),
    ("loihi", "timing.synaptic_op_time", 3.5e-9, "pre-silicon", DAVIES),
    # SANA-FE's calibrated Loihi model.
    ("loihi", "energy_sanafe.synaptic_op", 35.5e-12, "calibrated", SANAFE),
    ("loihi", "energy_sanafe.neuron_update_active", 72.8e-12, "calibrated", SANAFE),
    ("loihi", "energy_sanafe.neuron_update_inactive", 51.2e-12, "calibrated", SANAFE),
    ("loihi", "energy_sanafe.neuron_access", 51.2e-12, "calibrated", SANAFE),
    ("loihi", "energy_sanafe.neuron_update", 21.6e-12, "calibrated", SANAFE),
    ("loihi", "energy_sanafe.spike_out", 69.3e-12, "calibrated", SANAFE),
    ("loihi", "energy_sanafe.message_out", 111e-12, "calibrated", SANAFE),
    ("loihi", "energy_sanafe.spike_hop_east_west", 3.0e-12, "calibrated", SANAFE),
    ("loihi", "energy_sanafe.spike_hop_north_south", 4.2e-12, "calibrated", SANAFE),
    ("loihi", "core.neurons", 1024, "spec", "Davies et al. 2018"),
    ("loihi", "core.synaptic_memory_bits", 128 * 1024 * 8, "spec", "Davies et al. 2018"),
    # Loihi 2: its own structure; Loihi 1 energies, tagged as assumed.
    ("loihi2", "chip.cores", 128, "spec", "Technology Brief (2021)"),
    ("loihi2", "core.neurons", 8192, "spec", "Loihi 2 Technology Brief"),
    ("loihi2", "core.synaptic_memory_bits", 192 * 1024 * 8, "spec", "192 KB"),
    ("loihi2", "precision.graded_spike_bits", 32, "spec", "32 bits"),
    ("loihi2", "energy.synaptic_op", 23.6e-12, "assumed", "LOIHI 1 FIGURE"),
    ("loihi2", "energy.neuron_update_active", 81e-12, "assumed", "LOIHI 1 FIGURE"),
    ("loihi2", "energy.neuron_update_inactive", 52e-12, "assumed", "LOIHI 1 FIGURE"),
    ("loihi2", "energy_sanafe.synaptic_op", 35.5e-12, "assumed", "LOIHI 1 FIGURE"),
    # TrueNorth: all-in at one operating point.
    ("truenorth", "energy.synaptic_op", 26e-12, "all-in", MEROLLA),
    ("truenorth", "chip.power", 0.072, "silicon", MEROLLA),
    ("truenorth", "core.neurons", 256, "spec", "Merolla et al. 2014"),
    # SpiNNaker 2 prototype, via keras-spiking's tabulation.
    ("spinnaker2", "energy.synaptic_event", 450e-12, "silicon-secondary", HOEPPNER),
    ("spinnaker2", "energy.neuron_update", 2.19e-9, "silicon-secondary", HOEPPNER),
    # 45 nm CMOS (Horowitz 2014).
    ("cmos45", "energy.mult_fp32", 3.7e-12, "estimate", HOROWITZ),
    ("cmos45", "energy.add_fp32", 0.9e-12, "estimate", HOROWITZ),
    ("cmos45", "energy.mac_fp32", 4.6e-12, "derived", HOROWITZ),
    ("cmos45", "energy.sram_read_64b", 10e-12, "estimate", HOROWITZ),
    ("snn-cmos45", "energy.add_fp32", 0.9e-12, "estimate", HOROWITZ),
    ("snn-cmos45", "energy.mac_fp32", 4.6e-12, "derived", HOROWITZ),
]


def _untagged(obj, path=""):
    """Independent walk: every int/float must sit in a table with a source and a provenance."""
    bad = []
    if isinstance(obj, dict):
        tagged = (isinstance(obj.get("source"), str) and obj["source"].strip()
                  and obj.get("provenance") in PROVENANCE)
        for k, v in obj.items():
            p = f"{path}.{k}" if path else k
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                if not (k == "value" and tagged):
                    bad.append(p)
            elif isinstance(v, list) and k == "value" and tagged:
                continue
            else:
                bad += _untagged(v, p)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                bad.append(f"{path}[{i}]")
            else:
                bad += _untagged(v, f"{path}[{i}]")
    return bad


def test_bundled_descriptions_listed():
    assert EXPECTED <= set(list_hardware())


@pytest.mark.parametrize("path", sorted(HARDWARE_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_every_number_has_source_and_provenance(path):
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    assert _untagged(raw) == []
    spec = load_hardware(path.stem)  # the loader's own check agrees
    assert spec["name"] == path.stem
    assert spec["model"]["latency"] in ("fixed", "per_op") if "latency" in spec["model"] else True
    for pname, prof in profiles(spec).items():
        assert prof["description"], f"{path.stem}.{pname}"
        for ref in prof["model"].values():
            for key in term_keys(ref):
                assert hw_get(spec, key) > 0, f"{path.stem}.{pname}: {key}"
                assert hw_source(spec, key) and hw_provenance(spec, key) in PROVENANCE


@pytest.mark.parametrize(("hw", "key", "value", "provenance", "citation"), PUBLISHED,
                         ids=[f"{h}:{k}" for h, k, *_ in PUBLISHED])
def test_published_constant(hw, key, value, provenance, citation):
    spec = load_hardware(hw)
    assert hw_get(spec, key) == pytest.approx(value, rel=1e-12)
    assert hw_provenance(spec, key) == provenance
    assert citation in hw_source(spec, key)


def test_no_figure_cites_davies_table_1_or_the_old_wrong_values():
    for name in ("loihi", "loihi2"):
        spec = load_hardware(name)
        for section in ("energy", "energy_sanafe", "timing"):
            for key, q in spec[section].items():
                assert "Table 1" not in q["source"], f"{name}.{section}.{key}"
        # 21 pJ appears in no source; 52 pJ is the inactive figure, not the active one.
        assert hw_get(spec, "energy.neuron_update_active") != 52e-12
        assert all(q["value"] != 21e-12 for q in spec["energy"].values())
    assert hw_get(load_hardware("truenorth"), "chip.power") != 0.065


def test_loihi2_energy_is_all_loihi1_and_labelled():
    l1, l2 = load_hardware("loihi"), load_hardware("loihi2")
    assert l2["figures_from"] == "Loihi 1"
    for section in ("energy", "energy_sanafe"):
        assert set(l2[section]) == set(l1[section])
        for key, q in l2[section].items():
            assert q["value"] == l1[section][key]["value"]
            assert q["provenance"] == "assumed" and "LOIHI 1 FIGURE" in q["source"]
    assert profiles(l2).keys() == profiles(l1).keys()


def test_profiles_nominal_first_and_selectable():
    spec = load_hardware("loihi")
    assert list(profiles(spec)) == ["davies2018", "sanafe"]
    alt = load_hardware("loihi:sanafe")
    assert alt["name"] == "loihi:sanafe" and list(profiles(alt))[0] == "sanafe"
    with pytest.raises(UnsupportedError, match="no energy profile 'nope'"):
        load_hardware("loihi:nope")


def test_cmos_accumulate_is_used_by_a_model_term():
    """The 0.9 pJ 32-bit float add is what an SNN's synaptic op costs on CMOS."""
    snn = profiles(load_hardware("snn-cmos45"))
    assert snn["compute"]["model"]["synaptic_ops"] == "energy.add_fp32"
    assert term_keys(snn["sram"]["model"]["synaptic_ops"]) == ["energy.add_fp32",
                                                               "energy.sram_read_64b"]
    ann = profiles(load_hardware("cmos45"))
    assert ann["compute"]["model"] == {"ann_macs": "energy.mac_fp32"}


def _q(value, source="a paper, Table 9", provenance="spec"):
    out = {"value": value, "source": source}
    if provenance is not None:
        out["provenance"] = provenance
    return out


def test_spec_without_source_or_provenance_is_rejected(tmp_path):
    with pytest.raises(HardwareSpecError, match="core.neurons: value 3 has no source"):
        validate_hardware({"core": {"neurons": {"value": 3, "provenance": "spec"}}})
    with pytest.raises(HardwareSpecError, match="core.neurons: value 3 has no provenance"):
        validate_hardware({"core": {"neurons": _q(3, provenance=None)}})
    with pytest.raises(HardwareSpecError, match="provenance 'measured'"):
        validate_hardware({"core": {"neurons": _q(3, provenance="measured")}})
    with pytest.raises(HardwareSpecError, match="bare number"):
        validate_hardware({"core": {"neurons": 3}})
    validate_hardware({"core": {"neurons": _q(3)}})  # both present: accepted
    bad = tmp_path / "bad.toml"
    bad.write_text('[core]\nneurons = { value = 1, source = "", provenance = "spec" }\n')
    with pytest.raises(HardwareSpecError, match="no source"):
        load_hardware(str(bad))


def test_profiles_are_checked():
    e = {"op": _q(1e-12, provenance="silicon")}
    ok = {"energy": e, "model": {"nominal": "a"},
          "profiles": {"a": {"description": "x", "model": {"synaptic_ops": "energy.op"}}}}
    validate_hardware(ok)
    with pytest.raises(HardwareSpecError, match="'energy.missing' is not defined"):
        validate_hardware({**ok, "profiles": {"a": {"model": {"synaptic_ops": "energy.missing"}}}})
    with pytest.raises(HardwareSpecError, match="model.nominal: 'b'"):
        validate_hardware({**ok, "model": {"nominal": "b"}})


def test_unknown_hardware_names_the_known_ones():
    with pytest.raises(UnsupportedError, match="loihi2"):
        load_hardware("nosuchchip")


def test_docs_list_every_constant_with_source_and_provenance():
    """docs/energy.md's constant tables are the data files' own (regenerate with
    neurocompile.energy.report.constants_markdown() when a file changes)."""
    from pathlib import Path

    from neurocompile.energy.report import constants_markdown

    doc = (Path(__file__).resolve().parents[1] / "docs" / "energy.md").read_text()
    section = doc.split("<!-- constants:begin -->\n", 1)[1].split("<!-- constants:end -->", 1)[0]
    assert section == constants_markdown()
    for name in EXPECTED:
        for sec in ("energy", "energy_sanafe"):
            for key in load_hardware(name).get(sec, {}):
                assert f"`{sec}.{key}`" in section
