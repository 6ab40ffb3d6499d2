"""The image models on this CPU (issue 11): training images/s per model and preset, sampling
images/s per temperature, and the training minutes to the sample-quality target.

* Training: the MNIST 5-bit F-NSF, NSF and VAE of the quick and classroom presets
  (:func:`funnelkit.models.image.image_model`), each at its preset's batch size on the offline
  MNIST digits, step times interleaved side by side (:func:`bench_common.median_step_times`).
* Sampling: the shipped classroom runs (``data/runs/images-classroom``), 64 images at T = 0.5,
  0.75 and 1 with the paper's base-only tempering (median of 7 draws after a warm-up).
* Minutes to the target: not trained again; quoted from ``benchmarks/results/classroom_curve.json``
  (issue 11's target: the kit's digit FID of samples at T = 0.5 or 0.75 at most 100).

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_images.py`` (one torch thread; about 3 minutes).
"""

import json
import platform
import statistics
import time
import warnings
from pathlib import Path

import torch

import funnelkit as fk
from bench_common import RESULTS, median_step_times, save_results  # this folder is on sys.path when run as a script
from funnelkit.data.images import OfflineDataWarning, image_dataset
from funnelkit.experiments import table2
from funnelkit.experiments.runs import image_batches
from funnelkit.experiments.shipped import SHIPPED_RUNS
from funnelkit.models.image import image_model

MODELS = ("f-nsf", "nsf", "vae")
PRESETS = ("quick", "classroom")
TEMPERATURES = (0.5, 0.75, 1.0)
BITS, SAMPLES, SEED = 5, 64, 0
TARGET_FID = 100


def training_rows(images):
    """Images/s of a training step of every model and preset, measured side by side."""
    trainers, batch_sizes = {}, {}
    for preset in PRESETS:
        batch = table2.PRESETS[preset].batch_size
        for name in MODELS:
            fk.seed_everything(SEED)
            model = image_model(name, "mnist", BITS, preset=preset)
            config = fk.TrainConfig(steps=10_000, batch_size=batch, lr=1e-4, schedule="constant")
            trainers[name, preset] = fk.Trainer(model, image_batches(images, BITS), config)
            batch_sizes[name, preset] = batch
    seconds = median_step_times(trainers, blocks=4, steps_per_block=2, warmup=2)
    return [{"model": name, "preset": preset, "batch_size": batch_sizes[name, preset],
             "parameters": trainers[name, preset].model.num_parameters(), "seconds_per_step": seconds[name, preset],
             "images_per_s": batch_sizes[name, preset] / seconds[name, preset]}
            for (name, preset) in trainers]


@torch.no_grad()
def sampling_rows(runs_folder):
    """Images/s of drawing ``SAMPLES`` images at each temperature from every shipped classroom run."""
    rows = []
    for folder in sorted(p for p in runs_folder.iterdir() if p.is_dir()):
        model = fk.load(folder).eval()
        for temperature in TEMPERATURES:
            times = []
            for i in range(8):
                torch.manual_seed(SEED)
                start = time.perf_counter()
                model.sample(SAMPLES, temperature=temperature)
                if i:
                    times.append(time.perf_counter() - start)
            seconds = statistics.median(times)
            rows.append({"run": folder.name, "model": model.config["name"], "temperature": temperature, "n": SAMPLES,
                         "seconds": seconds, "images_per_s": SAMPLES / seconds})
    return rows


def minutes_to_target(curve):
    """Per model: its stages (minutes, best base-tempered FID at T = 0.5 / 0.75, bits/dim) from the
    classroom curve, and the first minutes at which the FID target was met (None: not met)."""
    out = {}
    for row in sorted(curve["rows"], key=lambda r: (r["model"], r["steps"])):
        fid = min(row["fid"]["base@0.5"], row["fid"]["base@0.75"])
        stages = out.setdefault(row["model"], {"stages": [], "target_minutes": None})
        stages["stages"].append({"steps": row["steps"], "train_minutes": row["train_minutes"], "best_fid": fid,
                                 "bpd": row["bpd"]})
        if fid <= TARGET_FID and stages["target_minutes"] is None:
            stages["target_minutes"] = row["train_minutes"]
    return out


def markdown(result):
    lines = ["# Image models on a CPU: training and sampling speed, minutes to the quality target", "",
             f"{result['machine']}, torch {result['torch']}, {result['threads']} torch thread; MNIST 5-bit "
             "(the offline 10,000 digits). Step times interleaved side by side, medians (the machine is shared: "
             "other jobs ran too).", "",
             "## Training", "", "| model | preset | parameters | batch | s/step | images/s |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['model']} | {r['preset']} | {r['parameters']:,} | {r['batch_size']} | {r['seconds_per_step']:.3f} "
              f"| {r['images_per_s']:,.0f} |" for r in result["training"]]
    lines += ["", f"## Sampling {SAMPLES} images (shipped classroom runs, base-only tempering)", "",
              "| model | " + " | ".join(f"images/s T={t:g}" for t in TEMPERATURES) + " |",
              "| --- |" + " ---: |" * len(TEMPERATURES)]
    for model in sorted({r["model"] for r in result["sampling"]}):
        speeds = {r["temperature"]: r["images_per_s"] for r in result["sampling"] if r["model"] == model}
        lines.append(f"| {model} | " + " | ".join(f"{speeds[t]:,.0f}" for t in TEMPERATURES) + " |")
    lines += ["", f"## Minutes to the target (digit FID <= {TARGET_FID} at T = 0.5 or 0.75)", "",
              "Quoted from `benchmarks/results/classroom_curve.md` (the staged classroom trainings; not trained "
              "again here). Minutes: the Trainer's clock of the training steps on this shared machine.", "",
              "| model | stages: steps, minutes, best FID, bits/dim | minutes to FID <= 100 |", "| --- | --- | --- |"]
    for model, quality in result["target"].items():
        stages = "; ".join(f"{s['steps']:,}: {s['train_minutes']:.1f} min, FID {s['best_fid']:.0f}, {s['bpd']:.3f}"
                           for s in quality["stages"])
        last = quality["stages"][-1]
        reached = (f"{quality['target_minutes']:.1f}" if quality["target_minutes"] is not None
                   else f"not reached in {last['train_minutes']:.1f} min")
        lines.append(f"| {model} | {stages} | {reached} |")
    lines += ["", "Run: `OMP_NUM_THREADS=1 python benchmarks/bench_images.py`."]
    return "\n".join(lines) + "\n"


def cpu_name():
    """The CPU's model name (Linux: /proc/cpuinfo), else what platform says."""
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        return f"{names[0]} ({len(names)} cores seen)"
    except (OSError, IndexError):
        return platform.processor() or platform.machine()


def main():
    torch.set_num_threads(1)
    start = time.perf_counter()
    with warnings.catch_warnings():  # the offline digits are named in the report
        warnings.simplefilter("ignore", OfflineDataWarning)
        images = image_dataset("mnist", "train", prefer_offline=True).images
    curve = json.loads((RESULTS / "classroom_curve.json").read_text())
    result = {"benchmark": "images", "machine": cpu_name(),
              "torch": torch.__version__, "threads": torch.get_num_threads(),
              "training": training_rows(images), "sampling": sampling_rows(SHIPPED_RUNS / "images-classroom"),
              "target": minutes_to_target(curve), "target_fid": TARGET_FID}
    result["seconds"] = time.perf_counter() - start
    save_results("images", result, markdown(result))


if __name__ == "__main__":
    main()
