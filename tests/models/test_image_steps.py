"""The image-flow blocks: preprocessing, the checkerboard coupling, levels, and tiny image flows
whose densities integrate to one (float64, eval mode so batch norm is a fixed map)."""

import math

import pytest
import torch
from nflows.transforms.coupling import PiecewiseRationalQuadraticCouplingTransform
from nflows.transforms.reshape import SqueezeTransform

from funnelkit.layers.conv_funnel_2d import ConvFunnel2d
from funnelkit.models.funnel_flow import FunnelFlow
from funnelkit.models.image_steps import (
    ActNorm, CheckerboardRQCoupling, Preprocess, StepConfig, Unsqueeze, funnel_block, glow_level, multiscale_levels,
)

from ..conftest import perturb

TINY = StepConfig(hidden_channels=4, num_bins=3, num_res_blocks=1, dropout=0.0)


def couplings(module, kind):
    return [m for m in module.modules() if isinstance(m, kind)]


def test_preprocess_maps_to_the_centred_unit_box_with_its_log_det():
    x = torch.tensor([[[[0.0, 31.999]]], [[[16.0, 8.0]]]], dtype=torch.float64)
    y, logabsdet = Preprocess(5).double()(x)
    assert torch.allclose(y, x / 32 - 0.5) and y.min() >= -0.5 and y.max() < 0.5
    assert torch.allclose(logabsdet, torch.full((2,), 2 * math.log(2.0**-5), dtype=torch.float64))
    back, minus = Preprocess(5).double().inverse(y)
    assert torch.allclose(back, x) and torch.allclose(minus, -logabsdet)
    with pytest.raises(ValueError, match="bits must be an int"):
        Preprocess(0)


def test_actnorm_waits_for_two_values_per_channel_before_initialising():
    actnorm = ActNorm(4)
    y, _ = actnorm(torch.randn(1, 4, 1, 1))  # one value per channel: nflows would store NaN
    assert torch.isfinite(y).all() and not actnorm.initialized and torch.equal(actnorm.log_scale, torch.zeros(4))
    x = 3 + 2 * torch.randn(64, 4, 1, 1)
    y, logabsdet = actnorm(x)
    # float32 mean and std of 64 values of order 1: a few ulps (6e-8) each, well under 1e-5 on any CPU
    assert actnorm.initialized and torch.allclose(y.mean(0), torch.zeros(4, 1, 1), atol=1e-5)
    assert torch.allclose(y.std(0), torch.ones(4, 1, 1), atol=1e-5)
    assert torch.allclose(logabsdet, actnorm.log_scale.sum().expand(64))


@pytest.mark.parametrize("shape, parity", [((1, 3, 3), 0), ((2, 3, 2), 1)])
def test_checkerboard_coupling_log_det_matches_autograd_and_it_inverts(shape, parity):
    coupling = perturb(CheckerboardRQCoupling(*shape, parity, TINY).double()).eval()
    x = 2.5 * torch.randn(3, *shape, dtype=torch.float64)  # some values beyond the tail bound 3
    y, logabsdet = coupling(x)
    kept = coupling.kept_mask.bool().expand_as(x)
    assert torch.equal(y[kept], x[kept]) and not torch.allclose(y[~kept], x[~kept])
    for i in range(x.shape[0]):
        jacobian = torch.autograd.functional.jacobian(lambda v: coupling(v[None])[0][0], x[i])
        jacobian = jacobian.reshape(x[i].numel(), x[i].numel())
        assert torch.allclose(logabsdet[i], torch.linalg.slogdet(jacobian).logabsdet, atol=1e-10)
        # triangular: a transformed pixel never feeds its own (or another transformed pixel's) spline
        transformed = (~kept[i]).flatten()
        off_diagonal = jacobian[transformed][:, transformed] - torch.diag(jacobian.diagonal()[transformed])
        assert off_diagonal.abs().max() == 0
    x_back, inverse_logabsdet = coupling.inverse(y)
    assert torch.allclose(x_back, x, atol=1e-10) and torch.allclose(inverse_logabsdet, -logabsdet, atol=1e-10)


def test_checkerboard_coupling_refuses_a_wrong_shape_and_a_single_pixel():
    coupling = CheckerboardRQCoupling(1, 3, 3, 0, TINY)
    with pytest.raises(ValueError, match=r"shape \(batch, 1, 3, 3\)"):
        coupling(torch.zeros(2, 1, 3, 4))
    with pytest.raises(ValueError, match="at least 2 pixels"):
        CheckerboardRQCoupling(1, 1, 1, 0, TINY)


