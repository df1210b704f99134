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
	$(VENV)/bin/python -m pip install -q -e ".[torch,dev,norse,onnx]" $(TORCH_PIN)
	# NeuroBench cross-check: without its heavy audio/vision dependencies, which the metrics do not use.
	$(VENV)/bin/python -m pip install -q --no-deps neurobench==2.3.0 snntorch==1.0.0
	# Interop tests: sinabs pins nir<=1.0.4 but runs on the nir this package needs; no deps.
	$(VENV)/bin/python -m pip install -q --no-deps sinabs==3.1.3 pbr
	touch $@

$(LAVA_VENV)/.installed: pyproject.toml
	PY310="$$(scripts/find-python310.sh)" && $$PY310 -m venv $(LAVA_VENV)
	$(LAVA_VENV)/bin/python -m pip install -q -e ".[lava]" pytest
	$(LAVA_VENV)/bin/python -c "import lava, neurocompile.ir" 
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
