"""Hardware descriptions: every number carries a source; limits the Lava target relies on."""

from __future__ import annotations

import sys

import pytest

from neurocompile.errors import UnsupportedError
from neurocompile.targets.hardware import (
    HARDWARE_DIR,
    HardwareSpecError,
    hw_get,
    hw_source,
    list_hardware,
    load_hardware,
    validate_hardware,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

EXPECTED = {"loihi", "loihi2", "truenorth", "spinnaker2", "cmos45"}


def _numbers_without_source(obj, path=""):
    """Independent walk: every int/float must sit in a table that has a non-empty 'source'."""
    bad = []
    if isinstance(obj, dict):
        has_source = isinstance(obj.get("source"), str) and obj["source"].strip()
        for k, v in obj.items():
            p = f"{path}.{k}" if path else k
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                if not (k == "value" and has_source):
                    bad.append(p)
            elif isinstance(v, list) and k == "value" and has_source:
                continue
            else:
                bad += _numbers_without_source(v, p)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                bad.append(f"{path}[{i}]")
            else:
                bad += _numbers_without_source(v, f"{path}[{i}]")
    return bad


def test_bundled_descriptions_listed():
    assert EXPECTED <= set(list_hardware())


@pytest.mark.parametrize("path", sorted(HARDWARE_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_every_number_has_a_source(path):
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    assert _numbers_without_source(raw) == []
    spec = load_hardware(path.stem)  # the loader's own check agrees
    assert spec["name"] == path.stem
    for count_key, energy_key in spec.get("model", {}).items():
        if count_key == "latency":
            assert energy_key in ("fixed", "per_op")
            continue
        assert hw_get(spec, energy_key) > 0, f"{path.stem}: {energy_key}"
        assert hw_source(spec, energy_key)


def test_loihi2_core_limits():
    hw = load_hardware("loihi2")
    assert hw_get(hw, "chip.cores") == 128
    assert hw_get(hw, "core.neurons") == 8192
    assert hw_get(hw, "core.synaptic_memory_bits") == 192 * 1024 * 8
    assert hw_get(hw, "precision.weight_bits_min") == 1
    assert hw_get(hw, "precision.weight_bits_max") == 8
    assert hw_get(hw, "precision.voltage_bits") == 24
    assert "LOIHI 1 FIGURE" in hw_source(hw, "energy.synaptic_op")


def test_published_figures():
    loihi, tn, cm = load_hardware("loihi"), load_hardware("truenorth"), load_hardware("cmos45")
    assert hw_get(loihi, "energy.synaptic_op") == pytest.approx(23.6e-12)
    assert hw_get(loihi, "core.neurons") == 1024
    assert hw_get(loihi, "core.synaptic_memory_bits") == 128 * 1024 * 8
    assert hw_get(tn, "energy.synaptic_op") == pytest.approx(26e-12)
    assert (hw_get(tn, "core.neurons"), hw_get(tn, "core.fan_in_axons")) == (256, 256)
    assert hw_get(cm, "energy.mac_fp32") == pytest.approx(
        hw_get(cm, "energy.mult_fp32") + hw_get(cm, "energy.add_fp32"))


def test_spec_without_source_is_rejected(tmp_path):
    with pytest.raises(HardwareSpecError, match="core.neurons"):
        validate_hardware({"core": {"neurons": {"value": 3}}})
    with pytest.raises(HardwareSpecError, match="bare number"):
        validate_hardware({"core": {"neurons": 3}})
    bad = tmp_path / "bad.toml"
    bad.write_text('[core]\nneurons = { value = 1, source = "" }\n')
    with pytest.raises(HardwareSpecError, match="no source"):
        load_hardware(str(bad))


def test_unknown_hardware_names_the_known_ones():
    with pytest.raises(UnsupportedError, match="loihi2"):
        load_hardware("nosuchchip")