def test_levels_squeeze_only_even_sizes_and_split_channels_or_pixels():
    even = glow_level((1, 4, 6), 2, TINY, unsqueeze=True)
    assert isinstance(even._transforms[0], SqueezeTransform) and isinstance(even._transforms[-1], Unsqueeze)
    assert even.output_shape == (1, 4, 6) and len(couplings(even, PiecewiseRationalQuadraticCouplingTransform)) == 2
    odd_one_channel = glow_level((1, 7, 7), 3, TINY, unsqueeze=True)
    assert odd_one_channel.output_shape == (1, 7, 7)
    assert not any(isinstance(t, (SqueezeTransform, Unsqueeze)) for t in odd_one_channel._transforms)
    board = couplings(odd_one_channel, CheckerboardRQCoupling)
    assert [c.kept_mask[0, 0, 0, 0].item() for c in board] == [1, 0, 1]  # parities alternate
    odd_many_channels = glow_level((16, 7, 7), 1, TINY)  # the anomaly NSF's last level: no squeeze
    assert odd_many_channels.output_shape == (16, 7, 7)
    assert len(couplings(odd_many_channels, PiecewiseRationalQuadraticCouplingTransform)) == 1
    with pytest.raises(ValueError, match="unknown mask"):
        glow_level((1, 4, 4), 1, TINY, mask="stripes")


def test_multiscale_levels_factor_out_half_the_channels():
    multiscale = perturb(multiscale_levels((3, 8, 8), 3, 1, TINY).double(), scale=0.1).eval()
    assert multiscale.output_shape == (192,)
    assert [tuple(s) for s in multiscale._output_shapes] == [(6, 4, 4), (12, 2, 2), (48, 1, 1)]
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    z, logabsdet = multiscale(x)
    x_back, minus = multiscale.inverse(z)
    assert z.shape == (2, 192) and torch.allclose(x_back, x, atol=1e-9) and torch.allclose(minus, -logabsdet)
    with pytest.raises(ValueError, match="H and W must be even"):
        multiscale_levels((3, 6, 6), 2, 1, TINY)


def tiny_flow(shape, bits=2, scale=0.15):
    """Preprocessing -> level (checkerboard steps at odd sizes) -> ActNorm + ConvFunnel2d [-> level]."""
    first = glow_level(shape, 2, TINY)
    funnel, out = funnel_block(first.output_shape, hidden_features=8, num_hidden_layers=1)
    layers = [Preprocess(bits), first, *funnel]
    if out[1] * out[2] > 1:
        layers.append(glow_level(out, 1, TINY))
    return perturb(FunnelFlow(layers, data_shape=shape).double(), scale=scale).eval()


def test_a_one_by_two_image_funnel_integrates_to_one_on_a_grid():
    # 1 x 1 x 2 -> 1 x 1 x 1: odd height (a padded row that is not data), checkerboard steps, and
    # the preprocessing's log-det; a 2-D density, so a float64 grid gives the integral.
    model = tiny_flow((1, 1, 2), scale=0.3)
    assert isinstance(model.layers[3], ConvFunnel2d) and model.latent_dim == 1
    with torch.no_grad():
        samples = model.sample(4000).flatten(1)
        lows, highs = samples.mean(0) - 12 * samples.std(0), samples.mean(0) + 12 * samples.std(0)
        n = 501
        axes = [torch.linspace(lo.item(), hi.item(), n, dtype=torch.float64) for lo, hi in zip(lows, highs)]
        a, b = torch.meshgrid(*axes, indexing="ij")
        grid = torch.stack([a.flatten(), b.flatten()], dim=1).reshape(-1, 1, 1, 2)
        log_p = torch.cat([model.log_prob(chunk) for chunk in grid.split(50_000)])
        cell = (axes[0][1] - axes[0][0]) * (axes[1][1] - axes[1][0])
        integral = (log_p.exp().sum() * cell).item()
    assert abs(integral - 1) < 2e-3, integral


def _student_t(mean, cov, df, n):
    """Samples of a multivariate Student-t and their log density (a heavy-tailed proposal)."""
    chol = torch.linalg.cholesky(cov)
    d = mean.numel()
    radial = torch.distributions.Chi2(torch.tensor(float(df), dtype=mean.dtype)).sample((n,))
    y = mean + (torch.randn(n, d, dtype=mean.dtype) @ chol.T) / torch.sqrt(radial / df)[:, None]
    maha = (torch.linalg.solve_triangular(chol, (y - mean).T, upper=False) ** 2).sum(0)
    log_q = (math.lgamma((df + d) / 2) - math.lgamma(df / 2) - d / 2 * math.log(df * math.pi)
             - torch.log(chol.diagonal()).sum() - (df + d) / 2 * torch.log1p(maha / df))
    return y, log_q


def test_a_three_by_two_image_funnel_integrates_to_one_by_importance_sampling():
    # 1 x 3 x 2 -> funnel -> 1 x 2 x 1 -> checkerboard level: D = 6. Proposal: a Student-t (3
    # degrees of freedom) with twice the model's sample covariance, independent of log_prob.
    # Tolerance: 4 standard errors, and the standard error itself below 2%.
    model = tiny_flow((1, 3, 2))
    with torch.no_grad():
        samples = model.sample(20_000).flatten(1)
        n = 100_000
        y, log_q = _student_t(samples.mean(0), 2 * torch.cov(samples.T), 3, n)
        weights = (model.log_prob(y.reshape(n, 1, 3, 2)) - log_q).exp()
    estimate, error = weights.mean().item(), (weights.std() / math.sqrt(n)).item()
    assert error < 0.02 and abs(estimate - 1) < 4 * error + 1e-3, (estimate, error)
