"""The VAE baseline (A.4): its log_prob is a single-sample ELBO, a lower bound on log p(x).

The oracle is a linear-Gaussian VAE, z ~ N(0, I), x | z ~ N(W z + b, s^2 I), whose marginal
p(x) = N(b, W W^T + s^2 I), ELBO (Gaussian KL plus expected log-likelihood) and, when W has
orthogonal columns, exact posterior (a diagonal Gaussian, linear in x) are known in closed form.
"""

import math

import pytest
import torch
from torch import nn

from funnelkit.models.vae import MLP, VAE, GaussianMLPDecoder

from ..conftest import perturb

D, L = 3, 2


def linear_vae(scale=1.0, shift=0.0):
    """Encoder x -> [mean, log_var] linear; decoder z -> W z + b with one learnable log-std."""
    encoder = nn.Linear(D, 2 * L)
    decoder = GaussianMLPDecoder(L, D, width=1, depth=0, log_std="scalar")  # depth 0: one Linear layer
    vae = VAE(encoder, decoder, D, L, scale=scale, shift=shift).double()
    perturb(vae, scale=0.5)
    with torch.no_grad():
        vae.decoder.log_std.fill_(math.log(0.7))
    return vae


def decoder_parameters(vae):
    linear = vae.decoder.net[0]
    return linear.weight, linear.bias, vae.decoder.log_std.exp()


def exact_log_prob(vae, x):
    weight, bias, sigma = decoder_parameters(vae)
    covariance = weight @ weight.T + sigma**2 * torch.eye(D, dtype=x.dtype)
    return torch.distributions.MultivariateNormal(bias, covariance).log_prob(x)


def closed_form_elbo(vae, x):
    weight, bias, sigma = decoder_parameters(vae)
    mean, log_var = vae.encoder(x).chunk(2, dim=1)
    var = log_var.exp()
    residual = x - mean @ weight.T - bias
    spread = (var[:, None, :] * weight[None] ** 2).sum(dim=2)  # diag(W diag(var) W^T)
    expected_log_likelihood = (-0.5 * math.log(2 * math.pi) - torch.log(sigma)
                               - (residual**2 + spread) / (2 * sigma**2)).sum(dim=1)
    kl = 0.5 * (var + mean**2 - 1 - log_var).sum(dim=1)
    return expected_log_likelihood - kl


def test_elbo_is_a_bound_and_its_single_sample_mean_matches_the_closed_form():
    vae = linear_vae()
    x = torch.randn(4, D, dtype=torch.float64)
    n = 20_000
    with torch.no_grad():
        samples = vae.log_prob(x.repeat_interleave(n, dim=0)).reshape(4, n)
        closed, exact = closed_form_elbo(vae, x), exact_log_prob(vae, x)
    mean, error = samples.mean(dim=1), samples.std(dim=1) / math.sqrt(n)
    assert (exact - closed > 1e-2).all()  # a real gap: the test could fail
    assert ((mean - closed).abs() < 4 * error).all()
    assert (mean < exact + 4 * error).all()
    assert (samples.std(dim=1) > 1e-3).all()  # a stochastic estimator


def test_with_the_exact_posterior_every_single_sample_elbo_is_log_p():
    """W = Q diag(d) with orthonormal Q: the posterior N(S W^T (x - b) / s^2, S), S = diag(1 / (1 + d^2 / s^2)),
    is in the encoder's family, so log p(x|z) + log p(z) - log q(z|x) = log p(x) for every z."""
    vae = linear_vae(scale=2.0, shift=1.0)
    q, _ = torch.linalg.qr(torch.randn(D, L, dtype=torch.float64))
    d = torch.tensor([1.5, 0.6], dtype=torch.float64)
    with torch.no_grad():
        vae.decoder.net[0].weight.copy_(q * d)
        weight, bias, sigma = decoder_parameters(vae)
        posterior_var = 1 / (1 + d**2 / sigma**2)
        gain = posterior_var[:, None] * weight.T / sigma**2
        vae.encoder.weight.copy_(torch.cat([gain, torch.zeros(L, D, dtype=torch.float64)]))
        vae.encoder.bias.copy_(torch.cat([-gain @ bias, posterior_var.log()]))
        x = torch.randn(50, D, dtype=torch.float64)
        # x' = 2 x + 1 ~ N(b, C), so x ~ N((b - 1) / 2, C / 4); the ELBO includes D log 2.
        weight, bias, sigma = decoder_parameters(vae)
        covariance = (weight @ weight.T + sigma**2 * torch.eye(D, dtype=x.dtype)) / 4
        exact = torch.distributions.MultivariateNormal((bias - 1) / 2, covariance).log_prob(x)
        assert torch.allclose(vae.log_prob(x), exact, atol=1e-10)
        assert torch.allclose(vae.encode(x), (2 * x + 1 - bias) @ gain.T, atol=1e-12)


