# Two entry points (see README): `make run` and `make test`. Each creates what it needs.
PY311 ?= python3.11
VENV := .venv
LAVA_VENV := .venv-lava
TORCH_PIN := torch==2.13.0

.PHONY: run test lint bench clean venv lava-venv

venv: $(VENV)/.installed
lava-venv: $(LAVA_VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PY311) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	# torch first, pinned: the local CPU wheel; anything looser pulls a multi-GB CUDA build.
	$(VENV)/bin/python -m pip install -q $(TORCH_PIN)
	$(VENV)/bin/python -m pip install -q -e ".[torch,data,plots,dev,norse,onnx,lnp]" $(TORCH_PIN)
	# NeuroBench cross-check: without its heavy audio/vision dependencies, which the metrics do not use.
	$(VENV)/bin/python -m pip install -q --no-deps neurobench==2.3.0 snntorch==1.0.0
	# Interop tests: sinabs pins nir<=1.0.4 but runs on the nir this package needs; no deps.
	$(VENV)/bin/python -m pip install -q --no-deps sinabs==3.1.3 pbr
	touch $@

# The same code as `neurocompile lava setup` (neurocompile/lava_setup.py): finds Python 3.10
# ($$PYTHON310, python3.10, pyenv), installs lava-nc and the package's dependencies, round trip.
$(LAVA_VENV)/.installed: pyproject.toml $(VENV)/.installed
	$(VENV)/bin/neurocompile lava setup --dir $(LAVA_VENV) --with pytest
	touch $@

# Main job on the bundled default: train, prune, quantize, compile, simulate (reference + Lava), energy.
run: venv lava-venv
	NEUROCOMPILE_LAVA_PYTHON=$(CURDIR)/$(LAVA_VENV)/bin/python $(VENV)/bin/neurocompile pipeline --out runs/pipeline

test: venv lava-venv
	$(VENV)/bin/python -m ruff check neurocompile tests benchmarks
	NEUROCOMPILE_LAVA_PYTHON=$(CURDIR)/$(LAVA_VENV)/bin/python $(VENV)/bin/python -m pytest -q tests

lint: venv
	$(VENV)/bin/python -m ruff check neurocompile tests benchmarks

clean:
	rm -rf $(VENV) $(LAVA_VENV) runs build *.egg-info
