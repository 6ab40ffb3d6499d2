"""Plotly figures for the dashboard (and for notebooks that want to zoom and hover).

Every function takes plain arrays (numpy or torch) and returns a ``plotly.graph_objects.Figure``;
none computes a model. The figures read on light and dark themes: backgrounds are transparent
and no text colour is set, so the host (Streamlit's theme, JupyterLab's) picks one.
"""

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .plot_values import BOUNDS, density_colours, running_mean  # noqa: F401 (running_mean: part of this API)
from .plot_values import as_array as _array
from .plot_values import loss_lines as _loss_lines

TRANSPARENT = "rgba(0,0,0,0)"
SEQUENTIAL = "Viridis"  # readable on both themes and for colour-blind readers
CYCLIC = "mrybm"  # for colouring points by angle: cyclic, and no colour in it is near black or white
FONT_SIZE = 14  # tick labels, legends and colour bars: readable from the back of a classroom
DATA_COLOUR = "rgba(239, 85, 59, 0.55)"  # data over a heatmap (plotly's red, half transparent)
MODEL_COLOUR = "rgba(99, 110, 250, 0.6)"  # model samples (plotly's blue)
LINE_COLOUR = "rgb(99, 110, 250)"  # the running mean of the loss
REFERENCE_COLOUR = "rgb(239, 85, 59)"  # the best possible loss
NEUTRAL = "rgba(128, 128, 128, 0.35)"  # mid grey: visible on white and on black


def _style(fig, title=None, height=380, square=False):
    """Transparent backgrounds, compact margins, theme-neutral text of at least :data:`FONT_SIZE` px."""
    fig.update_layout(
        title=dict(text=title, font=dict(size=FONT_SIZE + 2)) if title else None,
        font=dict(size=FONT_SIZE),
        paper_bgcolor=TRANSPARENT,
        plot_bgcolor=TRANSPARENT,
        height=height,
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        # the legend sits in the title's row, on the right: no height lost below the plot
        legend=dict(bgcolor=TRANSPARENT, orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0,
                    font=dict(size=FONT_SIZE)),
    )
    # Set on the axes and colour bars themselves: a host's theme template (Streamlit's) sets smaller ticks.
    fig.update_xaxes(tickfont=dict(size=FONT_SIZE), title_font=dict(size=FONT_SIZE))
    fig.update_yaxes(tickfont=dict(size=FONT_SIZE), title_font=dict(size=FONT_SIZE))
    fig.for_each_trace(lambda t: t.update(colorbar=dict(tickfont=dict(size=FONT_SIZE))) if t.type == "heatmap" else None)
    if square:  # equal units on both axes; shrink the plot area rather than widen a range
        fig.update_xaxes(constrain="domain")
        fig.update_yaxes(scaleanchor="x", scaleratio=1, constrain="domain")
    return fig


def density_heatmap(axis, log_density, data=None, title="Model density p(x)", log_scale=False, floor=-12.0,
                    height=380):
    """The model's density on a square grid, with data points on top.

    Args:
        axis: (R,) grid cell centres, the same on both axes.
        log_density: (R, R) with ``log_density[i, j] = log p(x1=axis[j], x2=axis[i])``.
        data: optional (n, 2) points to overlay.
        log_scale: colour by log p (clipped at ``floor``) instead of p.
    """
    axis = _array(axis, "axis", ndim=1)
    log_density = _array(log_density, "log_density", ndim=2)
    if log_density.shape != (axis.size, axis.size):
        raise ValueError(
            f"log_density must have shape ({axis.size}, {axis.size}) to match axis, got {log_density.shape}"
        )
    values, top = density_colours(log_density, log_scale, floor)
    label = "log p" if log_scale else "p"
    fig = go.Figure(
        go.Heatmap(
            x=axis, y=axis, z=values, colorscale=SEQUENTIAL, name="log p(x)" if log_scale else "p(x)",
            zmin=floor if log_scale else 0.0, zmax=top,
            colorbar=dict(title=dict(text="log p" if log_scale else "p"), thickness=12),
            hovertemplate="x1=%{x:.2f}<br>x2=%{y:.2f}<br>" + label + "=%{z:.3g}<extra></extra>",
        )
    )
    if data is not None:
        data = _array(data, "data", width=2)
        fig.add_trace(
            go.Scatter(x=data[:, 0], y=data[:, 1], mode="markers", name="data",
                       marker=dict(size=3, color=DATA_COLOUR), hoverinfo="skip")
        )
    fig.update_xaxes(range=[axis[0], axis[-1]], title_text="x₁", showgrid=False, zeroline=False)
    fig.update_yaxes(range=[axis[0], axis[-1]], title_text="x₂", showgrid=False, zeroline=False)
    return _style(fig, title, height=height, square=True)


