"""The spline activation of the F-MLP: a monotone bijection with an exact log-determinant."""

import pytest
import torch

from funnelkit.layers.spline_activation import SplineActivation

from ..conftest import perturb


def spline(features=3, shared=False, num_bins=5, tail_bound=2.0, scale=1.0):
    return perturb(SplineActivation(features, num_bins, tail_bound, shared).double(), scale=scale)


@pytest.mark.parametrize("shared", [False, True])
def test_logabsdet_matches_the_autograd_jacobian(shared):
    layer = spline(shared=shared)
    x = 1.5 * torch.randn(6, 3, dtype=torch.float64)
    x[0] = torch.tensor([-3.0, 0.1, 2.5])  # both tails and the inside
    y, logabsdet = layer(x)
    for row, expected in zip(x, logabsdet):
        jacobian = torch.autograd.functional.jacobian(lambda v: layer(v[None])[0][0], row)
        assert torch.allclose(jacobian, torch.diag(torch.diagonal(jacobian)))  # elementwise
        assert (torch.diagonal(jacobian) > 0).all()  # monotone increasing
        assert torch.allclose(torch.linalg.slogdet(jacobian).logabsdet, expected, atol=1e-10)


def test_inverse_undoes_forward_with_minus_the_logabsdet():
    layer = spline(features=4, num_bins=10)
    x = 2.0 * torch.randn(200, 4, dtype=torch.float64)
    y, logabsdet = layer(x)
    x_again, inverse_logabsdet = layer.inverse(y)
    assert torch.allclose(x_again, x, atol=1e-10)
    assert torch.allclose(inverse_logabsdet, -logabsdet, atol=1e-10)


def test_identity_at_initialisation_and_outside_the_tail_bound():
    x = torch.tensor([[-5.0, 0.3, 1.9], [4.0, -1.0, 0.0]], dtype=torch.float64)
    y, logabsdet = SplineActivation(3, 5, 2.0).double()(x)
    assert torch.allclose(y, x, atol=1e-12) and torch.allclose(logabsdet, torch.zeros(2, dtype=torch.float64))
    layer = spline()
    outside = torch.tensor([[-7.0, 2.5, 100.0]], dtype=torch.float64)
    assert torch.equal(layer(outside)[0], outside)  # linear tails: the identity


def test_per_dimension_splines_differ_and_a_shared_spline_does_not():
    x = torch.full((1, 3), 0.7, dtype=torch.float64)
    per_dimension, shared = spline(shared=False)(x)[0], spline(shared=True)(x)[0]
    assert per_dimension[0, 0] != per_dimension[0, 1]
    assert shared[0, 0] == shared[0, 1] == shared[0, 2]


@pytest.mark.parametrize(("shared", "expected"), [(False, 7 * (3 * 5 - 1)), (True, 3 * 5 - 1)])
def test_parameter_counts(shared, expected):
    # K widths, K heights and K - 1 inner derivatives per spline.
    layer = SplineActivation(7, num_bins=5, shared=shared)
    assert sum(p.numel() for p in layer.parameters()) == expected


def test_float32_batch_of_one_and_bad_inputs():
    y, logabsdet = SplineActivation(2)(torch.randn(1, 2))
    assert y.shape == (1, 2) and logabsdet.shape == (1,)
    with pytest.raises(ValueError, match=r"shape \(batch, 2\), got \(4, 3\)"):
        SplineActivation(2)(torch.randn(4, 3))
    with pytest.raises(ValueError, match="num_bins must be an int >= 2, got 1"):
        SplineActivation(2, num_bins=1)
    with pytest.raises(ValueError, match="tail_bound must be a positive number"):
        SplineActivation(2, tail_bound=0)
