"""funnelkit.viz.canvas_plots: the Train tab's live plots as data, and canvas_plots.js drawing them in chromium.

The data side is checked against the quantities computed directly (p from log p, the running mean of the
last steps); the drawing side by reading back the canvas's pixels where the data says a colour must be.
"""

import base64
import json
import math

import numpy as np
import pytest
import torch

from funnelkit.viz import canvas_plots as cp
from funnelkit.viz import interactive as iv

from .test_browser import chromium_browser, require_browser

RNG = np.random.default_rng(0)


def gaussian_grid(resolution=30):
    axis = np.linspace(-4, 4, resolution)
    x1, x2 = np.meshgrid(axis, axis)  # rows follow x2, columns x1
    return axis, -0.5 * (x1**2 + x2**2) - math.log(2 * math.pi)


def levels_of(plot):
    return np.frombuffer(base64.b64decode(plot["levels"]), dtype=np.uint8).reshape(plot["size"], plot["size"])


def test_density_levels_give_p_to_half_a_level():
    axis, log_p = gaussian_grid()
    plot = cp.density_plot(axis, log_p, RNG.normal(size=(20, 2)))
    p = np.exp(log_p)
    assert plot["top"] == pytest.approx(np.percentile(p, 99.5))
    shown = levels_of(plot) / cp.LEVELS * plot["top"]
    inside = p <= plot["top"]
    assert np.all(np.abs(shown[inside] - p[inside]) <= plot["top"] / (2 * cp.LEVELS) + 1e-12)
    assert np.all(levels_of(plot)[~inside] == cp.LEVELS)  # saturated above the top
    # the four cells nearest the origin (rows and columns 14 and 15 of 30) hold the highest level
    assert levels_of(plot)[14:16, 14:16].min() == levels_of(plot).max() > levels_of(plot)[13, 13]
    half = (axis[1] - axis[0]) / 2
    assert plot["range"] == pytest.approx([-4 - half, 4 + half])  # each value fills the cell centred on it
    json.dumps(plot)  # what Streamlit sends


def test_density_plot_of_an_asymmetric_grid_keeps_its_orientation():
    axis = np.linspace(-4, 4, 9)
    log_p = np.full((9, 9), -30.0)
    log_p[7, 2] = 0.0  # x2 = axis[7] = 3, x1 = axis[2] = -2
    levels = levels_of(cp.density_plot(axis, log_p))
    assert levels[7, 2] == cp.LEVELS and levels.sum() == cp.LEVELS


def test_density_plot_takes_tensors_and_non_finite_values_and_refuses_wrong_shapes():
    axis, log_p = gaussian_grid(10)
    log_p[0, 0] = -np.inf
    log_p[1, 1] = np.nan
    plot = cp.density_plot(torch.as_tensor(axis), torch.as_tensor(log_p))
    assert levels_of(plot)[0, 0] == 0 and levels_of(plot)[1, 1] == 0 and cp.decoded(plot)["data"].size == 0
    with pytest.raises(ValueError, match=r"\(10, 10\)"):
        cp.density_plot(axis, log_p[:, :5])
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        cp.density_plot(axis, log_p, data=np.zeros((4, 3)))


def test_a_grid_without_finite_values_is_one_colour_at_the_floor():
    axis = np.linspace(-1, 1, 4)
    plot = cp.density_plot(axis, np.full((4, 4), -np.inf))
    assert plot["top"] == pytest.approx(math.exp(-12.0)) and np.all(levels_of(plot) == cp.LEVELS)


def test_samples_plot_keeps_the_points_in_float32():
    samples, data = RNG.normal(size=(50, 2)), RNG.normal(size=(30, 2))
    plot = cp.samples_plot(torch.as_tensor(samples), data)
    shown = cp.decoded(plot)
    assert np.array_equal(shown["samples"].reshape(-1, 2), samples.astype(np.float32))
    assert np.array_equal(shown["data"].reshape(-1, 2), data.astype(np.float32))
    assert plot["range"] == [-4.0, 4.0] and isinstance(plot["samples"], str)  # text: cheap for Streamlit to send