def samples_scatter(samples, data=None, title="Samples from the model", bounds=BOUNDS, height=380):
    """Model samples (blue) over the data (grey)."""
    samples = _array(samples, "samples", width=2)
    fig = go.Figure()
    if data is not None:
        data = _array(data, "data", width=2)
        fig.add_trace(go.Scatter(x=data[:, 0], y=data[:, 1], mode="markers", name="data",
                                 marker=dict(size=3, color=NEUTRAL), hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=samples[:, 0], y=samples[:, 1], mode="markers", name="samples",
                             marker=dict(size=3, color=MODEL_COLOUR), hoverinfo="skip"))
    fig.update_xaxes(range=list(bounds), title_text="x₁", zeroline=False)
    fig.update_yaxes(range=list(bounds), title_text="x₂", zeroline=False)
    return _style(fig, title, height=height, square=True)


def loss_curve(steps, losses, reference=None, window=50, max_points=1500, title="Training loss (−log p, nats)",
               height=380):
    """The loss per step (faint), its running mean, and the best possible loss if known.

    Args:
        steps, losses: equal-length sequences (the Trainer's ``history``).
        reference: the true density's loss, -E log p(x), drawn as a dashed line.
        window: steps in the running mean.
    """
    steps = _array(steps, "steps", ndim=1)
    losses = _array(losses, "losses", ndim=1)
    if steps.shape != losses.shape:
        raise ValueError(f"steps and losses must have the same length, got {steps.size} and {losses.size}")
    fig = go.Figure()
    if steps.size:
        k, (raw_x, raw_y), (mean_x, mean_y), y_range = _loss_lines(steps, losses, reference, window, max_points)
        fig.add_trace(go.Scatter(x=raw_x, y=raw_y, mode="lines", name="per step",
                                 line=dict(width=1, color=NEUTRAL)))
        fig.add_trace(go.Scatter(x=mean_x, y=mean_y, mode="lines", name=f"mean of {k}",
                                 line=dict(width=2, color=LINE_COLOUR)))
        fig.update_yaxes(range=y_range)
    if reference is not None:
        fig.add_hline(y=reference, line=dict(dash="dash", width=1, color=REFERENCE_COLOUR),
                      annotation_text=f"true density {reference:.3f}", annotation_position="bottom left")
    fig.update_xaxes(title_text="iteration")
    fig.update_yaxes(title_text="nats")
    return _style(fig, title, height=height)


def normal_pdf(t):
    return np.exp(-0.5 * t**2) / math.sqrt(2 * math.pi)


def latent_histogram(z, ks=None, title="Encoded data against N(0, 1)", bins=60, bounds=BOUNDS):
    """A histogram of each latent coordinate with the N(0, 1) density on top.

    Args:
        z: (n, d) latents (or (n,) for one).
        ks: optional list of KS distances, one per latent, shown in the legend.
    """
    z = _array(z, "z")
    z = z[:, None] if z.ndim == 1 else z
    if z.ndim != 2:
        raise ValueError(f"z must have shape (n, d), got {z.shape}")
    if ks is not None and len(ks) != z.shape[1]:
        raise ValueError(f"ks needs one value per latent ({z.shape[1]}), got {len(ks)}")
    fig = go.Figure()
    low, high = bounds
    for i in range(z.shape[1]):
        name = f"z{_subscript(i + 1)}" if z.shape[1] > 1 else "z"
        if ks is not None:
            name += f" (KS {ks[i]:.3f})"
        fig.add_trace(go.Histogram(x=z[:, i], histnorm="probability density", name=name, opacity=0.6,
                                   xbins=dict(start=low, end=high, size=(high - low) / bins)))
    t = np.linspace(low, high, 400)
    fig.add_trace(go.Scatter(x=t, y=normal_pdf(t), mode="lines", name="N(0, 1)",
                             line=dict(width=2, dash="dash", color=REFERENCE_COLOUR)))
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(range=[low, high], title_text="z")
    fig.update_yaxes(title_text="density")
    return _style(fig, title)


def _subscript(i):
    return str(i).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))


def angle_colours(points):
    """A colour value per point: its angle around the centre of the points (for tracking)."""
    points = _array(points, "points", width=2)
    centred = points - points.mean(axis=0)
    return np.arctan2(centred[:, 1], centred[:, 0])


