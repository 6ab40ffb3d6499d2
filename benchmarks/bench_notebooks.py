"""Wall time of each teaching notebook in quick mode on this CPU (issue 5).

Each notebook is executed as the tests run it (``tests/notebook_client.py``: nbclient, a copy in
a fresh temporary folder, its working directory, where the shipped runs are copied), with
FUNNELKIT_QUICK=1, MPLBACKEND=Agg and one OpenMP thread. The time includes the kernel start
(about 1 s). Notebooks run one after another, never side by side.

Writes benchmarks/results/notebooks.json and .md. Run: `python benchmarks/bench_notebooks.py`
(about 6 minutes here); `--only 03_layers` runs some notebooks only.
"""

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench_common import REPO, save_results  # this folder is on sys.path when run as a script

sys.path.insert(0, str(REPO))  # the tests' notebook runner
from tests.notebook_client import run_notebook  # noqa: E402

NOTEBOOKS = REPO / "notebooks"


def time_notebook(path, work):
    start = time.perf_counter()
    run_notebook(path, work)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", help="notebook names without .ipynb, e.g. 03_layers")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"  # the kernels inherit it: one thread, as the timings say
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if args.only:
        unknown = set(args.only) - {p.stem for p in paths}
        if unknown:
            parser.error(f"unknown notebooks {sorted(unknown)}; expected some of {[p.stem for p in paths]}")
        paths = [p for p in paths if p.stem in args.only]
    rows = {}
    for path in paths:
        with tempfile.TemporaryDirectory(prefix="bench-notebook-") as work:
            rows[path.stem] = {"seconds": time_notebook(path, Path(work))}
        print(f"{path.name}: {rows[path.stem]['seconds']:.1f} s", flush=True)
    result = {"machine": platform.machine(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
              "threads": 1, "notebooks": rows}
    lines = ["# Notebook benchmarks (quick mode, CPU, one thread)", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores, one OpenMP thread, torch {torch.__version__}. "
             "Run: `python benchmarks/bench_notebooks.py`.", "",
             "Wall time of executing the notebook as the tests do (nbclient, FUNNELKIT_QUICK=1), in a fresh folder, "
             "kernel start included. The image, tabular and anomaly notebooks load the shipped runs (data/runs) instead of "
             "training.", "", "| notebook | seconds |", "| --- | ---: |"]
    lines += [f"| {name} | {row['seconds']:.1f} |" for name, row in rows.items()]
    lines += [f"| all | {sum(r['seconds'] for r in rows.values()):.1f} |", ""]
    save_results("notebooks", result, "\n".join(lines))


if __name__ == "__main__":
    main()
