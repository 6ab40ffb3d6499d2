"""funnelkit.viz.flow_path and flow_animation: points travelling through a plane model, layer by layer.

Exactness: the generate path calls the model's own layer inverses on the noise that
``model.sample`` draws for the same seed, so its last stage *is* ``model.sample`` (compared
bit for bit); the encode path calls the same forwards as ``model.encode`` (bit for bit too). Going
out and back (sample, then encode) returns the kept latent to rounding: the RQ spline's inverse
solves a quadratic per bin, and its rounding error grows with how steep the spline is. Measured over
2,000 points: float64, at most 1.3e-14 (initial, perturbed and shipped models); float32, at most 5e-6
for the initial and the shipped models, but up to 1e-3 for the randomly perturbed F-NSF, whose
decoder puts x₋ at the spline's tail bound, where its bins are steep. So the round trip is checked
to 1e-10 in float64 on perturbed models, and to 1e-4 in float32 on initial and shipped ones.
"""

import numpy as np
import pytest
import torch

import funnelkit as fk
from funnelkit.viz.flow_animation import flow_animation_figure
from funnelkit.viz.flow_path import FlowPath, flow_path, round_trip

from .conftest import perturb, small_plane_model

N = 300
SEED = 7
# Round trips through splines (see the module's docstring): the measured rounding with a 20x margin
# in float32, and a margin of 10^4 in float64.
ROUND_TRIP_ATOL = {torch.float32: 1e-4, torch.float64: 1e-10}


def plane(name, dtype, perturbed=True):
    model = small_plane_model(name, dtype)
    return perturb(model) if perturbed else model


def model_sample(model, n, seed, **kwargs):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return model.sample(n, **kwargs)


