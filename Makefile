# funnelkit: `make app` opens the dashboard, `make test` runs every test. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8501

.PHONY: setup app test test-fast notebooks reproduce bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

app: $(STAMP)
	$(BIN)/streamlit run app.py --server.port $(PORT) --browser.gatherUsageStats false

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not browser"

notebooks: $(STAMP)
	$(BIN)/jupyter lab notebooks/

RESULTS_ORDER := fig2 table8 table1 table2 fig3 table3 fig4 table4

reproduce: $(STAMP)
	for result in $(RESULTS_ORDER); do $(BIN)/funnelkit reproduce $$result --preset quick --threads 1 || exit 1; done

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_four_circles.py
	$(BIN)/python benchmarks/bench_models.py
	$(BIN)/python benchmarks/bench_reproduce.py
	$(BIN)/python benchmarks/bench_samples.py
	$(BIN)/python benchmarks/bench_notebooks.py

clean:
	rm -rf runs results .pytest_cache
