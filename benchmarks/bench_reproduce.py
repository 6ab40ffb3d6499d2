"""Reproduction benchmarks on this CPU (issue 4), one torch thread.

1. The wall time of each `funnelkit reproduce RESULT --preset quick`, run from scratch in a fresh
   runs folder, in the order a reader would run them (Fig. 3, Table 3 and Fig. 4 reuse the image
   runs that Table 2 trains, so their times are loading, sampling and scoring).
2. Training throughput of each quick run: steps and examples per second, read from the runs'
   ``metrics.json`` (the runs' clock: the median gap between the ends of consecutive training
   steps, data drawing included).
3. Whether drawing batches from the offline data slows training: the time per training step of
   each quick image model with batches drawn from the offline MNIST (index, reduce bits,
   dequantise: what every training step does) against the same steps on one batch drawn
   beforehand, interleaved.

Writes benchmarks/results/reproduce.json and .md. Run: `python benchmarks/bench_reproduce.py`
(about 25 minutes here); `--only table8 fig2` runs some results only.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import funnelkit as fk
from bench_common import median_step_times, save_results, timing_trainer  # this folder is on sys.path when run as a script
from funnelkit.experiments.runs import image_batches

ORDER = ("fig2", "table8", "table1", "table2", "fig3", "table3", "fig4", "table4")


def reproduce_times(names, work):
    rows = {}
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for name in names:
        command = [sys.executable, "-m", "funnelkit", "reproduce", name, "--preset", "quick", "--device", "cpu",
                   "--out", str(work / "results"), "--runs", str(work / "runs"), "--threads", "1"]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
        rows[name] = {"seconds": seconds}
        print(f"reproduce {name} --preset quick: {seconds:.1f} s", flush=True)
    return rows


def throughput(work):
    rows = {}
    for metrics_file in sorted((work / "runs").glob("**/metrics.json")):
        metrics = json.loads(metrics_file.read_text())
        training = metrics.get("training", {})
        per_step = training.get("seconds_per_step")
        if not per_step:
            continue
        batch = training["config"]["batch_size"]
        rows[str(metrics_file.parent.relative_to(work / "runs"))] = {
            "steps": training["steps"], "batch_size": batch, "seconds_per_step": per_step,
            "steps_per_second": 1 / per_step, "examples_per_second": batch / per_step,
            "train_seconds": training["train_seconds"], "parameters": metrics["parameters"],
        }
    return rows


def data_loading(batch_size=64, blocks=6, steps_per_block=3):
    images = fk.data.image_dataset("mnist", "train").images
    draw = image_batches(images, 8)
    generator = torch.Generator().manual_seed(0)
    fixed = draw(batch_size, generator)
    rows = {}
    for name in fk.models.IMAGE_MODELS:
        fk.seed_everything(0)
        model = fk.models.image_model(name, "mnist", bits=8, preset="quick")
        # both trainers step the same model (each with its own Adam): only their batches differ
        trainers = {"drawn": timing_trainer(model, draw, batch_size),
                    "fixed": timing_trainer(model, lambda n, g: fixed, batch_size)}
        median = median_step_times(trainers, blocks, steps_per_block, warmup=1)
        draw_times = []
        for _ in range(20):
            start = time.perf_counter()
            draw(batch_size, generator)
            draw_times.append(time.perf_counter() - start)
        rows[name] = {"ms_per_step_drawn": 1000 * median["drawn"], "ms_per_step_fixed": 1000 * median["fixed"],
                      "ms_to_draw_a_batch": 1000 * statistics.median(draw_times),
                      "slowdown": median["drawn"] / median["fixed"] - 1}
    return {"batch_size": batch_size, "models": rows}


def markdown(result):
    lines = ["# Reproduction benchmarks (CPU, one torch thread)", "",
             f"Machine: {result['machine']}. Run: `python benchmarks/bench_reproduce.py`.", "",
             "## Wall time of `funnelkit reproduce RESULT --preset quick`, from scratch", "",
             "| result | seconds | note |", "| --- | ---: | --- |"]
    notes = {"fig2": "loads the shipped four-circles checkpoints", "table8": "builds the models, no training",
             "fig3": "loads Table 2's runs", "table3": "loads Table 2's runs; no Inception weights here",
             "fig4": "loads Table 2's runs"}
    for name, row in result["reproduce"].items():
        lines.append(f"| {name} | {row['seconds']:.1f} | {notes.get(name, 'trains its models')} |")
    lines += ["", "## Training throughput of the quick runs", "",
              "| run | parameters | batch | steps | s / step | examples / s | training s |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, row in result["throughput"].items():
        lines.append(f"| {name} | {row['parameters']:,} | {row['batch_size']} | {row['steps']:,} | "
                     f"{row['seconds_per_step']:.4f} | {row['examples_per_second']:,.0f} | {row['train_seconds']:.0f} |")
    loading = result["data_loading"]
    lines += ["", f"## Drawing batches from the offline MNIST (batch {loading['batch_size']}, 8 bits)", "",
              "| quick model | ms per step, batches drawn | ms per step, one fixed batch | ms to draw a batch | slowdown |",
              "| --- | ---: | ---: | ---: | ---: |"]
    for name, row in loading["models"].items():
        lines.append(f"| {name} | {row['ms_per_step_drawn']:.1f} | {row['ms_per_step_fixed']:.1f} | "
                     f"{row['ms_to_draw_a_batch']:.2f} | {100 * row['slowdown']:+.1f}% |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", choices=ORDER, help="results to run (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="funnelkit-bench-") as folder:
        work = Path(folder)
        result = {
            "machine": f"{platform.processor() or platform.machine()}, 1 torch thread, torch {torch.__version__}",
            "reproduce": reproduce_times(args.only or ORDER, work),
            "throughput": throughput(work),
            "data_loading": data_loading(),
        }
    save_results("reproduce", result, markdown(result))


if __name__ == "__main__":
    main()
