"""The dashboard's three live plots of a 2-D run (density, samples, loss) as the data a small script of ours,
``canvas_plots.js``, draws on a canvas.

Why not plotly here: a page shows a canvas plot as soon as its text, without the browser first loading a 4.7 MB
plotting library, and the dashboard updates a canvas plot in place five times a second while Play trains (a
keyed plotly chart in Streamlit 1.67 is mounted anew with every new figure: its plot blinks). The values are
those of the plotly figures in :mod:`.interactive`, from the same :mod:`.plot_values`; the notebooks keep plotly.

Each function returns a dict of JSON values, ``kind`` naming the plot. Arrays of numbers travel as text:
points and lines as float32 (little-endian, base64; the keys listed in ``arrays``, decoded by :func:`decoded`
and by the script), which Streamlit serialises and hashes some twenty times faster than lists of floats
(0.3 ms against 7.5 ms for the three plots here; it does both for every plot of every page at every redraw). The density is sent as 8-bit colour levels,
level ``L`` meaning p = L / 255 * ``top``, and each level a colour of plotly's Viridis (the script's ``VIRIDIS``).
No function here imports a plotting library or torch.
"""

import base64
from pathlib import Path

import numpy as np

from .plot_values import BOUNDS, as_array, density_colours, loss_lines

SCRIPT = Path(__file__).with_name("canvas_plots.js")  # the script that draws them, mounted once per page
# What each plot's element runs: the page's script draws it (or will, once that script has run). A component's
# script travels with every message of the component, so the 15 KB script goes once per page, this at each redraw.
STUB = """export default function (component) {
  if (window.funnelkitPlot) return window.funnelkitPlot(component);
  (window.funnelkitPlotWaiting = window.funnelkitPlotWaiting || []).push(component);
}"""
LEVELS = 255  # the top colour level of a density plot


def _float32(values):
    """An array as base64 text of its float32 values, little-endian, flattened row by row."""
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f4").tobytes()).decode("ascii")


def _points(values, name):
    """(n, 2) points as :func:`_float32` text of x0, y0, x1, y1, ... (None: no points)."""
    return _float32(np.empty((0, 2)) if values is None else as_array(values, name, width=2))


def decoded(plot):
    """``plot`` with its ``arrays`` as float64 numpy arrays (flat), as the script reads them."""
    return {**plot, **{key: np.frombuffer(base64.b64decode(plot[key]), dtype="<f4").astype(np.float64)
                       for key in plot["arrays"]}}


def density_levels(log_density):
    """The 8-bit colour levels (uint8, same shape) of a log-density grid and the density ``top`` that level
    :data:`LEVELS` stands for: p scaled by ``top`` (the 99.5th percentile of p, :func:`.plot_values.density_colours`),
    rounded, and saturated above it."""
    p, top = density_colours(as_array(log_density, "log_density", ndim=2))
    top = top if top is not None else max(float(p.max()), np.finfo(np.float64).tiny)
    return np.clip(np.round(p / top * LEVELS), 0, LEVELS).astype(np.uint8), top


def density_plot(axis, log_density, data=None, title="Model density p(x)", height=380):
    """The model's density on a square grid (``log_density[i, j] = log p(x1=axis[j], x2=axis[i])``), with
    ``data`` points on top. Each grid value fills a cell centred on its grid point."""
    axis = as_array(axis, "axis", ndim=1)
    log_density = as_array(log_density, "log_density", ndim=2)
    if axis.size < 2 or log_density.shape != (axis.size, axis.size):
        raise ValueError(f"log_density must have shape ({axis.size}, {axis.size}) to match an axis of at least "
                         f"2 points, got {log_density.shape}")
    levels, top = density_levels(log_density)
    half = (axis[-1] - axis[0]) / (axis.size - 1) / 2
    return {"kind": "density", "title": title, "height": height, "size": int(axis.size),
            "range": [float(axis[0] - half), float(axis[-1] + half)], "top": top,
            "levels": base64.b64encode(levels.tobytes()).decode("ascii"),
            "data": _points(data, "data"), "arrays": ["data"]}


def samples_plot(samples, data=None, title="Samples from the model", bounds=BOUNDS, height=380):
    """Model samples (blue) over the data (grey), on equal axes over ``bounds``."""
    return {"kind": "samples", "title": title, "height": height, "range": [float(bounds[0]), float(bounds[1])],
            "samples": _points(samples, "samples"), "data": _points(data, "data"), "arrays": ["samples", "data"]}


def loss_plot(steps, losses, reference=None, window=50, max_points=1500, title="Training loss", height=380):
    """The loss per step (grey), its running mean over ``window`` steps (blue), and the best possible loss
    ``reference`` (dashed) if known; at most ``max_points`` points per line."""
    steps = as_array(steps, "steps", ndim=1)
    losses = as_array(losses, "losses", ndim=1)
    if steps.shape != losses.shape:
        raise ValueError(f"steps and losses must have the same length, got {steps.size} and {losses.size}")
    lines = {"steps": steps, "losses": losses, "mean_steps": steps, "means": losses}  # empty
    plot = {"kind": "loss", "title": title, "height": height, "window": 0, "y_range": None,
            "reference": None if reference is None else float(reference), "arrays": list(lines)}
    if steps.size:
        k, (raw_x, raw_y), (mean_x, mean_y), y_range = loss_lines(steps, losses, reference, window, max_points)
        lines = {"steps": raw_x, "losses": raw_y, "mean_steps": mean_x, "means": mean_y}
        plot.update(window=int(k), y_range=[float(y_range[0]), float(y_range[1])])
    return {**plot, **{key: _float32(values) for key, values in lines.items()}}
