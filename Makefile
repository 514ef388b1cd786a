# srgrad: `make run` upscales the bundled sample; `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test bench lint format clean

$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $@

$(DEV_STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,export]'
	touch $@

run: $(RUN_STAMP)
	$(BIN)/srgrad upscale srgrad/assets/sample.png -o runs/sample --force
	@echo "upscaled image written under runs/sample/"

test: $(DEV_STAMP)
	$(BIN)/python -m pytest -q

# Each benchmark writes its own table into docs/benchmarks.md (between its markers).
# The bf16-vs-fp32 training study (an hour or more) runs apart: benchmarks/train_precision.py.
bench: $(DEV_STAMP)
	$(BIN)/python benchmarks/blocks.py --compile
	$(BIN)/python benchmarks/upscale.py
	$(BIN)/python benchmarks/precision_quality.py
	$(BIN)/python benchmarks/resize.py

lint: $(DEV_STAMP)
	$(BIN)/ruff check srgrad tests scripts benchmarks

format: $(DEV_STAMP)
	$(BIN)/ruff format srgrad tests scripts benchmarks

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