@pytest.mark.parametrize("name", ["f-nsf", "nsf"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_generate_path_ends_at_the_models_own_sample(name, dtype):
    model = plane(name, dtype)
    path = flow_path(model, N, SEED, "generate")
    expected = model_sample(model, N, SEED).detach().double().numpy()
    assert path.stages[-1].label == "data"
    # The same noise through the same layer calls in the same order: identical, not just close.
    np.testing.assert_array_equal(path.stages[-1].values, expected)
    np.testing.assert_array_equal(path.data_points, expected)


def test_the_generate_path_follows_temperature_and_temper_as_sample_does():
    model = plane("f-nsf", torch.float64)
    for temperature, temper in [(0.5, "base"), (0.5, "all"), (0.0, "mean")]:
        path = flow_path(model, N, SEED, temperature=temperature, temper=temper)
        expected = model_sample(model, N, SEED, temperature=temperature, temper=temper).detach().numpy()
        np.testing.assert_array_equal(path.stages[-1].values, expected)


@pytest.mark.parametrize("name", ["f-nsf", "nsf"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sample_then_encode_returns_the_kept_latent(name, dtype):
    model = plane(name, dtype, perturbed=dtype == torch.float64)
    path = round_trip(model, N, SEED)
    start, end = path.stages[0], path.stages[-1]
    assert start.values.shape == end.values.shape == (N, model.latent_dim)
    np.testing.assert_allclose(end.values, start.values, rtol=0, atol=ROUND_TRIP_ATOL[dtype])
    np.testing.assert_allclose(end.points, start.points, rtol=0, atol=ROUND_TRIP_ATOL[dtype])


def test_the_encode_path_ends_at_model_encode():
    model = plane("f-nsf", torch.float64)
    x = fk.data.four_circles(N, seed=3).double()
    path = flow_path(model, direction="encode", points=x)
    np.testing.assert_array_equal(path.stages[0].values, x.numpy())
    np.testing.assert_array_equal(path.stages[-1].values, model.encode(x).detach().numpy())


def test_the_funnel_draws_x_minus_on_the_way_out_and_ignores_it_on_the_way_in():
    model = plane("f-nsf", torch.float64)
    path = round_trip(model, N, SEED)
    labels = [s.label for s in path.stages]
    assert labels == ["noise z", "draw x₁", "F: x₂", "reverse⁻¹", "data",  # out: Eq. 3, layer by layer
                      "RQ spline", "reverse", "F⁻¹: z", "drop x₁"]  # back: the forward pass of Eq. 6
    assert path.dropped == 0
    noise, drawn, mapped = path.stages[0], path.stages[1], path.stages[2]
    # The 1-D latent sits on the line x₁ = 0; the draw moves the points along x₁ only.
    np.testing.assert_array_equal(noise.points[:, 0], 0.0)
    np.testing.assert_array_equal(noise.points[:, 1], noise.values[:, 0])
    np.testing.assert_array_equal(drawn.points[:, 1], noise.values[:, 0])
    assert drawn.points[:, 0].std() > 0.01  # x₋ is drawn: it spreads
    # F then maps the kept coordinate, given x₋; x₋ itself is what the data keeps.
    np.testing.assert_array_equal(mapped.points[:, 0], drawn.points[:, 0])
    # A different seed draws different noise and a different x₋: the draw is random.
    other = round_trip(model, N, SEED + 1)
    assert not np.allclose(other.stages[1].points[:, 0], drawn.points[:, 0])
    # On the way in, F⁻¹ keeps x₋ beside z; dropping it puts the points back on the line.
    inside, dropped = path.stages[-2], path.stages[-1]
    np.testing.assert_allclose(inside.points, drawn.points, atol=1e-10)
    np.testing.assert_array_equal(dropped.points[:, 0], 0.0)


def test_the_way_back_returns_z_whatever_x_minus_was_drawn():
    model = plane("f-nsf", torch.float64)
    drawn = round_trip(model, N, SEED)  # x₋ ~ p_φ(x₋ | z)
    means = round_trip(model, N, SEED, temper="mean")  # the same z, x₋ the decoder's noise-free output
    np.testing.assert_array_equal(means.stages[0].values, drawn.stages[0].values)
    assert np.abs(means.stages[1].points[:, 0] - drawn.stages[1].points[:, 0]).max() > 0.1
    for path in (drawn, means):
        np.testing.assert_allclose(path.stages[-1].values, drawn.stages[0].values, rtol=0, atol=1e-10)


def test_a_model_without_funnel_stays_two_dimensional():
    path = round_trip(plane("nsf", torch.float64), N, SEED)
    assert path.dropped is None
    assert all(s.values.shape == (N, 2) and s.points.shape == (N, 2) for s in path.stages)


def test_the_global_generator_and_the_models_mode_are_left_as_they_were():
    model = plane("f-nsf", torch.float32).train()
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    flow_path(model, 50, SEED)
    round_trip(model, 50, SEED)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(m.training for m in model.modules())
    first, second = flow_path(model, 50, SEED), flow_path(model, 50, SEED)
    np.testing.assert_array_equal(first.stages[-1].points, second.stages[-1].points)


def test_the_shipped_four_circles_model_goes_out_and_back():
    from funnelkit.app import live, live_settings

    run = live.LiveRun.create(live_settings.LiveSettings())
    assert run.source.startswith("shipped"), "the tracked four-circles F-NSF checkpoint is missing"
    path = round_trip(run.model, 1000, SEED)
    np.testing.assert_allclose(path.stages[-1].values, path.stages[0].values, rtol=0, atol=1e-4)
    # A trained model's samples land on the four circles: radius 2 around (+-1, +-1), noise 0.1.
    x = path.data_points
    centres = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], dtype=float)
    gap = np.abs(np.linalg.norm(x[:, None, :] - centres[None], axis=2) - 2).min(axis=1)
    assert np.median(gap) < 0.2


@pytest.mark.parametrize("call, message", [
    (lambda m: flow_path(m, 10, direction="sideways"), "direction"),
    (lambda m: flow_path(m, 0), "n must be a positive int"),
    (lambda m: flow_path(m, 10, seed=-1), "seed"),
    (lambda m: flow_path(m, 10, temperature=-1.0), "temperature"),
    (lambda m: flow_path(m, 10, temper="hot"), "temper"),
    (lambda m: flow_path(m, direction="encode", points=np.zeros((5, 3))), r"shape \(n, 2\)"),
    (lambda m: flow_path(torch.nn.Linear(2, 2), 10), "FunnelFlow on 2-D data"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call(plane("f-nsf", torch.float32))


def test_a_model_on_other_data_is_refused():
    from nflows.transforms import ReversePermutation

    model = fk.models.FunnelFlow([ReversePermutation(3)], data_shape=3)
    with pytest.raises(ValueError, match="2-D data"):
        flow_path(model, 10)


# -- the animation figure ---------------------------------------------------------------------------
def test_the_animation_has_a_frame_a_slider_step_and_a_caption_per_stage():
    path = round_trip(plane("f-nsf", torch.float32), N, SEED)
    fig = flow_animation_figure(path)
    assert [f.name for f in fig.frames] == [str(i) for i in range(len(path.stages))]
    for frame, stage in zip(fig.frames, path.stages):
        np.testing.assert_array_equal(np.asarray(frame.data[0].x), stage.points[:, 0])
        np.testing.assert_array_equal(np.asarray(frame.data[0].y), stage.points[:, 1])
        texts = [(a.text or "").replace("\u00a0", " ") for a in frame.layout.annotations]
        assert any(stage.caption.split(":")[0] in text for text in texts)
    slider = fig.layout.sliders[0]
    assert [s.label for s in slider.steps] == [s.label for s in path.stages]
    assert [list(s.args[0]) for s in slider.steps] == [[str(i)] for i in range(len(path.stages))]
    labels = [b.label for b in fig.layout.updatemenus[0].buttons]
    assert any("Play" in label for label in labels) and any("Pause" in label for label in labels)
    assert fig.layout.updatemenus[0].buttons[0].args[1]["transition"]["duration"] > 0  # points glide
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    assert fig.data[0].marker.colorbar.title.text  # the colours are explained
    assert fig.layout.yaxis.scaleanchor == "x"  # equal units: rotations look like rotations


def test_the_animation_colours_each_point_by_its_angle_in_the_data():
    path = round_trip(plane("f-nsf", torch.float32), N, SEED)
    colour = np.asarray(flow_animation_figure(path).data[0].marker.color)
    x = path.data_points - path.data_points.mean(axis=0)
    np.testing.assert_allclose(colour, np.degrees(np.arctan2(x[:, 1], x[:, 0])))


def test_every_text_of_the_animation_is_at_least_14_px():
    fig = flow_animation_figure(round_trip(plane("f-nsf", torch.float32), 50, SEED))
    sizes = [fig.layout.font.size, fig.layout.title.font.size, fig.layout.xaxis.tickfont.size,
             fig.layout.yaxis.tickfont.size, fig.layout.xaxis.title.font.size, fig.layout.yaxis.title.font.size,
             fig.layout.sliders[0].font.size, fig.layout.updatemenus[0].font.size,
             fig.data[0].marker.colorbar.tickfont.size, fig.data[0].marker.colorbar.title.font.size]
    sizes += [a.font.size for frame in fig.frames for a in frame.layout.annotations]
    assert min(sizes) >= 14


def test_the_animation_refuses_what_is_not_a_path():
    with pytest.raises(ValueError, match="FlowPath"):
        flow_animation_figure([np.zeros((3, 2))])
    path = flow_path(plane("nsf", torch.float32), 20, SEED)
    with pytest.raises(ValueError, match="transition_ms"):
        flow_animation_figure(path, frame_ms=100, transition_ms=200)
    assert isinstance(path, FlowPath)