def test_log_prob_is_the_elbo_of_a_gaussian_encoder_and_decoder_with_heads():
    """Recompute one single-sample ELBO by hand with torch.distributions, from the same noise."""
    vae = perturb(VAE(MLP(D, 2 * L, 8, 2), GaussianMLPDecoder(L, D, 8, 2, log_std="head"), D, L).double(), 0.2)
    x = torch.randn(5, D, dtype=torch.float64)
    torch.manual_seed(3)
    value = vae.log_prob(x)
    torch.manual_seed(3)
    mean, log_var = vae.encoder(x).chunk(2, dim=1)
    q = torch.distributions.Normal(mean, (0.5 * log_var).exp())
    z = mean + (0.5 * log_var).exp() * torch.randn_like(mean)
    x_mean, x_log_std = vae.decoder(z)
    expected = (torch.distributions.Normal(x_mean, x_log_std.exp()).log_prob(x).sum(1)
                + torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1) - q.log_prob(z).sum(1))
    assert torch.allclose(value, expected, atol=1e-12)
    assert not torch.allclose(vae.elbo(x), vae.elbo(x))  # stochastic


def test_sample_at_temperature_scales_only_the_prior():
    """x = W z + b + s e with z ~ N(0, T^2 I): Cov x = T^2 W W^T + s^2 I."""
    vae = linear_vae()
    weight, _, sigma = decoder_parameters(vae)
    for temperature in (0.3, 1.0):
        with torch.no_grad():
            samples = vae.sample(40_000, temperature=temperature)
        assert samples.shape == (40_000, D) and samples.dtype == torch.float64
        expected = temperature**2 * weight @ weight.T + sigma**2 * torch.eye(D, dtype=torch.float64)
        assert torch.allclose(torch.cov(samples.T), expected.detach(), atol=0.06 * expected.diagonal().max().item())


def test_shapes_batch_one_float32_and_image_shaped_data():
    vae = VAE(MLP(D, 2 * L, 8, 1), GaussianMLPDecoder(L, D, 8, 1), D, L)
    assert vae.exact is False and vae.latent_dim == L and vae.data_dim == D
    x = torch.randn(1, D)
    assert vae.log_prob(x).shape == (1,) and vae.encode(x).shape == (1, L)
    assert vae.sample(1).shape == (1, D) and vae.sample(3, temperature=0.5).dtype == torch.float32
    image = VAE(nn.Sequential(nn.Flatten(), nn.Linear(12, 2 * L)), GaussianMLPDecoder(L, (3, 2, 2), 8, 1, "scalar"),
                (3, 2, 2), L, scale=1 / 32, shift=-0.5)
    images = 32 * torch.rand(4, 3, 2, 2)
    assert image.log_prob(images).shape == (4,) and image.sample(2).shape == (2, 3, 2, 2)
    assert image.data_dim == 12 and image.encode(images).shape == (4, L)


def test_preprocessing_adds_its_log_determinant():
    vae = linear_vae(scale=0.25, shift=-0.5)
    plain = linear_vae()
    plain.load_state_dict(vae.state_dict())
    x = torch.randn(6, D, dtype=torch.float64)
    torch.manual_seed(5)
    scaled = vae.log_prob(x)
    torch.manual_seed(5)
    unscaled = plain.log_prob(0.25 * x - 0.5)
    assert torch.allclose(scaled, unscaled + D * math.log(0.25), atol=1e-12)


def test_bad_input_is_refused():
    vae = linear_vae()
    with pytest.raises(ValueError, match=r"shape \(batch, 3\)"):
        vae.log_prob(torch.randn(4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="dtype torch.float64"):
        vae.log_prob(torch.randn(4, D))
    with pytest.raises(ValueError, match="finite"):
        vae.encode(torch.full((2, D), float("nan"), dtype=torch.float64))
    with pytest.raises(ValueError, match="no context"):
        vae.log_prob(torch.randn(2, D, dtype=torch.float64), context=torch.zeros(2, 1))
    with pytest.raises(ValueError, match="temperature"):
        vae.sample(2, temperature=-0.5)  # T = 0 is allowed: z = 0
    with pytest.raises(ValueError, match="num_samples"):
        vae.sample(0)
    with pytest.raises(ValueError, match="log_std must be"):
        GaussianMLPDecoder(L, D, 4, 1, log_std="per-value")
    with pytest.raises(ValueError, match="scale"):
        VAE(nn.Linear(D, 2 * L), GaussianMLPDecoder(L, D, 4, 1), D, L, scale=0.0)
