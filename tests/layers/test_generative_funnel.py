"""The generative funnel (A.2, Eq. 9): 1-D x -> 2-D z; its forward is a stochastic lower bound.

The oracle is the model's true density by quadrature over z_extra:
p(x) = int de N(G^{-1}(x | e)) N(e) |dG^{-1}/dx|.
"""

import math

import pytest
import torch

from funnelkit.layers.generative_funnel import GenerativeFunnel
from funnelkit.models.funnel_flow import FunnelFlow

from ..conftest import perturb

LOG_2PI = math.log(2 * math.pi)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    layer = GenerativeFunnel(1, 1, hidden_features=8, num_hidden_layers=1, num_bins=6, tail_bound=4.0)
    return perturb(FunnelFlow([layer], 1).double(), scale=0.4, seed=3)


def joint_log_density(layer, x, e):
    """log N(z_main) + log N(e) + log|dz_main/dx| at the pairs (x_i, e_i): the integrand of p(x)."""
    z, logabsdet, _ = layer.contributions(x, z_extra=e)
    return -0.5 * (z**2).sum(1) - LOG_2PI + logabsdet


@torch.no_grad()
def quadrature_log_prob(layer, x, bound=12.0, points=4001):
    """log p(x) for each row of x by the midpoint rule over z_extra on [-bound, bound]."""
    step = 2 * bound / points
    e = -bound + step * (torch.arange(points, dtype=torch.float64) + 0.5)
    out = []
    for row in x:
        values = joint_log_density(layer, row.expand(points, 1), e[:, None])
        out.append(torch.logsumexp(values, 0) + math.log(step))
    return torch.stack(out)


@torch.no_grad()
def test_bound_is_below_the_quadrature_and_importance_weighting_closes_the_gap(model):
    layer = model.layers[0]
    assert layer.exact is False and model.latent_dim == 2
    x = torch.tensor([[-1.5], [0.0], [0.8], [2.5]], dtype=torch.float64)
    exact = quadrature_log_prob(layer, x)
    samples = 20_000
    repeated = x.repeat_interleave(samples, 0)
    bounds = model.log_prob(repeated).reshape(len(x), samples)  # log N(z) + log|det| - log q, one draw each
    mean, stderr = bounds.mean(1), bounds.std(1) / math.sqrt(samples)
    assert (mean + 4 * stderr < exact).all()  # Jensen: E_q[bound] <= log p(x), strictly here
    assert ((exact - mean) > 0.01).all()  # the gap KL(q || posterior) is not tiny: the test can tell
    importance_weighted = torch.logsumexp(bounds, 1) - math.log(samples)
    assert torch.allclose(importance_weighted, exact, atol=0.02)


@torch.no_grad()
def test_the_generative_model_is_normalised_and_sampling_follows_it(model):
    layer = model.layers[0]
    step = 0.02
    xs = torch.arange(-12, 12, step, dtype=torch.float64)[:, None] + step / 2
    density = quadrature_log_prob(layer, xs, bound=10.0, points=1001).exp()
    assert abs(density.sum().item() * step - 1) < 1e-3
    mean = (xs[:, 0] * density).sum() * step
    variance = ((xs[:, 0] - mean) ** 2 * density).sum() * step
    samples = model.sample(20_000)
    assert abs(samples.mean() - mean) < 4 * math.sqrt(variance / 20_000)


def test_inverse_is_deterministic_and_returns_minus_the_bound_term(model):
    layer = model.layers[0]
    z = torch.randn(6, 2, dtype=torch.float64)
    x, minus_value = layer.inverse(z)
    assert x.shape == (6, 1) and torch.equal(layer.inverse(z)[0], x)
    z_again, logabsdet, minus_log_q = layer.contributions(x, z_extra=z[:, 1:])
    assert torch.allclose(z_again, z, atol=1e-9)  # G^{-1}(G(z_main | e) | e) = z_main
    assert torch.allclose(logabsdet + minus_log_q, -minus_value, atol=1e-9)
    mean, log_std = layer.encoder.mean_and_log_std(x)  # q(z_extra | x), a diagonal Gaussian
    q = torch.distributions.Normal(mean, log_std.exp()).log_prob(z[:, 1:]).sum(1)
    assert torch.allclose(minus_log_q, -q, atol=1e-12)


def test_logabsdet_matches_autograd_and_batch_of_one():
    layer = perturb(GenerativeFunnel(2, 3, hidden_features=8, num_hidden_layers=1).double())
    x, e = torch.randn(1, 2, dtype=torch.float64), torch.randn(1, 3, dtype=torch.float64)
    z, logabsdet, _ = layer.contributions(x, z_extra=e)
    assert z.shape == (1, 5) and torch.equal(z[:, 2:], e)
    jacobian = torch.autograd.functional.jacobian(lambda v: layer.contributions(v[None], z_extra=e)[0][0, :2], x[0])
    assert torch.allclose(torch.linalg.slogdet(jacobian).logabsdet, logabsdet[0], atol=1e-10)
    with pytest.raises(ValueError, match="extra_features must be an int >= 1, got 0"):
        GenerativeFunnel(2, 0)
