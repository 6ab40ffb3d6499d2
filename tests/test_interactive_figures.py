"""funnelkit.viz.interactive: the plotly figures of the dashboard, from plain arrays."""

import math

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from funnelkit.models.inspection import Stage
from funnelkit.viz import interactive as iv

RNG = np.random.default_rng(0)


def gaussian_grid(resolution=30):
    axis = np.linspace(-4, 4, resolution)
    x1, x2 = np.meshgrid(axis, axis)  # rows follow x2, columns x1
    log_p = -0.5 * (x1**2 + x2**2) - math.log(2 * math.pi)
    return axis, log_p


def all_figures():
    axis, log_p = gaussian_grid()
    points = RNG.normal(size=(100, 2))
    return {
        "density": iv.density_heatmap(axis, log_p, points),
        "samples": iv.samples_scatter(points, points),
        "loss": iv.loss_curve(np.arange(1, 101), RNG.normal(size=100), reference=2.87),
        "latent": iv.latent_histogram(RNG.normal(size=(100, 2)), ks=[0.1, 0.2]),
        "stages": iv.layer_small_multiples([("x", points), ("z", points[:, :1])]),
        "funnel": iv.funnel_conditional(axis, axis, log_p, points[:, 0], points[:, 1]),
    }


@pytest.mark.parametrize("name", list(all_figures()))
def test_every_figure_reads_on_light_and_dark_themes(name):
    fig = all_figures()[name]
    assert isinstance(fig, go.Figure)
    assert fig.layout.paper_bgcolor == iv.TRANSPARENT and fig.layout.plot_bgcolor == iv.TRANSPARENT
    assert fig.layout.template.layout.paper_bgcolor in (None, "white")  # the host's theme decides
    assert fig.layout.font.color is None  # no hard-coded text colour
    assert fig.layout.title.font.color is None
    for axis in (fig.layout.xaxis, fig.layout.yaxis):
        assert axis.title.font.color is None and axis.tickfont.color is None
    for annotation in fig.layout.annotations:
        assert annotation.font.color is None
    fig.to_json()  # serialisable, as Streamlit needs


def test_density_heatmap_shows_p_and_the_data():
    axis, log_p = gaussian_grid()
    points = RNG.normal(size=(50, 2))
    fig = iv.density_heatmap(axis, log_p, points)
    heatmap, scatter = fig.data
    assert heatmap.type == "heatmap" and scatter.type == "scatter"
    z = np.asarray(heatmap.z)
    assert z.shape == (30, 30) and np.allclose(z, np.exp(np.maximum(log_p, -12.0)))  # p (floored), not log p
    assert heatmap.zmax == pytest.approx(np.percentile(np.exp(log_p), 99.5))
    assert np.allclose(scatter.x, points[:, 0]) and np.allclose(scatter.y, points[:, 1])
    assert fig.layout.yaxis.scaleanchor == "x"  # square pixels: circles look round
    assert len(iv.density_heatmap(axis, log_p).data) == 1


def test_density_heatmap_log_scale_clips_at_the_floor():
    axis, log_p = gaussian_grid()
    log_p[0, 0] = -np.inf
    z = np.asarray(iv.density_heatmap(axis, log_p, log_scale=True, floor=-10.0).data[0].z)
    assert z.min() == -10.0 and z[15, 15] == pytest.approx(log_p[15, 15])


def test_density_heatmap_accepts_tensors_and_rejects_wrong_shapes():
    axis, log_p = gaussian_grid(10)
    iv.density_heatmap(torch.tensor(axis), torch.tensor(log_p), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="must have shape \\(10, 10\\)"):
        iv.density_heatmap(axis, log_p[:, :9])
    with pytest.raises(ValueError, match="data must have shape"):
        iv.density_heatmap(axis, log_p, np.zeros((5, 3)))


def test_samples_scatter():
    samples = RNG.normal(size=(40, 2))
    fig = iv.samples_scatter(samples)
    assert len(fig.data) == 1 and np.allclose(fig.data[0].x, samples[:, 0])
    fig = iv.samples_scatter(samples, samples[:10])
    assert [t.name for t in fig.data] == ["data", "samples"]  # samples drawn on top
    with pytest.raises(ValueError, match="samples must have shape"):
        iv.samples_scatter(np.zeros(5))


