"""1-D convolutional funnels (Eqs. 7-8, A.7.1): each term checked against an independent computation."""

import math

import pytest
import torch
import torch.nn.functional as F

from funnelkit.grid import integrate_density
from funnelkit.layers.conv_funnel_1d import ConvFunnel1d, ConvFunnel1dStrideOne, ConvFunnel1dStrideOneBound
from funnelkit.layers.decoders import GaussianDecoder, flow_decoder

from ..conftest import perturb
from .checks import assert_outer_context_reaches_the_decoder

EXACT = [ConvFunnel1d, ConvFunnel1dStrideOne]


def make(cls, length, **kwargs):
    kwargs.setdefault("hidden_features", 8)
    kwargs.setdefault("num_hidden_layers", 2)
    return perturb(cls(length, **kwargs).double())


def log_normal(z):
    return -0.5 * (z**2).sum(1) - 0.5 * z.shape[1] * math.log(2 * math.pi)


def density(layer):
    def log_p(x):
        z, v = layer(x)
        return log_normal(z) + v
    return log_p


def kernel_values(layer):
    k = layer.kernel
    return k.a.item(), k.b.item(), k.c.item()


@pytest.mark.parametrize("cls", EXACT)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_density_integrates_to_one_on_a_grid(cls, sign):
    layer = make(cls, 2, sign=sign)
    with torch.no_grad():
        layer.kernel.b.fill_(0.7)  # the kernel really mixes both inputs
    assert layer.exact is True
    a, b, c = kernel_values(layer)
    assert (a < 0) == (sign < 0) and abs(abs(a) - 1) > 0.1 and c != 0
    total = integrate_density(density(layer), bounds=(-12.0, 12.0), resolution=600)
    assert abs(total - 1) < 1e-3, total


def test_the_papers_printed_jacobian_term_would_not_normalise():
    """Eq. 7 prints log((n/2)|a|); with n = 4 that differs from (n/2) log|a|, and only the latter is right."""
    layer = make(ConvFunnel1d, 4)
    a = layer.kernel.a.detach()
    x = torch.randn(5, 4, dtype=torch.float64)
    _, logabsdet, _ = layer.contributions(x)
    assert torch.allclose(logabsdet, 2 * torch.log(a.abs()).expand(5), atol=1e-12)
    assert not torch.allclose(logabsdet, torch.log(2 * a.abs()).expand(5), atol=1e-3)


def test_z_is_the_strided_convolution():
    x = torch.randn(4, 8, dtype=torch.float64)
    for cls, stride in [(ConvFunnel1d, 2), (ConvFunnel1dStrideOne, 1), (ConvFunnel1dStrideOneBound, 1)]:
        layer = make(cls, 8)
        k = layer.kernel
        weight = torch.stack([k.a, k.b]).reshape(1, 1, 2)
        expected = F.conv1d(x[:, None], weight, k.c.reshape(1), stride=stride)[:, 0]
        assert torch.allclose(layer(x)[0], expected, atol=1e-12)


@pytest.mark.parametrize("cls, length", [(ConvFunnel1d, 6), (ConvFunnel1dStrideOne, 5)])
def test_logabsdet_matches_autograd(cls, length):
    layer = make(cls, length)
    x = torch.randn(3, length, dtype=torch.float64)
    _, logabsdet, _ = layer.contributions(x)
    x_minus, x_plus = layer.splitter.split(x)
    for i in range(3):
        def z_of_kept(kept, i=i):
            return layer(layer.splitter.merge(x_minus[i : i + 1], kept[None]))[0][0]
        jacobian = torch.autograd.functional.jacobian(z_of_kept, x_plus[i])
        assert jacobian.shape == (x_plus.shape[1], x_plus.shape[1])
        assert torch.allclose(logabsdet[i], torch.linalg.slogdet(jacobian).logabsdet, atol=1e-10)


@pytest.mark.parametrize("cls, length", [(ConvFunnel1d, 6), (ConvFunnel1dStrideOne, 5)])
def test_contribution_is_the_kernels_log_determinant_plus_a_normal_log_density(cls, length):
    """V(x) by hand: log|det(a I)| over the kept values, and log p_phi of the paper's dropped values
    ({x_2i} for stride two, x_n for stride one) from torch.distributions."""
    layer = make(cls, length)
    x = torch.randn(4, length, dtype=torch.float64)
    z, v = layer(x)
    dropped = x[:, 1::2] if cls is ConvFunnel1d else x[:, -1:]
    kept = length - dropped.shape[1]
    mean, log_std = layer.decoder.mean_and_log_std(z)
    log_p = torch.distributions.Normal(mean, log_std.exp()).log_prob(dropped).sum(1)
    log_det = torch.linalg.slogdet(layer.kernel.a * torch.eye(kept, dtype=torch.float64)).logabsdet
    assert torch.allclose(v, log_det + log_p, atol=1e-12)


