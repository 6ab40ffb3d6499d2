"""Wall time of each teaching notebook in quick mode on this CPU (issue 5).

Each notebook is executed as the tests and a reader run it: ``jupyter nbconvert --execute`` on a
copy in a fresh temporary folder (its working directory: what it writes lands there; the shipped
runs are copied into it), with FUNNELKIT_QUICK=1, MPLBACKEND=Agg and one OpenMP thread. The time
includes the kernel start (about 2 s). Notebooks run one after another, never side by side.

Writes benchmarks/results/notebooks.json and .md. Run: `python benchmarks/bench_notebooks.py`
(about 6 minutes here); `--only 02_layers` runs some notebooks only.
"""

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench_common import save_results  # this folder is on sys.path when run as a script

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def run_notebook(path, work):
    copy = work / path.name
    shutil.copy(path, copy)
    env = dict(os.environ, FUNNELKIT_QUICK="1", MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
               "--ExecutePreprocessor.timeout=900", str(copy), "--output", str(work / f"executed-{path.name}")]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=work)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{path.name} failed in quick mode:\n{done.stderr[-3000:]}")
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", help="notebook names without .ipynb, e.g. 02_layers")
    args = parser.parse_args()
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if args.only:
        unknown = set(args.only) - {p.stem for p in paths}
        if unknown:
            parser.error(f"unknown notebooks {sorted(unknown)}; expected some of {[p.stem for p in paths]}")
        paths = [p for p in paths if p.stem in args.only]
    rows = {}
    for path in paths:
        with tempfile.TemporaryDirectory(prefix="bench-notebook-") as work:
            rows[path.stem] = {"seconds": run_notebook(path, Path(work))}
        print(f"{path.name}: {rows[path.stem]['seconds']:.1f} s", flush=True)
    result = {"machine": platform.machine(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
              "threads": 1, "notebooks": rows}
    lines = ["# Notebook benchmarks (quick mode, CPU, one thread)", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores, one OpenMP thread, torch {torch.__version__}. "
             "Run: `python benchmarks/bench_notebooks.py`.", "",
             "Wall time of `jupyter nbconvert --execute` with FUNNELKIT_QUICK=1, in a fresh folder, kernel start "
             "included. The image, tabular and anomaly notebooks load the shipped runs (data/runs) instead of "
             "training.", "", "| notebook | seconds |", "| --- | ---: |"]
    lines += [f"| {name} | {row['seconds']:.1f} |" for name, row in rows.items()]
    lines += [f"| all | {sum(r['seconds'] for r in rows.values()):.1f} |", ""]
    save_results("notebooks", result, "\n".join(lines))


if __name__ == "__main__":
    main()