def test_running_mean_matches_a_plain_loop():
    values = RNG.normal(size=37)
    expected = [values[max(0, i - 4): i + 1].mean() for i in range(37)]
    assert np.allclose(iv.running_mean(values, 5), expected)


def test_loss_curve():
    steps = np.arange(1, 5001)
    losses = 3 + 5 * np.exp(-steps / 500) + 0.1 * RNG.normal(size=5000)
    fig = iv.loss_curve(steps, losses, reference=2.87, window=50, max_points=400)
    raw, mean = fig.data
    assert len(raw.x) <= 400 and raw.x[0] == 1 and raw.x[-1] == 5000  # downsampled, ends kept
    assert mean.y[-1] == pytest.approx(losses[-50:].mean())
    assert [s.y0 for s in fig.layout.shapes] == [2.87]  # the best possible loss
    low, high = fig.layout.yaxis.range
    assert low < 2.87 < high


def test_loss_curve_before_training_and_bad_input():
    fig = iv.loss_curve([], [])
    assert len(fig.data) == 0
    fig = iv.loss_curve([1], [4.0])
    assert len(fig.data) == 2
    with pytest.raises(ValueError, match="same length"):
        iv.loss_curve([1, 2], [1.0])


def test_latent_histogram_has_a_normalised_reference():
    z = RNG.normal(size=(500, 2))
    fig = iv.latent_histogram(z, ks=[0.01, 0.02])
    histograms = [t for t in fig.data if t.type == "histogram"]
    (line,) = [t for t in fig.data if t.type == "scatter"]
    assert len(histograms) == 2 and histograms[0].histnorm == "probability density"
    assert "KS 0.010" in histograms[0].name and "KS 0.020" in histograms[1].name
    x, y = np.asarray(line.x), np.asarray(line.y)
    assert np.trapezoid(y, x) == pytest.approx(1.0, abs=1e-3)  # N(0, 1) over [-4, 4]
    assert len(iv.latent_histogram(z[:, 0]).data) == 2  # one latent as a vector
    with pytest.raises(ValueError, match="one value per latent"):
        iv.latent_histogram(z, ks=[0.1])


def test_layer_small_multiples():
    x = RNG.normal(size=(60, 2))
    stages = [Stage("data x", x), Stage("spline", x * 2), ("funnel", x[:, :1])]
    fig = iv.layer_small_multiples(stages)
    assert len(fig.data) == 3
    assert [a.text for a in fig.layout.annotations] == ["data x", "spline", "funnel"]
    colours = [np.asarray(t.marker.color) for t in fig.data]
    assert all(np.allclose(c, colours[0]) for c in colours)  # the same colour follows each point
    assert np.allclose(colours[0], iv.angle_colours(x))
    assert np.allclose(fig.data[2].x, x[:, 0])  # 1-D stage: the value on the x axis
    with pytest.raises(ValueError, match="shape \\(60, 1\\) or \\(60, 2\\)"):
        iv.layer_small_multiples([("a", x), ("b", x[:30])])
    with pytest.raises(ValueError, match="at least one"):
        iv.layer_small_multiples([])


def test_funnel_conditional():
    z_axis, m_axis = np.linspace(-3, 3, 12), np.linspace(-2, 2, 8)
    log_p = RNG.normal(size=(8, 12))
    fig = iv.funnel_conditional(z_axis, m_axis, log_p, z=np.zeros(5), x_minus=np.ones(5))
    heatmap, scatter = fig.data
    assert np.allclose(heatmap.x, z_axis) and np.allclose(heatmap.y, m_axis)
    assert np.allclose(np.asarray(heatmap.z), np.exp(log_p))
    assert scatter.name == "data" and len(scatter.x) == 5
    with pytest.raises(ValueError, match="\\(8, 12\\)"):
        iv.funnel_conditional(z_axis, m_axis, log_p.T)
    with pytest.raises(ValueError, match="same length"):
        iv.funnel_conditional(z_axis, m_axis, log_p, z=np.zeros(5), x_minus=np.ones(4))