def test_loss_plot_lines_and_range():
    steps = np.arange(1, 5001)
    losses = 3 + 5 * np.exp(-steps / 500) + 0.1 * RNG.normal(size=5000)
    plot = cp.loss_plot(steps, losses, reference=np.float32(2.87), window=50, max_points=400)
    lines = cp.decoded(plot)
    assert len(lines["steps"]) <= 400 and lines["steps"][0] == 1 and lines["steps"][-1] == 5000  # ends kept
    assert lines["means"][-1] == pytest.approx(losses[-50:].mean(), rel=1e-6)
    assert lines["losses"][-1] == pytest.approx(losses[-1], rel=1e-6) and plot["window"] == 50
    low, high = plot["y_range"]
    assert low < 2.87 < high and plot["reference"] == pytest.approx(2.87)
    figure = iv.loss_curve(steps, losses, reference=2.87, window=50, max_points=400)  # the plotly chart's values
    assert np.allclose(lines["means"], figure.data[1].y, rtol=1e-6) and list(figure.layout.yaxis.range) == plot["y_range"]
    json.dumps(plot)


def test_loss_plot_before_training_and_bad_input():
    empty = cp.loss_plot([], [], reference=None)
    assert cp.decoded(empty)["steps"].size == 0 and empty["y_range"] is None and empty["window"] == 0
    one = cp.loss_plot([1], [4.0])
    assert one["window"] == 1 and cp.decoded(one)["means"].tolist() == [4.0]
    with pytest.raises(ValueError, match="same length"):
        cp.loss_plot([1, 2], [1.0])


# -- canvas_plots.js in chromium ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium():
    require_browser()
    yield from chromium_browser()


def blank_page(browser, errors):
    """A page holding canvas_plots.js (its default export as window.installPlots) and a plot's stub
    (canvas_plots.STUB, as window.plotStub), neither run yet; page errors go to ``errors``."""
    script = cp.SCRIPT.read_text(encoding="utf-8").replace("export default function", "window.installPlots = function")
    stub = cp.STUB.replace("export default function", "window.plotStub = function")
    page = browser.new_page(viewport={"width": 800, "height": 600}, device_scale_factor=1)
    page.on("pageerror", lambda error: errors.append(error))
    page.set_content("<div id='host' style='width:500px;color:rgb(10,10,10);font-family:sans-serif'></div>")
    page.add_script_tag(content=script)
    page.add_script_tag(content=stub)
    return page


@pytest.fixture(scope="module")
def drawing_page(chromium):
    """A blank page with the script installed, as the dashboard's page is once its script has run."""
    errors = []
    page = blank_page(chromium, errors)
    page.evaluate("window.installPlots()")
    yield page, errors
    page.close()


DRAW = """(data) => {
    const host = document.getElementById('host');
    window.plotStub({data, parentElement: host});  // as each plot's element does
    const canvas = host.querySelector('canvas');
    return {width: canvas.width, drawn: canvas.dataset.drawn, error: canvas.dataset.error || null,
            plot: [Number(canvas.dataset.plotWidth), Number(canvas.dataset.plotHeight)], font: canvas.dataset.fontPx,
            lastStep: canvas.dataset.lastStep, same: window.lastCanvas === canvas,
            kept: (window.lastCanvas = canvas, true)};
}"""

@pytest.mark.browser
def test_a_plot_whose_element_comes_before_the_script_is_drawn_once_the_script_runs(chromium):
    errors = []
    page = blank_page(chromium, errors)
    try:
        waiting = page.evaluate("""(data) => {
            const host = document.getElementById('host');
            window.plotStub({data, parentElement: host});
            const before = host.querySelector('canvas');
            window.installPlots();
            return {before: before !== null, after: host.querySelector('canvas').dataset.drawn};
        }""", cp.samples_plot(np.zeros((3, 2))))
    finally:
        page.close()
    assert waiting == {"before": False, "after": "1"} and not errors


