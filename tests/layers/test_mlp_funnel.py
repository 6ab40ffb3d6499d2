"""The MLP funnel (Sec. 3): normalised, log|det R| right, the right-inverse condition; the bound is not exact."""

import math

import pytest
import torch

from funnelkit.grid import integrate_density
from funnelkit.layers.decoders import GaussianDecoder
from funnelkit.layers.mlp_funnel import MLPFunnel, MLPFunnelBound, QRLinear
from funnelkit.models.funnel_flow import FunnelFlow

from ..conftest import perturb

PARAMETERISATIONS = ["lu", "qr"]


def small(cls, features_in, features_out, parameterisation="lu", seed=1, **kwargs):
    layer = cls(features_in, features_out, parameterisation, hidden_features=8, num_hidden_layers=2, **kwargs)
    return perturb(layer.double(), seed=seed)


def small_model(cls, features_in, features_out, parameterisation="lu", seed=1, **kwargs):
    """A one-layer FunnelFlow (built in float32, as FunnelFlow traces widths), then float64, perturbed."""
    layer = cls(features_in, features_out, parameterisation, hidden_features=8, num_hidden_layers=2, **kwargs)
    return perturb(FunnelFlow([layer], features_in).double(), seed=seed)


@pytest.mark.parametrize("parameterisation", PARAMETERISATIONS)
@pytest.mark.parametrize("features_out", [1, 2])
def test_density_integrates_to_one(parameterisation, features_out):
    model = small_model(MLPFunnel, 2, features_out, parameterisation, permutation_seed=3)
    assert model.latent_dim == features_out
    assert abs(integrate_density(model.log_prob, bounds=(-10, 10), resolution=500) - 1) < 1e-3


@pytest.mark.parametrize("parameterisation", PARAMETERISATIONS)
def test_logabsdet_is_log_det_r_and_the_jacobian_blocks_are_r_and_w_prime(parameterisation):
    layer = small(MLPFunnel, 5, 3, parameterisation, permutation_seed=7)
    x = torch.randn(4, 5, dtype=torch.float64)
    _, logabsdet, _ = layer.contributions(x)
    perm = layer.permutation._permutation
    kept, dropped = perm[layer.n_drop :], perm[: layer.n_drop]
    r = layer.weight_r()
    assert torch.allclose(logabsdet, torch.linalg.slogdet(r).logabsdet.expand(4), atol=1e-12)
    for row in x:
        jacobian = torch.autograd.functional.jacobian(lambda v: layer.contributions(v[None])[0][0], row)
        assert torch.allclose(jacobian[:, kept], r, atol=1e-12)  # dz/dx_+ = R, whatever x is
        assert torch.allclose(jacobian[:, dropped], layer.weight_mixing(), atol=1e-12)  # dz/dx_- = W'
    assert torch.linalg.slogdet(r).sign > 0  # det R > 0 by construction


@pytest.mark.parametrize("parameterisation", PARAMETERISATIONS)
@pytest.mark.parametrize("features_out", [3, 5])
@pytest.mark.parametrize("batch", [1, 6])
def test_inverse_samples_satisfy_the_right_inverse_condition(parameterisation, features_out, batch):
    layer = small(MLPFunnel, 5, features_out, parameterisation, permutation_seed=2)
    z = torch.randn(batch, features_out, dtype=torch.float64)
    x, minus_value = layer.inverse(z)
    assert x.shape == (batch, 5)
    z_again, value = layer(x)
    assert torch.allclose(z_again, z, atol=1e-9)  # f(x) = z for every sampled x
    assert torch.allclose(value, -minus_value, atol=1e-9)
    if features_out == 5:
        assert torch.allclose(layer.inverse(z)[0], x)  # nothing dropped: deterministic


def test_sample_and_log_prob_agree_with_log_prob_and_contributions_add_up():
    model = small_model(MLPFunnel, 4, 2, "qr")
    samples, log_prob = model.sample_and_log_prob(50)
    assert torch.allclose(model.log_prob(samples), log_prob, atol=1e-9)
    layers, base = model.contributions(samples)
    assert (layers[0].log_p_dropped != 0).all() and layers[0].features_out == 2
    assert torch.allclose(base + layers[0].logabsdet + layers[0].log_p_dropped, log_prob, atol=1e-9)