def test_stride_two_drops_the_even_coordinates():
    layer = make(ConvFunnel1d, 6)
    assert layer.splitter.dropped.tolist() == [1, 3, 5]  # the paper's x_2, x_4, x_6
    x = torch.randn(2, 6, dtype=torch.float64)
    moved = x.clone()
    moved[:, 3] += 0.7  # a dropped coordinate: moves z_2 by b * 0.7 and leaves log|det| alone
    (z, ld, _), (z2, ld2, _) = layer.contributions(x), layer.contributions(moved)
    assert torch.equal(ld, ld2)
    assert torch.allclose(z2 - z, torch.tensor([0.0, 0.7, 0.0], dtype=torch.float64) * layer.kernel.b, atol=1e-12)


@pytest.mark.parametrize("cls, length", [(ConvFunnel1d, 6), (ConvFunnel1dStrideOne, 5)])
def test_reconstruction_from_the_true_dropped_values_is_exact(cls, length):
    layer = make(cls, length)
    x = torch.randn(5, length, dtype=torch.float64)
    z, _ = layer(x)
    x_minus, _ = layer.splitter.split(x)
    x_plus, _ = layer.bijection.inverse(z, context=x_minus)
    assert torch.allclose(layer.splitter.merge(x_minus, x_plus), x, atol=1e-10)
    a, b, c = kernel_values(layer)
    if cls is ConvFunnel1d:  # Eq. 8 by hand
        assert torch.allclose(x_plus, (z - b * x[:, 1::2] - c) / a, atol=1e-10)


@pytest.mark.parametrize("cls, length", [(ConvFunnel1d, 6), (ConvFunnel1dStrideOne, 5), (ConvFunnel1dStrideOne, 2)])
@pytest.mark.parametrize("batch", [1, 4])
def test_inverse_samples_satisfy_the_right_inverse_condition(cls, length, batch):
    layer = make(cls, length)
    z = torch.randn(batch, layer.features_out, dtype=torch.float64)
    x, minus_v = layer.inverse(z)
    assert x.shape == (batch, length) and x.dtype == torch.float64
    z_again, v = layer(x)
    assert torch.allclose(z_again, z, atol=1e-9)
    assert torch.allclose(v, -minus_v, atol=1e-9)


def test_any_conditional_distribution_can_be_the_decoder():
    layer = perturb(ConvFunnel1d(4, decoder=flow_decoder(2, 2, num_layers=1, hidden_features=8, num_bins=4)).double())
    z = torch.randn(3, 2, dtype=torch.float64)
    x, minus_v = layer.inverse(z)
    z_again, v = layer(x)
    assert torch.allclose(z_again, z, atol=1e-9) and torch.allclose(v, -minus_v, atol=1e-9)


def test_outer_context_reaches_the_decoder():
    layer = make(ConvFunnel1dStrideOne, 4, context_features=2)
    assert_outer_context_reaches_the_decoder(layer, torch.randn(3, 4, dtype=torch.float64), 2)


def test_bound_integrates_below_one_and_is_below_the_exact_layer():
    bound = make(ConvFunnel1dStrideOneBound, 2)
    assert bound.exact is False and "bound" in type(bound).__name__.lower() and "bound" in bound.__doc__
    total = integrate_density(density(bound), bounds=(-12.0, 12.0), resolution=600)
    assert 0.05 < total < 0.95, total  # not a density: mass is lost
    # V_bound = V_exact + log p_phi(x_1 | z_1), where the exact stride-one layer shares the kernel and
    # models x_2 with the same scalar density; the shared Gaussian is wider than (2 pi)^(-1/2) here.
    exact = ConvFunnel1dStrideOne(2, decoder=bound.decoder).double()
    exact.kernel.load_state_dict(bound.kernel.state_dict())
    x = 3 * torch.randn(500, 2, dtype=torch.float64)
    z, v_bound = bound(x)
    _, log_std = bound.decoder.mean_and_log_std(z)
    assert (log_std > -0.5 * math.log(2 * math.pi)).all()
    v_exact = exact(x)[1]
    assert (v_bound <= v_exact).all()
    assert torch.allclose(v_bound - v_exact, bound.decoder.log_prob(x[:, :1], context=z), atol=1e-12)


