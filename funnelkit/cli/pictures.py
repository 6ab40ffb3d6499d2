"""The pictures ``funnelkit sample`` writes: a 2-D histogram of four circles, a corner plot of
tabular samples, a grid of images."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from ..experiments.results import save_figure, save_image_grid
from ..viz.figures import data_figure
from .printing import TEMPERED


def check_png(out) -> Path:
    """``out`` as a Path, refused unless it names a .png file."""
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise ValueError(f"--out must name a .png file, got {out}")
    return out


def save_samples(samples, spec, out, temperature, temper="base") -> Path:
    """Save the samples of a run (:func:`funnelkit.experiments.commands.draw_samples`) as the PNG ``out``."""
    n = len(samples)
    if spec.experiment == "four-circles":
        out.parent.mkdir(parents=True, exist_ok=True)
        figure = data_figure(samples, title=f"{n:,} samples, temperature {temperature:g} ({TEMPERED[temper]})")
        figure.savefig(out, dpi=110)
        plt.close(figure)
    elif spec.experiment == "tabular":
        tempered = "" if temper == "base" else f", temper {temper}"
        title = f"{n:,} samples of {spec.model} ({spec.dataset}), temperature {temperature:g}{tempered}"
        save_figure(corner_figure(samples, title), out)
    else:
        save_image_grid(samples, out, nrow=math.ceil(math.sqrt(n)))
    return out


def corner_figure(samples, title, max_dims=4, bins=60):
    """A corner plot of the first ``max_dims`` dimensions: histograms on the diagonal, 2-D
    histograms below it."""
    x = np.asarray(samples, dtype=np.float64)
    k = min(max_dims, x.shape[1])
    low, high = np.percentile(x[:, :k], 0.5, axis=0), np.percentile(x[:, :k], 99.5, axis=0)
    fig, axes = plt.subplots(k, k, figsize=(2.2 * k, 2.2 * k), squeeze=False, facecolor="white")
    for i in range(k):
        for j in range(k):
            ax = axes[i, j]
            if j > i:
                ax.axis("off")
                continue
            if i == j:
                ax.hist(x[:, i], bins=bins, range=(low[i], high[i]), color="tab:blue")
                ax.set_yticks([])
            else:
                ax.hist2d(x[:, j], x[:, i], bins=bins, range=[(low[j], high[j]), (low[i], high[i])], cmap="viridis")
            if i == k - 1:
                ax.set_xlabel(f"$x_{{{j + 1}}}$")
            if j == 0 and i > 0:
                ax.set_ylabel(f"$x_{{{i + 1}}}$")
    shown = f"first {k} of {x.shape[1]} dimensions" if k < x.shape[1] else f"{k} dimensions"
    fig.suptitle(f"{title}\n({shown})", fontsize=9)
    fig.tight_layout()
    return fig


__all__ = ["check_png", "corner_figure", "save_samples"]
