"""Fig. 4: samples of the F-NSF (top), the VAE (middle) and NSF (bottom) at temperatures 0.5, 0.75
and 1 (paper Sec. 4 "Image Data").

Temperature T scales the base noise, z ~ N(0, T^2 I); as in the authors' code only that noise is
tempered, each funnel's p_phi(x_- | z) and the VAE's decoder noise are sampled at T = 1
(:meth:`funnelkit.models.FunnelFlow.sample`). The models are Table 2's
(:mod:`funnelkit.experiments.image_runs`, the same run folders: a finished Table 2 run is loaded).
Paper preset: CIFAR-10 5-bit. Quick: the MNIST 5-bit stand-in, labelled.

The paper's funnel has a latent of 48 and 3.7 bits/dim, and its VAE a latent of 48 (models
neither the paper nor the authors' code pins down, reference note 6.4 item 12); ours are Table
2's models (CIFAR-10: latent 192; an erratum in docs/errata.md), and ``fig4.json`` says which
was used. Every panel uses the same seed, so
the rows differ by the model and the columns only by T.

For MNIST digits (the quick and classroom presets) each panel also gets **the kit's digit metric**
(:func:`funnelkit.digits.digit_metrics`: FID, KID and IS on a small MNIST classifier's 128-wide
features, via torch-fidelity; not Inception) of ``digit_samples`` samples at that T against the
held-out real digits, written under the panel and in ``fig4.json`` / ``fig4.md``: the paper's
Fig. 4 claims, put as numbers.
"""

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..device import pick_device
from ..digits import METRIC_NAME, digit_metric_applies, digit_scores, load_classifier
from ..digits import NOT_APPLICABLE as DIGIT_METRIC_NOT_APPLICABLE
from . import paper_numbers as paper
from .image_runs import PRESETS as IMAGE_PRESETS
from .image_runs import ImageSettings, choose_image_settings, samples_uint8, single_column, train_image_models
from .results import data_line, image_grid, pm, save_figure, table, write_result

NAME = "fig4"
ROWS = ("f-nsf", "vae", "nsf")  # the paper's order, top to bottom
_SHOWN = {"f-nsf": "F-NSF", "vae": "VAE", "nsf": "NSF"}


@dataclass(frozen=True)
class Fig4Settings(ImageSettings):
    """Table 2's image settings, plus the temperatures, the samples per panel and the samples the
    kit's digit metric scores per panel (MNIST only)."""

    models: tuple = ROWS
    temperatures: tuple = paper.FIG4_TEMPERATURES
    samples_per_panel: int = 64
    digit_samples: int = 1000


PRESETS = {
    "paper": Fig4Settings(**{**asdict(IMAGE_PRESETS["paper"]), "columns": (("cifar10", 5),), "models": ROWS}),
    **{name: Fig4Settings(**{**asdict(settings), "models": ROWS, "samples_per_panel": 36})
       for name, settings in IMAGE_PRESETS.items() if name != "paper"},  # quick (and classroom, where Table 2 has it)
}


