"""Model benchmarks on this CPU (issue 3), measured side by side in one run.

1. Time per training step of F-MLP against the coupling flows (NSF, GLOW), F-NSF and the VAE on
   a 43-dimensional tabular input (MINIBOONE's width, Table 5's paper settings and batch 128),
   and on POWER's 6 dimensions (batch 512), where Table 5's flows are widest.
   The paper: F-MLP "up to six times faster than the flows".
2. Time per training step of F-NSF against NSF on MNIST-sized images (1 x 28 x 28, the anomaly
   models of A.9 and Table 8, paper sizes, a small batch so that a CPU can take it).
3. Seconds to sample 64 images from each image model (MNIST, 8 bits; paper and quick presets).

Steps of the models compared are interleaved in blocks, so all see the same machine load; we
report medians and ratios. One torch thread (the shared machines here have two cores).
Writes benchmarks/results/models.json and .md. Run: `python benchmarks/bench_models.py`.
"""

import platform
import statistics
import time

import torch

import funnelkit as fk
from bench_common import median_step_times, save_results, timing_trainer  # this folder is on sys.path when run as a script



def interleaved_step_times(models, sample_batch, batch_size, blocks=6, steps_per_block=3, warmup=2):
    """Median seconds per training step of each model, steps interleaved in alternating order."""
    trainers = {name: timing_trainer(model, sample_batch, batch_size) for name, model in models.items()}
    return median_step_times(trainers, blocks, steps_per_block, warmup)


def tabular_steps(dataset="miniboone", names=("f-mlp", "vae", "nsf", "glow", "f-nsf")):
    fk.seed_everything(0)
    models = {name: fk.models.tabular_model(name, dataset, preset="paper") for name in names}
    width = next(iter(models.values())).data_dim
    batch_size = fk.models.tabular.TABULAR_CONFIGS["paper"][dataset].batch_size
    generator = torch.Generator().manual_seed(0)
    pool = torch.randn(20_000, width, generator=generator) @ torch.randn(width, width, generator=generator) / width**0.5

    def sample_batch(n, g):
        return pool[torch.randint(len(pool), (n,), generator=g)]

    median = interleaved_step_times(models, sample_batch, batch_size)
    return {
        "dataset_width": width, "batch_size": batch_size,
        "median_ms": {name: 1000 * m for name, m in median.items()},
        "time_over_f_mlp": {name: median[name] / median["f-mlp"] for name in names if name != "f-mlp"},
        "parameters": {name: m.num_parameters() for name, m in models.items()},
    }


def _mnist_batches():
    images = fk.data.image_dataset("mnist", "train").images

    def sample_batch(n, g):
        return fk.data.preprocess(images[torch.randint(len(images), (n,), generator=g)], 8, generator=g)

    return sample_batch


def image_steps(batch_size=16, preset="paper"):
    fk.seed_everything(0)
    models = {
        "f-nsf (latent 16)": fk.models.anomaly_model("f-nsf", latent_size=16, preset=preset),
        "nsf": fk.models.anomaly_model("nsf", preset=preset),
    }
    median = interleaved_step_times(models, _mnist_batches(), batch_size, blocks=4, steps_per_block=2, warmup=1)
    return {
        "batch_size": batch_size, "preset": preset,
        "median_ms": {name: 1000 * m for name, m in median.items()},
        "ratio_f_nsf_over_nsf": median["f-nsf (latent 16)"] / median["nsf"],
        "parameters": {name: m.num_parameters() for name, m in models.items()},
    }


@torch.no_grad()
def sampling_times(n=64, repeats=3):
    rows = {}
    for preset in ("paper", "quick"):
        for name in fk.models.image.IMAGE_MODELS:
            fk.seed_everything(0)
            model = fk.models.image_model(name, "mnist", bits=8, preset=preset).eval()
            model.sample(2)  # warm-up
            seconds = []
            for _ in range(repeats):
                start = time.perf_counter()
                model.sample(n)
                seconds.append(time.perf_counter() - start)
            rows[f"{name} ({preset})"] = {"seconds": statistics.median(seconds), "parameters": model.num_parameters()}
    return {"n": n, "models": rows}


def markdown(result):
    img, smp = result["images"], result["sampling"]
    lines = [
        "# Model benchmarks (CPU, one torch thread)",
        "",
        f"Machine: {result['machine']}. Run: `python benchmarks/bench_models.py`.",
        "",
    ]
    for dataset, tab in result["tabular"].items():
        lines += [
            f"## Training step, {tab['dataset_width']}-D tabular input ({dataset.upper()} width, paper preset, "
            f"batch {tab['batch_size']})",
            "",
            "| model | parameters | ms per step | time / F-MLP's |",
            "| --- | ---: | ---: | ---: |",
        ]
        for name, ms in tab["median_ms"].items():
            ratio = 1.0 if name == "f-mlp" else tab["time_over_f_mlp"][name]
            lines.append(f"| {name} | {tab['parameters'][name]:,} | {ms:.1f} | {ratio:.2f} |")
        lines.append("")
    lines += [
        "The paper: F-MLP trains \"up to six times faster than the flows\" (at Table 5's sizes; the paper names "
        "its hardware, one RTX 3090, only for the image experiments).",
        "",
        f"## Training step, 1 x 28 x 28 images (anomaly models of A.9, {img['preset']} preset, batch {img['batch_size']})",
        "",
        "| model | parameters | ms per step |",
        "| --- | ---: | ---: |",
    ]
    for name, ms in img["median_ms"].items():
        lines.append(f"| {name} | {img['parameters'][name]:,} | {ms:.0f} |")
    lines += [
        "",
        f"F-NSF / NSF time per step: **{img['ratio_f_nsf_over_nsf']:.2f}**.",
        "",
        f"## Sampling {smp['n']} MNIST images (8 bits)",
        "",
        "| model | parameters | seconds |",
        "| --- | ---: | ---: |",
    ]
    for name, row in smp["models"].items():
        lines.append(f"| {name} | {row['parameters']:,} | {row['seconds']:.3f} |")
    return "\n".join(lines) + "\n"


def main():
    torch.set_num_threads(1)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread, torch {torch.__version__}",
        "tabular": {dataset: tabular_steps(dataset) for dataset in ("miniboone", "power")},
        "images": image_steps(),
        "sampling": sampling_times(),
    }
    save_results("models", result, markdown(result))


if __name__ == "__main__":
    main()
