"""The conditional densities p_phi(x_- | z) of a funnel layer (paper Sec. 2, A.5, A.6).

Both are nflows ``Distribution``s, so a funnel can take either:

* :class:`GaussianDecoder`: the Gaussian ansatz, an MLP from the context to the mean and the
  log standard deviation of a diagonal Gaussian (A.4, A.6, A.7.1).
* :func:`flow_decoder`: a conditional neural spline flow (A.5: "an NSF with ... 64 nodes in the
  MLP and ten bins per layer").

Both honour :func:`funnelkit.layers.decoder_noise.scaled_decoder_noise`: inside it they draw
``s * eps`` instead of ``eps`` (s = 0: the Gaussian's mean; for the flow, the image of zero
base noise), and their ``sample_and_log_prob`` is the exact log density of what they drew.
"""

import math

import torch
from nflows.distributions.base import Distribution
from nflows.flows.base import Flow
from torch import nn

from .._compat import StandardNormal
from .decoder_noise import decoder_noise_scale
from .splines import rq_autoregressive_stack


class GaussianDecoder(Distribution):
    """The Gaussian ansatz for p_phi of Eq. 6 (A.6, A.7.1): p(x | c) = N(x; mu(c), diag sigma(c)^2),
    with [mu, log sigma] = MLP(c).

    Args:
        features: width of x (the dropped part x_-).
        context_features: width of c (z, and the outer context if any).
        hidden_features, num_hidden_layers: size of the ReLU MLP.
    """

    def __init__(self, features, context_features, hidden_features=128, num_hidden_layers=3):
        super().__init__()
        if context_features < 1:
            raise ValueError(f"GaussianDecoder needs a context (z), got context_features={context_features}")
        layers, width = [], context_features
        for _ in range(num_hidden_layers):
            layers += [nn.Linear(width, hidden_features), nn.ReLU()]
            width = hidden_features
        last = nn.Linear(width, 2 * features)
        nn.init.zeros_(last.weight)  # start at N(0, I): a calm first step
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*layers, last)
        self.features = features

    def mean_and_log_std(self, context):
        mean, log_std = self.net(context).chunk(2, dim=1)
        return mean, log_std

    def _log_prob(self, inputs, context):
        if context is None:
            raise ValueError("GaussianDecoder.log_prob needs a context")
        mean, log_std = self.mean_and_log_std(context)
        standardised = (inputs - mean) * torch.exp(-log_std)
        return (-0.5 * standardised**2 - log_std - 0.5 * math.log(2 * math.pi)).sum(dim=1)

    def _sample(self, num_samples, context):
        if context is None:
            raise ValueError("GaussianDecoder.sample needs a context")
        mean, log_std = self.mean_and_log_std(context)
        scale = decoder_noise_scale()
        if scale == 0:  # the noise-free decoder: its mean, num_samples times
            return mean.unsqueeze(1).expand(-1, num_samples, -1).clone()
        noise = torch.randn(
            context.shape[0], num_samples, self.features, dtype=mean.dtype, device=mean.device
        )
        if scale != 1:
            noise = noise * scale
        return mean.unsqueeze(1) + torch.exp(log_std).unsqueeze(1) * noise


class ScaledStandardNormal(StandardNormal):
    """The N(0, I) base of a :func:`flow_decoder` (p_phi as a flow, A.5): draws ``s * eps`` inside
    :func:`~funnelkit.layers.decoder_noise.scaled_decoder_noise` (log_prob is N(0, I)'s, unchanged)."""

    def _sample(self, num_samples, context):
        scale = decoder_noise_scale()
        noise = super()._sample(num_samples, context)
        return noise if scale == 1 else noise * scale


def flow_decoder(features, context_features, num_layers=2, hidden_features=64, num_bins=10,
                 num_blocks=2, tail_bound=4.0, activation="relu", mixing="reverse"):
    """A conditional neural spline flow p(x | c): autoregressive RQ layers on x given c.

    Its base noise is scaled inside :func:`~funnelkit.layers.decoder_noise.scaled_decoder_noise`."""
    transform = rq_autoregressive_stack(
        features, num_layers, context_features=context_features, mixing=mixing, hidden_features=hidden_features,
        num_bins=num_bins, num_blocks=num_blocks, tail_bound=tail_bound, activation=activation,
    )
    return Flow(transform, ScaledStandardNormal([features]))
