"""Matplotlib figures of the four-circles experiment (paper Fig. 2 and Fig. 5)."""

import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..grid import grid_log_prob
from .plot_values import BOUNDS
STYLE = {"figure.facecolor": "white", "axes.facecolor": "white", "savefig.facecolor": "white"}


def _panel_hist2d(ax, x, title, bins=200):
    """A 2-D histogram of points on ``ax`` with a colourbar of how many points fall in each bin."""
    x = np.asarray(x)
    *_, image = ax.hist2d(x[:, 0], x[:, 1], bins=bins, range=[BOUNDS, BOUNDS], cmap="viridis")
    ax.figure.colorbar(image, ax=ax, label="points per bin")
    ax.set_aspect("equal")
    ax.set_title(title)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")


def data_figure(x, title="Four circles (paper Fig. 5)"):
    """A 2-D histogram of data points."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(4.2, 4.2), layout="constrained")
        _panel_hist2d(ax, x, title)
    return fig


def latent_histogram(ax, z, title="Encoded data"):
    """Histogram of a 1-D latent against the N(0, 1) density."""
    z = np.asarray(z).ravel()
    ax.hist(z, bins=100, range=(-4, 4), density=True, color="tab:blue", alpha=0.7, label="model encoding")
    t = np.linspace(-4, 4, 400)
    ax.plot(t, np.exp(-t**2 / 2) / math.sqrt(2 * math.pi), color="black", label="N(0, 1)")
    ax.set_title(title)
    ax.set_xlabel("z")
    ax.legend(loc="upper right", fontsize=9)


@torch.no_grad()
def fig2(model, x, n_samples=100_000, resolution=300, seed=0):
    """Paper Fig. 2: encoded data against N(0, 1), samples, and the model likelihood."""
    torch.manual_seed(seed)
    model.eval()
    x = x.to(device=model.device, dtype=model.dtype)
    z = model.encode(x).cpu()
    samples = model.sample(n_samples).cpu()
    axis, log_p = grid_log_prob(lambda p: model.log_prob(p.to(model.device, model.dtype)).cpu(), BOUNDS, resolution)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 3, figsize=(12.5, 4.0), layout="constrained")
        if z.shape[1] == 1:
            latent_histogram(axes[0], z)
        else:
            for i in range(z.shape[1]):
                axes[0].hist(z[:, i].numpy(), bins=100, range=(-4, 4), density=True, alpha=0.5, label=f"$z_{i + 1}$")
            t = np.linspace(-4, 4, 400)
            axes[0].plot(t, np.exp(-t**2 / 2) / math.sqrt(2 * math.pi), color="black", label="N(0, 1)")
            axes[0].legend(fontsize=9)
            axes[0].set_title("Encoded data")
        _panel_hist2d(axes[1], samples.numpy(), "Samples")
        image = axes[2].imshow(
            log_p.clamp(min=-12).numpy(), origin="lower", extent=[*BOUNDS, *BOUNDS], cmap="viridis"
        )
        fig.colorbar(image, ax=axes[2], label="log p(x)")
        axes[2].set_title("Model log-likelihood")
        axes[2].set_xlabel("$x_1$")
        axes[2].set_ylabel("$x_2$")
    return fig