def test_outer_context_reaches_w_prime_and_the_decoder():
    layer = small(MLPFunnel, 3, 2, context_features=2)
    x = torch.randn(4, 3, dtype=torch.float64)
    c1, c2 = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    (z1, v1), (z2, v2) = layer(x, context=c1), layer(x, context=c2)
    assert not torch.allclose(z1, z2) and not torch.allclose(v1, v2)
    x_sampled, minus_v = layer.inverse(z1, context=c1)
    z_again, v_again = layer(x_sampled, context=c1)
    assert torch.allclose(z_again, z1, atol=1e-9) and torch.allclose(v_again, -minus_v, atol=1e-9)


def test_qr_factor_is_orthogonal_and_the_layer_starts_at_the_identity():
    qr = QRLinear(4).double()
    x = torch.randn(3, 4, dtype=torch.float64)
    assert torch.allclose(qr(x)[0], x)  # R = I, b = 0 at initialisation
    perturb(qr)
    q = qr.orthogonal()
    assert torch.allclose(q.t() @ q, torch.eye(4, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(qr.inverse(qr(x)[0])[0], x, atol=1e-12)
    assert torch.allclose(qr(x)[1], torch.linalg.slogdet(qr.weight()).logabsdet.expand(3), atol=1e-12)


def test_permutation_is_fixed_by_its_seed():
    def perm(seed):
        return MLPFunnel(10, 4, permutation_seed=seed).permutation._permutation

    assert torch.equal(perm(5), perm(5)) and not torch.equal(perm(5), perm(6))
    assert MLPFunnel(10, 4, permutation_seed=None).permutation is None


def test_float32_and_batch_of_one():
    layer = MLPFunnel(6, 2, hidden_features=8)
    z, value = layer(torch.randn(1, 6))
    assert z.shape == (1, 2) and value.shape == (1,) and z.dtype == torch.float32


def test_bad_arguments_raise_value_error_naming_the_problem():
    with pytest.raises(ValueError, match="cannot increase the dimension"):
        MLPFunnel(2, 3)
    with pytest.raises(ValueError, match="parameterisation must be one of"):
        MLPFunnel(3, 2, parameterisation="svd")
    with pytest.raises(ValueError, match="features_out must be a positive int, got 0"):
        MLPFunnel(3, 0)
    with pytest.raises(ValueError, match="takes no decoder"):
        MLPFunnel(3, 3, decoder=GaussianDecoder(1, 3))
    with pytest.raises(ValueError, match="must reduce the dimension"):
        MLPFunnelBound(3, 3)


# -- the bound -------------------------------------------------------------------------------------


@pytest.mark.parametrize("parameterisation", PARAMETERISATIONS)
def test_bound_integrates_to_less_than_one(parameterisation):
    model = small_model(MLPFunnelBound, 2, 1, parameterisation)
    assert MLPFunnelBound.exact is False and MLPFunnel.exact is True
    total = integrate_density(model.log_prob, bounds=(-10, 10), resolution=400)
    assert 0 < total < 0.9  # measured 0.17 to 0.36 for perturbed parameters


def test_bound_is_not_a_bound_when_p_phi_is_narrow():
    # R = I, W' = 0, b = 0 so z = x_+; a linear p_phi with mean (0, z) and sigma (1, e^-3) for x.
    decoder = GaussianDecoder(2, 1, num_hidden_layers=0)
    layer = MLPFunnelBound(2, 1, decoder=decoder, permutation_seed=None)
    model = FunnelFlow([layer], 2).double()
    with torch.no_grad():
        decoder.net[0].weight.copy_(torch.tensor([[0.0], [1.0], [0.0], [0.0]]))
        decoder.net[0].bias.copy_(torch.tensor([0.0, 0.0, 0.0, -3.0]))
        layer.bijection.mixing.weight.zero_()
    total = integrate_density(model.log_prob, bounds=(-8, 8), resolution=1600)
    # integral = int N(z) N(x_+ = z; z, e^-6) dz = e^3 / sqrt(2 pi): far above 1.
    assert abs(total - math.exp(3) / math.sqrt(2 * math.pi)) < 1e-2


def test_bound_samples_come_from_p_phi_and_do_not_map_back():
    layer = small(MLPFunnelBound, 3, 1, permutation_seed=4)
    z = torch.randn(5, 1, dtype=torch.float64)
    x, minus_value = layer.inverse(z)
    permuted = layer.permutation(x)[0]
    expected = layer.decoder.log_prob(permuted, context=z) + torch.linalg.slogdet(layer.weight_r()).logabsdet
    assert torch.allclose(minus_value, -expected, atol=1e-12)
    assert not torch.allclose(layer(x)[0], z, atol=1e-3)  # the right-inverse condition fails