def test_bound_uses_one_shared_scalar_density_per_block():
    bound = make(ConvFunnel1dStrideOneBound, 4)
    x = torch.randn(3, 4, dtype=torch.float64)
    z, logabsdet, log_p = bound.contributions(x)
    contexts = [z[:, 0], z[:, 0], z[:, 1], z[:, 2]]  # x_1 | z_1, then x_i | z_{i-1}
    by_hand = sum(bound.decoder.log_prob(x[:, i : i + 1], context=contexts[i][:, None]) for i in range(4))
    assert torch.allclose(log_p, by_hand, atol=1e-12)
    assert torch.allclose(logabsdet, 3 * bound.kernel.log_abs_a.expand(3), atol=1e-12)


def test_bound_is_no_bound_when_the_shared_density_is_narrow():
    """The docstring's caveat: p_phi > 1 somewhere (sigma = 0.05) lets the integral exceed 1."""
    bound = ConvFunnel1dStrideOneBound(2, hidden_features=8).double()
    with torch.no_grad():
        bound.decoder.net[-1].bias[1] = math.log(0.05)  # log sigma of the (zero-initialised) Gaussian
        bound.kernel.log_abs_a.fill_(math.log(3.0))
    total = integrate_density(density(bound), bounds=(-4.0, 4.0), resolution=2000)
    assert total > 1.1, total


@pytest.mark.parametrize("batch", [1, 5])
def test_bound_samples_in_parallel_and_violates_the_right_inverse_condition(batch):
    bound = make(ConvFunnel1dStrideOneBound, 5)
    z = torch.randn(batch, 4, dtype=torch.float64)
    x, minus_v = bound.inverse(z)
    assert x.shape == (batch, 5) and x.dtype == torch.float64
    _, logabsdet, _ = bound.contributions(x)
    decoder_context = torch.cat([z[:, :1], z], dim=1).reshape(-1, 1)
    log_p = bound.decoder.log_prob(x.reshape(-1, 1), context=decoder_context).reshape(batch, 5).sum(1)
    assert torch.allclose(minus_v, -(logabsdet + log_p), atol=1e-10)  # V_bound with the z it came from
    assert not torch.allclose(bound(x)[0], z, atol=1e-3)  # f(x) != z


def test_bad_input_raises_value_errors_naming_the_shape():
    with pytest.raises(ValueError, match="even length"):
        ConvFunnel1d(5)
    with pytest.raises(ValueError, match="n >= 2"):
        ConvFunnel1dStrideOne(1)
    with pytest.raises(ValueError, match="positive int"):
        ConvFunnel1dStrideOneBound(2.5)
    with pytest.raises(ValueError, match="sign must be"):
        ConvFunnel1d(4, sign=0)
    for layer in [ConvFunnel1d(6), ConvFunnel1dStrideOne(6), ConvFunnel1dStrideOneBound(6)]:
        with pytest.raises(ValueError, match=r"x of shape \(batch, 6\).*got \(2, 4\)"):
            layer(torch.randn(2, 4))
        with pytest.raises(ValueError, match=r"x of shape \(batch, 6\)"):
            layer(torch.randn(2, 1, 6))
        with pytest.raises(ValueError, match=rf"z of shape \(batch, {layer.features_out}\)"):
            layer.inverse(torch.randn(2, 6))
        with pytest.raises(ValueError, match="takes no context"):
            layer(torch.randn(2, 6), context=torch.randn(2, 1))
    with pytest.raises(ValueError, match=r"context of shape \(batch, 2\)"):
        ConvFunnel1d(4, context_features=2)(torch.randn(3, 4), context=torch.randn(3, 3))


def test_default_decoders_start_at_standard_normal():
    layer = ConvFunnel1d(4).double()
    x = torch.randn(3, 4, dtype=torch.float64)
    _, logabsdet, log_p = layer.contributions(x)
    assert torch.allclose(logabsdet, torch.zeros(3, dtype=torch.float64))  # a = 1 at the start
    assert torch.allclose(log_p, log_normal(x[:, 1::2]), atol=1e-12)
    assert isinstance(ConvFunnel1dStrideOneBound(3).decoder, GaussianDecoder)
