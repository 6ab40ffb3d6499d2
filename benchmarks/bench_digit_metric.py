"""Calibration of the kit's digit metric (a small MNIST classifier's 128-wide features).

FID, KID and IS (:func:`funnelkit.digits.digit_metrics`, torch-fidelity on the kit's classifier)
of 1,000 digits of each kind against the reference, the 1,000 held-out real MNIST digits:

* the reference against itself (FID 0 by construction; KID's unbiased estimate a little below 0);
* real digits: 1,000 of the 9,000 training digits (seed 0), as they are and reduced to 5 bits
  (to_uint8_images(reduce_bits(x, 5), 5): what a perfect 5-bit model would draw);
* the same digits blurred (a Gaussian, sigma 1 and 2 pixels);
* uniform noise (every pixel uniform in 0..255, seed 0);
* the shipped quick image runs (data/runs/images-quick: F-NSF, NSF, VAE, MNIST 5-bit) at
  T = 0.5, 0.75 and 1, 1,000 samples each (seed 0), drawn as the gallery draws them
  (``funnelkit.experiments.table2.samples_uint8``, which funnelkit.app.gallery.sample_grid calls:
  floor(u) 2^(8 - bits), i.e. funnelkit.data.to_uint8_images).

Also the classifier's held-out accuracy. One torch thread. Writes
benchmarks/results/digit_metric.json and .md. Run: `python benchmarks/bench_digit_metric.py`
(about two minutes).
"""

import json
import platform
import time

import torch

import funnelkit as fk
from bench_common import REPO, save_results  # this folder is on sys.path when run as a script
from funnelkit.data import reduce_bits, to_uint8_images
from funnelkit.digits import digit_metrics, load_classifier, mnist_digits_split
from funnelkit.digits.classifier import CLASSIFIER_PATH
from funnelkit.digits.metric import METRIC_NAME
from funnelkit.digits.training import accuracy
from funnelkit.experiments.table2 import samples_uint8

N = 1000
SEED = 0
TEMPERATURES = (0.5, 0.75, 1.0)
RUNS = REPO / "data" / "runs" / "images-quick"
MODELS = {"f-nsf": "mnist5-first10k-h1000-s400-f-nsf", "nsf": "mnist5-first10k-h1000-s400-nsf",
          "vae": "mnist5-first10k-h1000-s4000-vae"}
SHOWN = {"f-nsf": "F-NSF", "nsf": "NSF", "vae": "VAE"}