def figure(panels, temperatures, title, scores=None):
    """A matplotlib figure: one row per model, one column per temperature, each panel a grid;
    ``scores[name][j]`` (optional), the digit metric of a panel, is written under it."""
    import matplotlib.pyplot as plt  # only for this figure: computing the numbers needs no plotting library

    rows = list(panels)
    fig, axes = plt.subplots(len(rows), len(temperatures), figsize=(3.2 * len(temperatures), 3.4 * len(rows)),
                             squeeze=False)
    for i, name in enumerate(rows):
        for j, temperature in enumerate(temperatures):
            grid = panels[name][j]
            ax = axes[i][j]
            if grid.shape[0] == 1:
                ax.imshow(grid[0].numpy(), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            else:
                ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"T = {temperature:g}")
            if j == 0:
                ax.set_ylabel(_SHOWN.get(name, name), fontsize=12)
            if scores and scores.get(name):
                ax.set_xlabel(f"digit FID {scores[name][j]['fid']:,.0f}, IS {scores[name][j]['is']:.2f}")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def reproduce_fig4(preset="quick", out="results", device="cpu", progress=True, root=None, runs=None, **overrides):
    """Sample the Table 2 models at each temperature; write ``fig4.png``, ``fig4.json`` and ``fig4.md``."""
    settings = choose_image_settings(PRESETS, preset, overrides, NAME)
    column = single_column(settings, root, "Fig. 4")
    device = pick_device(device)
    started = time.perf_counter()
    digits = digit_metric_applies(column.dataset, column.test) and settings.digit_samples > 0
    if digits:
        load_classifier()  # a missing or broken classifier file stops here, before any training
    image_runs = train_image_models(column, settings, preset, device, progress, runs)
    panels, models, scores = {}, {}, {}
    for name in settings.models:
        run = image_runs[name]
        panels[name] = [image_grid(samples_uint8(run.model, settings.samples_per_panel, column.bits, temperature=t),
                                   nrow=int(settings.samples_per_panel**0.5 + 0.5))
                        for t in settings.temperatures]
        if digits:  # against the held-out real digits at 8 bits
            scores[name] = [{"temperature": t, **digit_scores(
                samples_uint8(run.model, settings.digit_samples, column.bits, temperature=t), column.test)}
                for t in settings.temperatures]
        models[name] = {"latent_dim": run.metrics["latent_dim"], "bpd": run.metrics["evaluation"]["bpd"],
                        "bpd_2se": run.metrics["evaluation"]["bpd_2se"], "parameters": run.metrics["parameters"],
                        "run": str(run.out), "status": run.status, "digit_metric": scores.get(name)}
    label = f"{column.dataset} {column.bits}-bit"
    if column.stand_in:
        label += f" (stand-in for CIFAR-10 {column.bits}-bit)"
    save_figure(figure(panels, settings.temperatures, f"Samples at temperatures, {label}", scores),
                Path(out) / "fig4.png")
    result = {
        "result": NAME,
        "preset": preset,
        "device": str(device),
        "data": column.records,
        "stand_in": column.stand_in,
        "figure": "fig4.png",
        "temperatures": list(settings.temperatures),
        "samples_per_panel": settings.samples_per_panel,
        "digit_metric": METRIC_NAME if digits else DIGIT_METRIC_NOT_APPLICABLE,
        "tempered": "the base noise only; p_phi and the VAE decoder are sampled at T = 1",
        "paper_caption": paper.FIG4_CAPTION,
        "models": models,
        "seconds_this_call": time.perf_counter() - started,
        "settings": asdict(settings),
    }
    write_result(out, NAME, result, markdown(result))
    return result


def markdown(result):
    lines = [f"# Fig. 4: samples at temperatures {', '.join(f'{t:g}' for t in result['temperatures'])} "
             f"({result['preset']} preset)", "", f"![Fig. 4]({result['figure']})", "",
             f"Paper: {result['paper_caption']}", "", "Data:", *[data_line(r) for r in result["data"]], ""]
    rows = [[_SHOWN.get(name, name), f"{m['latent_dim']:,}", pm(m["bpd"], m["bpd_2se"], 3), f"{m['parameters']:,}",
             m["status"]] for name, m in result["models"].items()]
    lines += [table(["model (row)", "latent", "test bits/dim", "parameters", "status"], rows, "lrrrl"), "",
              f"Paper's funnel: latent 48, 3.7 bits/dim; its VAE: latent 48. Tempered: {result['tempered']}. "
              f"{result['samples_per_panel']} samples per panel, the same seed in every panel.", ""]
    return "\n".join(lines + digit_metric_markdown(result))


def digit_metric_markdown(result):
    """The kit's digit metric of every panel (model x T), or why there is none, as Markdown lines."""
    scored = {name: m["digit_metric"] for name, m in result["models"].items() if m.get("digit_metric")}
    if not scored:
        return [f"The kit's digit metric: {result.get('digit_metric', DIGIT_METRIC_NOT_APPLICABLE)}.", ""]
    first = next(iter(scored.values()))
    temperatures = [row["temperature"] for row in first]
    rows = [[_SHOWN.get(name, name), *[f"{row['fid']:,.0f}" for row in panels], *[f"{row['is']:.2f}" for row in panels]]
            for name, panels in scored.items()]
    return ["## The kit's digit metric at each temperature (not Inception)", "",
            f"FID and IS: {METRIC_NAME}, computed by torch-fidelity with the kit's classifier "
            f"(`funnelkit.digits.digit_metrics`), {first[0]['n']:,} samples per model and T against the "
            f"{first[0]['n_reference']:,} held-out real digits (KID in `fig4.json`). On this scale real digits score "
            "about 7, blurred ones 280, uniform noise 1,100 (`benchmarks/results/digit_metric.md`).", "",
            table(["model", *[f"FID T = {t:g}" for t in temperatures], *[f"IS T = {t:g}" for t in temperatures]],
                  rows, "l" + "r" * 2 * len(temperatures)), ""]


__all__ = ["Fig4Settings", "PRESETS", "digit_metric_markdown", "figure", "markdown", "reproduce_fig4"]
