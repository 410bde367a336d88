# The two commands:  make demo  (built-in dataset -> trained model -> grids)
#                    make test  (ruff, then the whole test suite, notebooks included)
# Both create ./.venv and install from this repository's own files.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_N ?= 7600

.PHONY: demo test venv notebook notebooks clean-demo

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m heroportraits procedural --n $(DEMO_N) --seed 0 --out data/sources/procedural
	$(PY) -m heroportraits prepare --input data/sources/procedural --labels data/sources/procedural/labels.csv --name procedural
	$(PY) -m heroportraits build procedural
	$(PY) -m heroportraits train --dataset procedural --preset cpu --run demo
	$(PY) -m heroportraits sample artifacts_gan/checkpoints/demo --grid --out artifacts_gan/samples/demo/final_grid.png
	@echo "Demo done: grids in artifacts_gan/samples/demo/, checkpoint in artifacts_gan/checkpoints/demo/"

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

# Run every notebook with its real parameters (not the smoke ones: this trains the cpu preset, about
# as long as the demo) and save it in place with its outputs, which is what the committed notebooks
# show. Progress bars print plain lines (HEROPORTRAITS_PROGRESS=lines), readable in the saved files.
NOTEBOOKS := $(sort $(wildcard notebooks/0*.ipynb))
notebooks: $(STAMP)
	@for nb in $(NOTEBOOKS); do \
		echo "== $$nb"; \
		env -u HEROPORTRAITS_SMOKE HEROPORTRAITS_PROGRESS=lines MPLBACKEND=Agg \
			$(PY) -m papermill --cwd notebooks --kernel python3 "$$nb" "$$nb" || exit 1; \
	done

# Jupyter for the notebooks (not needed by demo or test).
notebook: $(STAMP)
	$(PY) -m pip install -q jupyterlab
	$(VENV)/bin/jupyter lab notebooks/

clean-demo:
	rm -rf data/sources/procedural data/procedural artifacts_gan/samples/demo artifacts_gan/checkpoints/demo
