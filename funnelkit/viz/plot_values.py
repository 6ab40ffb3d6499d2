"""The numbers a plot shows, apart from any plotting library: a density grid's colour values, a loss
history's running mean and the lines drawn of it. Shared by the plotly figures (:mod:`.interactive`) and the
dashboard's canvas plots (:mod:`.canvas_plots`), so that both show the same values; this module imports numpy
only, so a page can compute them before any plotting library has loaded."""

import numpy as np

BOUNDS = (-4.0, 4.0)  # the 2-D toys' square, on both axes


def as_array(values, name, ndim=None, width=None):
    """``values`` (numpy, torch or a sequence) as a float64 array, checked for ``ndim`` dimensions or shape
    ``(n, width)``."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    values = np.asarray(values, dtype=np.float64)
    if ndim is not None and values.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {values.shape}")
    if width is not None and (values.ndim != 2 or values.shape[1] != width):
        raise ValueError(f"{name} must have shape (n, {width}), got {values.shape}")
    return values


def density_colours(log_density, log_scale=False, floor=-12.0):
    """A density heatmap's colour values and top colour (None: the plot's own top) for a log-density grid:
    p (or log p), non-finite log p at ``floor``, and the top 0.5 % saturated, since a fresh model can put a
    thin spike somewhere and the rest would not show."""
    finite = np.where(np.isfinite(log_density), log_density, floor)
    values = np.clip(finite, floor, None) if log_scale else np.exp(np.clip(finite, floor, 50))
    top = float(np.percentile(values, 99.5))
    return values, (top if top > (floor if log_scale else 0.0) else None)


def downsample(x, y, max_points):
    """At most ``max_points`` of the points (x, y), evenly spaced in index, the first and last kept."""
    if len(x) <= max_points:
        return x, y
    index = np.unique(np.linspace(0, len(x) - 1, max_points).round().astype(int))
    return x[index], y[index]


def running_mean(values, window):
    """The mean of the last ``window`` values at each position (fewer at the start)."""
    values = as_array(values, "values", ndim=1)
    totals = np.concatenate([[0.0], np.cumsum(values)])
    index = np.arange(1, values.size + 1)
    start = np.maximum(index - window, 0)
    return (totals[index] - totals[start]) / (index - start)


def loss_lines(steps, losses, reference, window, max_points):
    """A loss chart's running-mean window, its two (downsampled) lines, per step and mean, and its y range:
    from the 1st percentile of the losses (or the reference, if lower) to the 99th of all but the first tenth."""
    k = max(1, min(window, steps.size))
    raw = downsample(steps, losses, max_points)
    mean = downsample(steps, running_mean(losses, k), max_points)
    low = min(np.percentile(losses, 1), reference if reference is not None else np.inf)
    high = np.percentile(losses[len(losses) // 10:], 99) if losses.size > 10 else losses.max()
    span = max(high - low, 1e-3)
    return k, raw, mean, [low - 0.05 * span, high + 0.1 * span]
