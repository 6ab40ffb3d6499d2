"""The funnel layer, Eq. 6: each term checked against an independent computation."""

import math

import pytest
import torch
from nflows.transforms.standard import IdentityTransform

import funnelkit as fk
from funnelkit.layers import Funnel, GaussianDecoder, Slice, flow_decoder, rq_autoregressive

from ..conftest import perturb


def make_funnel(features=3, dropped=(0,), context_features=0, decoder="flow"):
    n_drop = len(dropped)
    n_keep = features - n_drop
    bijection = rq_autoregressive(n_keep, context_features=n_drop + context_features,
                                  hidden_features=16, num_bins=6, tail_bound=3.0)
    if decoder == "flow":
        p_phi = flow_decoder(n_drop, n_keep + context_features, num_layers=2, hidden_features=8, num_bins=5)
    else:
        p_phi = GaussianDecoder(n_drop, n_keep + context_features, hidden_features=8)
    funnel = Funnel(features, bijection, p_phi, dropped=dropped, context_features=context_features)
    return perturb(funnel.double())


@pytest.mark.parametrize("decoder", ["flow", "gaussian"])
def test_logabsdet_of_the_kept_part_matches_autograd(decoder):
    funnel = make_funnel(features=4, dropped=(0, 2), decoder=decoder)
    x = torch.randn(5, 4, dtype=torch.float64)
    _, logabsdet, _ = funnel.contributions(x)
    x_minus, x_plus = funnel.splitter.split(x)
    for i in range(x.shape[0]):
        jacobian = torch.autograd.functional.jacobian(
            lambda xp: funnel.bijection(xp[None], context=x_minus[i : i + 1])[0][0], x_plus[i]
        )
        assert torch.allclose(logabsdet[i], torch.linalg.slogdet(jacobian).logabsdet, atol=1e-10)


def test_contribution_is_the_autograd_log_determinant_plus_a_normal_log_density():
    """Eq. 6 computed a second way: log|det dz/dx_+| from autograd, log p_phi(x_- | z) from torch.distributions."""
    funnel = make_funnel(features=3, dropped=(1,), decoder="gaussian")
    x = torch.randn(6, 3, dtype=torch.float64)
    z, contribution = funnel(x)
    mean, log_std = funnel.decoder.mean_and_log_std(z)
    log_p_dropped = torch.distributions.Normal(mean, log_std.exp()).log_prob(x[:, [1]]).sum(1)
    for i in range(6):
        def z_of_kept(kept, i=i):
            return funnel(torch.stack([kept[0], x[i, 1], kept[1]])[None])[0][0]
        jacobian = torch.autograd.functional.jacobian(z_of_kept, x[i, [0, 2]])
        expected = torch.linalg.slogdet(jacobian).logabsdet + log_p_dropped[i]
        assert torch.allclose(contribution[i], expected, atol=1e-10)


def test_forward_then_inverse_with_the_true_dropped_part_returns_x():
    funnel = make_funnel(features=4, dropped=(1, 3))
    x = torch.randn(8, 4, dtype=torch.float64)
    z, _ = funnel(x)
    x_minus, _ = funnel.splitter.split(x)
    x_plus, _ = funnel.bijection.inverse(z, context=x_minus)
    assert torch.allclose(funnel.splitter.merge(x_minus, x_plus), x, atol=1e-10)


@pytest.mark.parametrize("batch", [1, 7])
def test_inverse_samples_satisfy_the_right_inverse_condition(batch):
    funnel = make_funnel(features=3, dropped=(0,))
    z = torch.randn(batch, 2, dtype=torch.float64)
    x, minus_contribution = funnel.inverse(z)
    assert x.shape == (batch, 3)
    z_again, contribution = funnel(x)
    assert torch.allclose(z_again, z, atol=1e-9)  # f(x) = z for every x ~ p(x | z)
    assert torch.allclose(contribution, -minus_contribution, atol=1e-9)


