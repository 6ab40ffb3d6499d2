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

reproduce: $(STAMP)
	$(BIN)/funnelkit reproduce fig2 --preset quick

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_four_circles.py

clean:
	rm -rf runs results .pytest_cache