def layer_small_multiples(stages, colour=None, height=300, colour_label=None):
    """The data after each layer, side by side: 2-D stages as scatter plots, 1-D as strips.

    Args:
        stages: a list of ``(title, points)`` with points (n, 1) or (n, 2), all of the same n
            (or objects with ``.title`` and ``.points``).
        colour: (n,) values to colour points by, the same in every panel, so a reader can follow
            points through the layers (default: the angle of each input point).
        colour_label: the title of the colour bar (default: what the default colour is).
    """
    stages = [(s.title, s.points) if hasattr(s, "points") else tuple(s) for s in stages]
    if not stages:
        raise ValueError("stages must hold at least one (title, points) pair")
    arrays = [_array(p, f"points of {t!r}", ndim=2) for t, p in stages]
    n = arrays[0].shape[0]
    for (title, _), points in zip(stages, arrays):
        if points.shape[0] != n or points.shape[1] not in (1, 2):
            raise ValueError(f"stage {title!r} must have shape ({n}, 1) or ({n}, 2), got {points.shape}")
    if colour is None:
        two_d = arrays[0].shape[1] == 2
        colour = angle_colours(arrays[0]) if two_d else arrays[0][:, 0]
        colour_label = colour_label or ("angle in<br>the data" if two_d else "input<br>value")
    colour = _array(colour, "colour", ndim=1)
    if colour.size != n:
        raise ValueError(f"colour needs one value per point ({n}), got {colour.size}")
    fig = make_subplots(rows=1, cols=len(stages), subplot_titles=[t for t, _ in stages], horizontal_spacing=0.04)
    jitter = np.random.default_rng(0).uniform(-1, 1, n)  # spreads a 1-D strip so its density shows
    for col, points in enumerate(arrays, start=1):
        if points.shape[1] == 2:
            x, y = points[:, 0], points[:, 1]
            fig.update_xaxes(title_text="1st coordinate", row=1, col=col)
            fig.update_yaxes(title_text="2nd coordinate" if col == 1 else None, row=1, col=col)
        else:
            x, y = points[:, 0], jitter
            fig.update_xaxes(title_text="its one coordinate", row=1, col=col)
            fig.update_yaxes(showticklabels=False, showgrid=False, range=[-1.5, 1.5], title_text="jitter", row=1,
                             col=col)
        # one colour bar (on the last panel) says what the colours mean
        marker = dict(size=4, color=colour, colorscale=CYCLIC, showscale=col == len(arrays),
                      colorbar=dict(title=dict(text=colour_label or "colour"), thickness=12))
        fig.add_trace(go.Scatter(x=x, y=y, mode="markers", marker=marker, showlegend=False, hoverinfo="skip"),
                      row=1, col=col)
    fig.update_xaxes(zeroline=False)
    fig.update_yaxes(zeroline=False)
    fig.update_annotations(font_size=FONT_SIZE)
    _style(fig, None, height=height)
    fig.update_layout(margin=dict(t=40))  # room for the panel titles
    return fig


def funnel_conditional(z_axis, x_minus_axis, log_p, z=None, x_minus=None,
                       title="Dropped coordinate x₋ against z, with p_φ(x₋ | z)"):
    """The funnel's decoder p_phi(x_- | z) as a heatmap, with the data's (z, x_-) on top.

    Args:
        z_axis: (Z,) values of z (columns); x_minus_axis: (M,) values of x_- (rows).
        log_p: (M, Z) with ``log_p[i, j] = log p_phi(x_minus_axis[i] | z_axis[j])``.
        z, x_minus: optional (n,) coordinates of the data inside the funnel.
    """
    z_axis = _array(z_axis, "z_axis", ndim=1)
    x_minus_axis = _array(x_minus_axis, "x_minus_axis", ndim=1)
    log_p = _array(log_p, "log_p", ndim=2)
    if log_p.shape != (x_minus_axis.size, z_axis.size):
        raise ValueError(
            f"log_p must have shape (len(x_minus_axis), len(z_axis)) = "
            f"({x_minus_axis.size}, {z_axis.size}), got {log_p.shape}"
        )
    density = np.exp(np.clip(np.nan_to_num(log_p, nan=-50.0, neginf=-50.0), -50, 50))
    top = float(np.percentile(density, 99.5))
    fig = go.Figure(
        go.Heatmap(x=z_axis, y=x_minus_axis, z=density, colorscale=SEQUENTIAL, name="p_φ(x₋ | z)",
                   zmin=0.0, zmax=top if top > 0 else None,
                   colorbar=dict(title=dict(text="p_φ"), thickness=12),
                   hovertemplate="z=%{x:.2f}<br>x₋=%{y:.2f}<br>p_φ=%{z:.3g}<extra></extra>")
    )
    if z is not None and x_minus is not None:
        z = _array(z, "z", ndim=1)
        x_minus = _array(x_minus, "x_minus", ndim=1)
        if z.size != x_minus.size:
            raise ValueError(f"z and x_minus must have the same length, got {z.size} and {x_minus.size}")
        fig.add_trace(go.Scatter(x=z, y=x_minus, mode="markers", name="data",
                                 marker=dict(size=3, color=DATA_COLOUR), hoverinfo="skip"))
    fig.update_xaxes(range=[z_axis[0], z_axis[-1]], title_text="z (kept, after F⁻¹)", showgrid=False, zeroline=False)
    fig.update_yaxes(range=[x_minus_axis[0], x_minus_axis[-1]], title_text="x₋ (dropped)", showgrid=False,
                     zeroline=False)
    return _style(fig, title)