def test_slice_is_the_funnel_with_identity_f():
    decoder = perturb(GaussianDecoder(1, 2, hidden_features=8).double())
    slice_layer = Slice(3, decoder, dropped=(1,))
    funnel = Funnel(3, IdentityTransform(), decoder, dropped=(1,))
    x = torch.randn(10, 3, dtype=torch.float64)
    z_slice, v_slice = slice_layer(x)
    z_funnel, v_funnel = funnel(x)
    assert torch.equal(z_slice, x[:, [0, 2]]) and torch.equal(z_funnel, z_slice)
    assert torch.allclose(v_slice, decoder.log_prob(x[:, [1]], context=x[:, [0, 2]]))
    assert torch.allclose(v_slice, v_funnel)


def test_outer_context_reaches_f_and_the_decoder():
    funnel = make_funnel(features=3, context_features=2)
    x = torch.randn(4, 3, dtype=torch.float64)
    c1, c2 = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    z1, v1 = funnel(x, context=c1)
    z2, v2 = funnel(x, context=c2)
    assert not torch.allclose(z1, z2) and not torch.allclose(v1, v2)
    x_sampled, minus_v = funnel.inverse(z1, context=c1)
    z_again, v_again = funnel(x_sampled, context=c1)
    assert torch.allclose(z_again, z1, atol=1e-9) and torch.allclose(v_again, -minus_v, atol=1e-9)


def test_gaussian_decoder_matches_torch_distributions():
    decoder = perturb(GaussianDecoder(2, 3, hidden_features=8).double())
    x, c = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    mean, log_std = decoder.mean_and_log_std(c)
    expected = torch.distributions.Normal(mean, log_std.exp()).log_prob(x).sum(1)
    assert torch.allclose(decoder.log_prob(x, context=c), expected, atol=1e-12)
    samples = decoder.sample(20_000, context=c[:1])
    assert samples.shape == (1, 20_000, 2)
    assert torch.allclose(samples[0].mean(0), mean[0], atol=4 * log_std[0].exp().max().item() / math.sqrt(20_000) * 2)


def test_splitter_merges_what_it_splits_and_refuses_bad_indices():
    splitter = fk.layers.CoordinateSplitter(5, dropped=(4, 1))
    x = torch.randn(3, 5)
    minus, plus = splitter.split(x)
    assert minus.shape == (3, 2) and plus.shape == (3, 3)
    assert torch.equal(splitter.merge(minus, plus), x)
    with pytest.raises(ValueError, match="distinct indices in \\[0, 5\\)"):
        fk.layers.CoordinateSplitter(5, dropped=(5,))
    with pytest.raises(ValueError, match="keep at least one"):
        fk.layers.CoordinateSplitter(2, dropped=(0, 1))
    with pytest.raises(ValueError, match="needs a context"):
        GaussianDecoder(1, 0)


def test_the_dropped_part_conditions_every_residual_block_of_an_autoregressive_f():
    """A.3, Eq. 15: theta(x_-, x_+) = theta_1(x_-, theta_0(x_-, x_+)). In ``rq_autoregressive`` x_- enters the
    conditioner's first layer and every residual block: with the first entry cut, z still depends on x_-
    (Eq. 14 would lose it); with every entry cut, it no longer does."""
    bijection = rq_autoregressive(2, context_features=1, hidden_features=8, num_bins=5, tail_bound=3.0)
    bijection = perturb(bijection.double())
    net = bijection.autoregressive_net
    x_plus = torch.randn(5, 2, dtype=torch.float64)
    x_minus = torch.randn(5, 1, dtype=torch.float64)

    def moves_with_x_minus():
        return not torch.allclose(bijection(x_plus, context=x_minus)[0], bijection(x_plus, context=x_minus + 1.0)[0])

    assert moves_with_x_minus()
    with torch.no_grad():
        net.context_layer.weight.zero_()
        net.context_layer.bias.zero_()
    assert moves_with_x_minus()
    with torch.no_grad():
        for block in net.blocks:
            block.context_layer.weight.zero_()
            block.context_layer.bias.zero_()
    assert not moves_with_x_minus()