def blurred(images, sigma):
    """uint8 digits blurred by a Gaussian of ``sigma`` pixels (a 2*ceil(3 sigma)+1 kernel, zero edges)."""
    radius = int(-(-3 * sigma // 1))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-x**2 / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    out = torch.nn.functional.conv2d(images.float(), kernel.view(1, 1, 1, -1), padding=(0, radius))
    out = torch.nn.functional.conv2d(out, kernel.view(1, 1, -1, 1), padding=(radius, 0))
    return out.round().clamp(0, 255).to(torch.uint8)


def scored(label, kind, images):
    started = time.perf_counter()
    numbers = digit_metrics(images)
    numbers.pop("metric")
    row = {"label": label, "kind": kind, **numbers, "seconds": time.perf_counter() - started}
    print(f"{label}: FID {row['fid']:.1f}, KID {row['kid']:.2f}, IS {row['is']:.2f}", flush=True)
    return row


def main():
    torch.set_num_threads(1)
    train, _, held, held_labels = mnist_digits_split()
    real = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(SEED))[:N]]
    noise = torch.randint(0, 256, (N, 1, 28, 28), generator=torch.Generator().manual_seed(SEED), dtype=torch.uint8)
    rows = [scored("the reference against itself", "reference", held),
            scored("real digits (1,000 training digits)", "real", real),
            scored("real digits reduced to 5 bits", "real", to_uint8_images(reduce_bits(real, 5), 5)),
            scored("real digits blurred (sigma 1 px)", "blurred", blurred(real, 1.0)),
            scored("real digits blurred (sigma 2 px)", "blurred", blurred(real, 2.0)),
            scored("uniform noise", "noise", noise)]
    runs = {}
    for name, folder in MODELS.items():
        model = fk.load(RUNS / folder).eval()
        bits = int(model.config.get("bits", 8))
        metrics = json.loads((RUNS / folder / "metrics.json").read_text())
        runs[name] = {"run": f"data/runs/images-quick/{folder}", "bits": bits, "steps": metrics["training"]["steps"],
                      "test_bpd": metrics["evaluation"]["bpd"]}
        for temperature in TEMPERATURES:
            started = time.perf_counter()
            images = samples_uint8(model, N, bits, temperature=temperature, seed=SEED)
            sampling = time.perf_counter() - started
            row = scored(f"{SHOWN[name]} quick, T = {temperature:g}", name, images)
            row.update(temperature=temperature, sampling_seconds=sampling)
            rows.append(row)
    result = {
        "benchmark": "digit_metric",
        "metric": METRIC_NAME,
        "reference": "the 1,000 held-out real digits of the offline MNIST (the image results' split, seed 656693568)",
        "samples_per_row": N,
        "seed": SEED,
        "classifier": {"file": "data/digit-classifier.pt", "bytes": CLASSIFIER_PATH.stat().st_size,
                       "held_out_accuracy": accuracy(load_classifier(), held, held_labels)},
        "kid_subset_size": rows[0]["kid_subset_size"],
        "runs": runs,
        "rows": rows,
        "machine": {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__, "threads": 1},
    }
    save_results("digit_metric", result, markdown(result))


def markdown(result):
    lines = ["# The kit's digit metric: calibration", "",
             f"FID, KID and IS of {result['samples_per_row']:,} digits per row: {result['metric']}, computed by "
             "torch-fidelity with the kit's classifier (`funnelkit.digits.digit_metrics`), against "
             f"{result['reference']}. Not Inception: the numbers are on this classifier's scale, comparable with "
             "each other (at the same number of digits), not with published FIDs.", "",
             f"Classifier: `{result['classifier']['file']}` ({result['classifier']['bytes'] / 1024:.0f} KiB), held-out "
             f"accuracy {result['classifier']['held_out_accuracy']:.1%} on the 1,000 reference digits it never saw. "
             f"KID: 100 random subsets of {result['kid_subset_size']} digits (mean; lower is better, about 0 for "
             "the same distribution, unbiased so it can dip below 0). IS: 10 splits (higher is better, at most 10).",
             "", "| digits | FID | KID | IS |", "|:--|--:|--:|--:|"]
    for row in result["rows"]:
        fid = abs(row["fid"]) if abs(row["fid"]) < 0.05 else row["fid"]  # no "-0.0"
        lines.append(f"| {row['label']} | {fid:,.1f} | {row['kid']:,.2f} | {row['is']:.2f} +- {row['is_std']:.2f} |")
    lines += ["", "Read FID first. KID's cubic kernel acts on the classifier's unnormalised ReLU features, so far-off sets "
              "saturate it and it orders them differently (uniform noise below the NSF and F-NSF samples); near the "
              "real digits (FID under about 300) FID and KID agree. IS says how confidently and how evenly the "
              "classifier sees the ten digits: the 5-bit NSF samples at T = 0.5 are nearly black, one class to it.",
              "", "Shipped quick runs (Table 2's quick preset, MNIST 5-bit; samples drawn as the gallery draws them, "
              "only the base noise tempered):", ""]
    lines += [f"- {SHOWN[name]}: `{run['run']}`, {run['steps']} steps, test {run['test_bpd']:.3f} bits/dim"
              for name, run in result["runs"].items()]
    lines += ["", "Made by `python benchmarks/bench_digit_metric.py` (one torch thread, seed 0, "
              f"torch {result['machine']['torch']}).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
