"""What the temperature does to samples, by temper mode: the kit's digit metric at T = 0 ... 1.

For the shipped quick image runs (data/runs/images-quick, MNIST 5-bit: F-NSF and VAE; NSF once,
its modes are one since it has no decoders), 1,000 seeded samples (seed 0) at T = 0, 0.25, 0.5,
0.75 and 1 in each temper mode of :mod:`funnelkit.models.tempering`:

* ``base``: the paper's, z ~ N(0, T^2 I), every decoder at temperature 1;
* ``all``: the decoders' noise scaled by T too;
* ``mean``: the decoders' noise-free means.

Per row: the digit FID (:func:`funnelkit.app.gallery.digit_quality`, what the dashboard shows under a
grid, at 1,000 samples; lower is better) beside 1,000 real training digits reduced to 5 bits, and
the pixel spread (the standard deviation of each pixel across the samples, averaged over pixels,
0-255): 0 when every sample is the same picture. One torch thread. Writes
benchmarks/results/temper.json and .md. Run: `python benchmarks/bench_temper.py` (about two
minutes on a laptop CPU).
"""

import platform
import time

import torch

from bench_common import REPO, save_results  # this folder is on sys.path when run as a script
import funnelkit as fk
from funnelkit.app import gallery
from funnelkit.digits.metric import METRIC_NAME
from funnelkit.experiments.shipped import SHIPPED_RUNS
from funnelkit.models.tempering import TEMPER_MODES

N = 1000
SEED = 0
TEMPERATURES = (0.0, 0.25, 0.5, 0.75, 1.0)
GROUP = "images-quick"
MODELS = ("f-nsf", "vae", "nsf")  # NSF: one mode (no decoders), for contrast


def pixel_spread(images):
    """The standard deviation of each pixel across ``images`` (uint8), averaged over pixels."""
    return float(images.double().std(dim=0).mean())


def shipped_runs():
    found = gallery.find_image_runs([SHIPPED_RUNS])
    runs = {r.model: r for r in found.runs if r.group == GROUP and r.model in MODELS}
    missing = [m for m in MODELS if m not in runs]
    if missing:
        raise FileNotFoundError(f"no shipped {GROUP} run of {', '.join(missing)} in {SHIPPED_RUNS}; "
                                "make them with `funnelkit reproduce table2 --preset quick`")
    return runs


def main():
    torch.set_num_threads(1)
    rows, runs = [], {}
    for name, run in shipped_runs().items():
        model = fk.load(run.path).eval()
        runs[name] = {"run": str(run.path.relative_to(REPO)), "bits": run.bits, "steps": run.training.get("steps"),
                      "train_seconds": run.training.get("train_seconds"), "test_bpd": run.bpd}
        for temper in (TEMPER_MODES if name != "nsf" else ("base",)):
            for temperature in TEMPERATURES:
                started = time.perf_counter()
                quality = gallery.digit_quality(model, temperature, temper, SEED, n=N)
                images = gallery.sample_images(model, N, temperature, SEED, temper)
                row = {"model": name, "temper": temper, "temperature": temperature, "fid": quality.fid,
                       "real_fid": quality.real_fid, "pixel_spread": pixel_spread(images), "n": N,
                       "seconds": time.perf_counter() - started}
                print(f"{name} {temper} T={temperature:g}: FID {row['fid']:.0f}, spread {row['pixel_spread']:.1f}",
                      flush=True)
                rows.append(row)
    result = {
        "benchmark": "temper",
        "metric": METRIC_NAME,
        "reference": "the 1,000 held-out real digits of the offline MNIST (the image results' split)",
        "samples_per_row": N, "seed": SEED, "temperatures": list(TEMPERATURES),
        "real_digits_fid": rows[0]["real_fid"],
        "runs": runs, "rows": rows,
        "machine": {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__, "threads": 1},
    }
    save_results("temper", result, markdown(result))


def markdown(result):
    names = {"f-nsf": "F-NSF", "vae": "VAE", "nsf": "NSF"}
    temps = result["temperatures"]
    lines = ["# Temperature by temper mode: the kit's digit metric", "",
             f"Digit FID ({result['metric'].replace(' (', ': ').rstrip(')')}; lower is better) of "
             f"{result['samples_per_row']:,} samples per cell "
             f"(seed {result['seed']}) against {result['reference']}. Real digits (1,000 training digits reduced to "
             f"5 bits) score {result['real_digits_fid']:.1f} on this scale. In brackets: the pixel spread, the "
             "standard deviation of each pixel across the samples averaged over pixels (0-255; 0: every sample "
             "is the same picture).", "",
             "Modes (`temper=`): **base**, the paper's, z ~ N(0, T²I) and every decoder at temperature 1; **all**, "
             "the decoders' noise scaled by T too; **mean**, the decoders' noise-free means.", "",
             "| model | temper | " + " | ".join(f"T = {t:g}" for t in temps) + " |",
             "|:--|:--|" + "--:|" * len(temps)]
    for name in result["runs"]:
        for temper in TEMPER_MODES:
            cells = {r["temperature"]: r for r in result["rows"] if r["model"] == name and r["temper"] == temper}
            if cells:
                lines.append(f"| {names[name]} | {temper} | "
                             + " | ".join(f"{cells[t]['fid']:,.0f} ({cells[t]['pixel_spread']:.0f})" for t in temps)
                             + " |")
    lines += ["", "Where the randomness comes from: " + " ".join(reading(result, name, names[name])
                                                                for name in result["runs"] if name != "nsf")]
    lines += ["", "Runs (the shipped quick preset, MNIST 5-bit; NSF has no decoders, so its modes are one):", ""]
    lines += [f"- {names[name]}: `{run['run']}`, {run['steps']:,} steps in {run['train_seconds'] / 60:.1f} min, "
              f"test {run['test_bpd']:.3f} bits/dim" for name, run in result["runs"].items()]
    lines += ["", "Made by `python benchmarks/bench_temper.py` (one torch thread, "
              f"torch {result['machine']['torch']}).", ""]
    return "\n".join(lines)


def reading(result, name, shown):
    """One sentence per model, from its rows: how much of the samples' spread is the decoders'."""
    cell = {(r["temper"], r["temperature"]): r for r in result["rows"] if r["model"] == name}
    base0, base1, mean1 = cell["base", 0.0], cell["base", 1.0], cell["mean", 1.0]
    return (f"{shown} at T = 0 with the paper's tempering (z = 0, only decoder noise) keeps a pixel spread of "
            f"{base0['pixel_spread']:.0f} of its {base1['pixel_spread']:.0f} at T = 1, and its decoder means at T = 1 "
            f"spread {mean1['pixel_spread']:.0f} (digit FID {mean1['fid']:,.0f}, against {base1['fid']:,.0f} "
            "with decoder noise).")


if __name__ == "__main__":
    main()
