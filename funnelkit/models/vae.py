"""The VAE baseline of the paper (A.4, Eqs. 16-17): its log_prob is the ELBO, a lower bound.

    log p(x) >= E_q(z|x)[log p(x | z)] - KL[q(z | x) || p(z)]                         (Eq. 16)

with q(z | x) = N(mu_q(x), diag sigma_q(x)^2), p(z) = N(0, I) and the Gaussian decoder of Eq. 17,
p(x | z) = N(x; mu(z), diag sigma(z)^2). As in the paper (and its code) the expectation is a
single reparameterised sample and the KL term is estimated with that same sample, so
``log_prob`` is a stochastic single-sample ELBO. It is a *bound*: ``exact`` is False, and the
model table and results say so.

An optional affine preprocessing x' = scale * x + shift (for images: [0, 2^b) -> [-0.5, 0.5)) is
part of the model and its log-determinant D log|scale| is added, so the bound is in the same
units as the flows' log p(x).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..validation import check_batch, check_positive_int
from .base import DensityModel
from .tempering import check_sampling_temperature, decoder_noise_for

LOG_2PI = math.log(2 * math.pi)


def _diagonal_normal_log_prob(x, mean, log_std):
    """log N(x; mean, diag exp(log_std)^2), summed over all but the batch axis."""
    standardised = (x - mean) * torch.exp(-log_std)
    return (-0.5 * standardised**2 - log_std - 0.5 * LOG_2PI).flatten(1).sum(dim=1)


class VAE(DensityModel):
    """A variational autoencoder with Gaussian encoder and decoder (A.4).

    Args:
        encoder: a module mapping x' ``(batch, *data_shape)`` to ``(batch, 2 * latent_dim)``: the
            mean of q(z | x) and its log-variance (the authors' convention).
        decoder: a module mapping z ``(batch, latent_dim)`` to ``(mean, log_std)`` of p(x' | z):
            ``mean`` of shape ``(batch, *data_shape)``, ``log_std`` broadcastable to it (one
            learnable scalar, one per channel, or one per value).
        data_shape: the shape of x without the batch axis (an int for vectors).
        latent_dim: the width of z.
        scale, shift: the affine preprocessing x' = scale * x + shift (default: none).
        config: the plain dict from which :func:`funnelkit.models.build` rebuilds the model.
    """

    exact = False  # log_prob is the ELBO, a lower bound on log p(x)

    def __init__(self, encoder: nn.Module, decoder: nn.Module, data_shape: int | tuple[int, ...], latent_dim: int,
                 scale: float = 1.0, shift: float = 0.0, config: dict | None = None):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.data_shape = (data_shape,) if isinstance(data_shape, int) else tuple(data_shape)
        self.data_dim = math.prod(self.data_shape)
        self.latent_dim = check_positive_int(latent_dim, "latent_dim")
        self.latent_shape = (self.latent_dim,)
        if not scale:
            raise ValueError("scale of the preprocessing must be non-zero")
        self.scale, self.shift = float(scale), float(shift)
        self.config = dict(config or {})
        self.register_buffer("_dtype_probe", torch.zeros(()), persistent=False)

    def _posterior(self, x_pre):
        mean, log_var = self.encoder(x_pre).chunk(2, dim=1)
        return mean, 0.5 * log_var

    def elbo(self, inputs: torch.Tensor) -> torch.Tensor:
        """The single-sample ELBO of Eq. 16 (nats), shape ``(batch,)``: a stochastic lower bound."""
        check_batch(inputs, self.data_shape, self.dtype)
        x_pre = inputs * self.scale + self.shift
        mean, log_std = self._posterior(x_pre)
        z = mean + torch.exp(log_std) * torch.randn_like(mean)
        log_q = _diagonal_normal_log_prob(z, mean, log_std)
        log_prior = (-0.5 * z**2 - 0.5 * LOG_2PI).sum(dim=1)
        x_mean, x_log_std = self.decoder(z)
        log_likelihood = _diagonal_normal_log_prob(x_pre, x_mean, x_log_std.expand_as(x_mean))
        return log_likelihood + log_prior - log_q + self.data_dim * math.log(abs(self.scale))

    def log_prob(self, inputs: torch.Tensor, context: None = None) -> torch.Tensor:
        """The ELBO (Eq. 16), a lower bound on log p(x), not the log density; see :meth:`elbo`."""
        _no_context(context)
        return self.elbo(inputs)

    def encode(self, inputs: torch.Tensor, context: None = None) -> torch.Tensor:
        """The mean of q(z | x), shape ``(batch, latent_dim)``."""
        _no_context(context)
        check_batch(inputs, self.data_shape, self.dtype)
        return self._posterior(inputs * self.scale + self.shift)[0]

    def decode(self, z, noise_scale=1.0):
        """Sample x ~ p(x | z), in the data's units (the preprocessing undone).

        ``noise_scale`` s scales the decoder's noise, x' = mu(z) + s sigma(z) eps: 1 samples
        p(x | z), 0 gives its mean mu(z)."""
        mean, log_std = self.decoder(z)
        if noise_scale == 0:
            x_pre = mean
        else:
            noise = torch.randn_like(mean)
            if noise_scale != 1:
                noise = noise * noise_scale
            x_pre = mean + torch.exp(log_std) * noise
        return (x_pre - self.shift) / self.scale

    def sample(self, num_samples: int, temperature: float = 1.0, *, context: None = None,
               temper: str = "base") -> torch.Tensor:
        """z ~ N(0, T^2 I), then x ~ p(x | z). As in the paper only the prior is tempered (``temper="base"``).

        ``temper="all"`` scales the decoder's noise by T as well, ``"mean"`` returns the decoder's
        mean mu(z) (see :mod:`funnelkit.models.tempering`); T is a finite number >= 0.
        ``context`` is keyword-only and must be None; it is accepted so that code written for
        :class:`~funnelkit.models.funnel_flow.FunnelFlow` (``sample(n, temperature=T)``) runs."""
        _no_context(context)
        num_samples = check_positive_int(num_samples, "num_samples")  # torch takes only Python ints
        temperature = check_sampling_temperature(temperature)
        noise_scale = decoder_noise_for(temper, temperature)
        z = torch.randn(num_samples, self.latent_dim, dtype=self.dtype, device=self.device) * temperature
        return self.decode(z, noise_scale)

    def sample_and_log_prob(self, num_samples: int, temperature: float = 1.0, *, context: None = None,
                            temper: str = "base") -> tuple[torch.Tensor, torch.Tensor]:
        """Samples (as :meth:`sample`) and their :meth:`log_prob`: the single-sample ELBO, a
        stochastic lower bound on log p(x), not the log density (a VAE has no exact one)."""
        samples = self.sample(num_samples, temperature, context=context, temper=temper)
        return samples, self.log_prob(samples)


def _no_context(context):
    if context is not None:
        raise ValueError("a VAE takes no context, but one was given")


class MLP(nn.Sequential):
    """A ReLU multilayer perceptron ``in -> width x depth -> out`` (the VAE's nets, A.6, A.9)."""

    def __init__(self, in_features, out_features, width, depth):
        layers, features = [], in_features
        for _ in range(depth):
            layers += [nn.Linear(features, width), nn.ReLU()]
            features = width
        layers.append(nn.Linear(features, out_features))
        super().__init__(*layers)


class GaussianMLPDecoder(nn.Module):
    """z -> (mean, log_std) of p(x | z), the Gaussian of Eq. 17 (A.4): an MLP for the mean and
    either an MLP head for the log standard deviation (``log_std="head"``, the tabular VAE of the
    authors' code) or one learnable scalar (``log_std="scalar"``, their MNIST VAE)."""

    def __init__(self, latent_dim, data_shape, width, depth, log_std="head"):
        super().__init__()
        self.data_shape = (data_shape,) if isinstance(data_shape, int) else tuple(data_shape)
        data_dim = math.prod(self.data_shape)
        if log_std not in ("head", "scalar"):
            raise ValueError(f"log_std must be 'head' or 'scalar', got {log_std!r}")
        self.net = MLP(latent_dim, data_dim * (2 if log_std == "head" else 1), width, depth)
        self.log_std = nn.Parameter(torch.zeros(1)) if log_std == "scalar" else None

    def forward(self, z):
        out = self.net(z)
        if self.log_std is None:
            mean, log_std = out.chunk(2, dim=1)
            return mean.reshape(-1, *self.data_shape), log_std.reshape(-1, *self.data_shape)
        return out.reshape(-1, *self.data_shape), self.log_std.reshape((1,) * (1 + len(self.data_shape)))
