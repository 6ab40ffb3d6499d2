# funnelkit: `make app` opens the dashboard, `make test` runs every test. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8501

.PHONY: setup app test test-fast test-kernels notebooks reproduce bench gpu-check clean

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

# The numerically sensitive tests (exactness of layers and models, seeded training and resume,
# the reproduced results, the notebooks' own asserts, the live run), run again under other CPU
# kernels than this machine's best: ATen's unvectorised "default" kernels, MKL's SSE4.2 code and
# oneDNN's SSE4.1 code. float32 results differ between CPUs in their last bits; a test that
# passes here and on `make test` does not depend on which x86-64 CPU runs it. The first command
# fails if torch ignored ATEN_CPU_CAPABILITY (the second pass would repeat the first).
KERNELS_ENV := ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=SSE4_2 ONEDNN_MAX_CPU_ISA=SSE41
KERNEL_TESTS := tests/layers tests/models tests/experiments tests/test_notebooks.py tests/test_train.py \
	tests/test_distributed.py tests/test_checkpoints.py tests/test_cli_experiments.py tests/test_live.py \
	tests/test_metrics.py tests/test_fidelity.py tests/test_compat.py tests/test_four_circles_data.py

test-kernels: $(STAMP)
	$(KERNELS_ENV) $(BIN)/python -c "import sys, torch; c = torch.backends.cpu.get_cpu_capability(); \
	sys.exit(None if c == 'DEFAULT' else f'ATEN_CPU_CAPABILITY=default was ignored: torch still runs its {c} kernels')"
	$(KERNELS_ENV) $(BIN)/python -m pytest $(KERNEL_TESTS)

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

# On a CUDA machine: the CUDA tests, training images/s of the paper-size image flows (fp32 and bf16,
# eager and compiled), sampling time, then the classroom F-NSF for the minutes left of GPU_BUDGET;
# writes benchmarks/results/gpu_check.md and .json. Refuses (exit 2) without CUDA.
GPU_BUDGET ?= 8

gpu-check: $(STAMP)
	$(BIN)/python benchmarks/gpu_check.py --budget-minutes $(GPU_BUDGET)

clean:
	rm -rf runs results .pytest_cache
