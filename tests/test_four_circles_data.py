import math

import pytest
import torch

import funnelkit as fk
from funnelkit.data.four_circles import CENTRES, NOISE, RADIUS
from funnelkit.grid import integrate_density


def test_shape_dtype_and_seeding():
    x = fk.data.four_circles(1001, seed=3)
    assert x.shape == (1001, 2) and x.dtype == torch.float32
    assert torch.equal(x, fk.data.four_circles(1001, seed=3))
    assert not torch.equal(x, fk.data.four_circles(1001, seed=4))
    assert fk.data.four_circles(8, dtype=torch.float64).dtype == torch.float64


def test_points_lie_on_radius_two_circles_around_the_centres():
    x = fk.data.four_circles(40_000, seed=0).double()
    centres = -torch.tensor(CENTRES, dtype=torch.float64)
    distance = torch.linalg.norm(x[:, None, :] - centres[None], dim=2)
    # Each point is near exactly the circle it came from; the radial noise is N(0, 0.1^2).
    nearest = (distance - RADIUS).abs().min(dim=1).values
    assert nearest.max() < 6 * NOISE
    assert abs(math.sqrt((nearest**2).mean().item()) - NOISE) < 0.01
    # Every circle gets a quarter of the points.
    counts = torch.bincount((distance - RADIUS).abs().argmin(dim=1), minlength=4)
    assert (counts - 10_000).abs().max() < 400


def test_closed_form_density_equals_quadrature_over_the_angle():
    x = torch.cat([fk.data.four_circles(200, seed=1).double(), 4 * torch.rand(50, 2, dtype=torch.float64) - 2])
    closed = fk.data.four_circles_log_prob(x)
    quadrature = fk.data.four_circles_log_prob_quadrature(x)
    assert torch.allclose(closed, quadrature, atol=1e-9)


def test_true_density_integrates_to_one():
    total = integrate_density(fk.data.four_circles_log_prob, bounds=(-4.5, 4.5), resolution=900)
    assert abs(total - 1) < 1e-4


def test_true_test_log_likelihood_is_about_minus_2_870():
    mean, error = fk.metrics.mean_and_error(fk.data.four_circles_log_prob(fk.data.four_circles(200_000, seed=9)))
    assert abs(mean + 2.870) < 0.01 and error < 0.005


@pytest.mark.parametrize("name", sorted(fk.data.TOYS))
def test_toys_are_seeded_and_two_dimensional(name):
    x = fk.data.toy(name, 500, seed=2)
    assert x.shape == (500, 2) and torch.isfinite(x).all()
    assert torch.equal(x, fk.data.toy(name, 500, seed=2))
    assert x.abs().max() < 8


@pytest.mark.parametrize("bad", [0, -3, 2.5, "10", True])
def test_bad_sizes_are_refused(bad):
    with pytest.raises(ValueError, match="positive int"):
        fk.data.four_circles(bad)


def test_unknown_toy_and_bad_points_are_refused():
    with pytest.raises(ValueError, match="unknown toy dataset 'spiral'.*four-circles"):
        fk.data.toy("spiral", 10)
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        fk.data.four_circles_log_prob(torch.zeros(3, 3))