@pytest.mark.browser
def test_the_script_draws_each_plot_in_place_and_says_where(drawing_page):
    page, errors = drawing_page
    axis, log_p = gaussian_grid()
    steps = np.arange(1, 301)
    plots = [cp.density_plot(axis, log_p, RNG.normal(size=(20, 2)), height=420),
             cp.samples_plot(RNG.normal(size=(100, 2)), RNG.normal(size=(100, 2)), height=420),
             cp.loss_plot(steps, 3 + np.exp(-steps / 50), reference=2.9, height=420),
             cp.loss_plot([], [], height=420)]
    seen = [page.evaluate(DRAW, plot) for plot in plots]
    assert not errors and all(s["error"] is None for s in seen), (errors, seen)
    first = int(seen[0]["drawn"])
    assert [int(s["drawn"]) for s in seen] == [first, first + 1, first + 2, first + 3]  # one canvas, redrawn
    assert all(s["same"] for s in seen[1:])
    assert all(s["font"] == "14" for s in seen)
    density, samples, loss, empty = seen
    assert density["plot"][0] == density["plot"][1] >= 300  # square, and at least 300 px in a 500 px column
    assert loss["lastStep"] == "300" and empty["lastStep"] == "-1"


@pytest.mark.browser
def test_the_density_is_drawn_where_the_grid_says(drawing_page):
    """One bright cell of a 9 x 9 grid: the canvas shows Viridis's top colour (253, 231, 37) at that cell's
    place (x1 = -2, x2 = 3) and its bottom colour (68, 1, 84) at the mirrored place (x1 = -2, x2 = -3)."""
    page, errors = drawing_page
    axis = np.linspace(-4, 4, 9)
    log_p = np.full((9, 9), -30.0)
    log_p[7, 2] = 0.0
    page.evaluate(DRAW, cp.density_plot(axis, log_p, height=420))
    colour = page.evaluate(
        """([x1, x2]) => {
            const canvas = document.querySelector('#host canvas');
            const [lo, hi] = [-4.5, 4.5];
            const w = Number(canvas.dataset.plotWidth), h = Number(canvas.dataset.plotHeight);
            // the plot area's left edge and top, as the script lays it out (square, centred, 56 px axis margin)
            const x0 = Number(canvas.dataset.plotLeft), y0 = Number(canvas.dataset.plotTop);
            const px = x0 + (x1 - lo) / (hi - lo) * w, py = y0 + (hi - x2) / (hi - lo) * h;
            return Array.from(canvas.getContext('2d').getImageData(Math.round(px), Math.round(py), 1, 1).data);
        }""", [-2.0, 3.0])
    below = page.evaluate(
        """([x1, x2]) => {
            const canvas = document.querySelector('#host canvas');
            const w = Number(canvas.dataset.plotWidth), h = Number(canvas.dataset.plotHeight);
            const x0 = Number(canvas.dataset.plotLeft), y0 = Number(canvas.dataset.plotTop);
            const px = x0 + (x1 + 4.5) / 9 * w, py = y0 + (4.5 - x2) / 9 * h;
            return Array.from(canvas.getContext('2d').getImageData(Math.round(px), Math.round(py), 1, 1).data);
        }""", [-2.0, -3.0])
    assert not errors
    assert colour[:3] == [253, 231, 37], colour
    assert below[:3] == [68, 1, 84], below


@pytest.mark.browser
def test_a_plot_that_cannot_be_drawn_says_so_on_the_canvas(drawing_page):
    page, errors = drawing_page
    broken = {**cp.samples_plot(np.zeros((3, 2))), "kind": "no-such-plot"}
    seen = page.evaluate(DRAW, broken)
    assert seen["error"] and not errors
