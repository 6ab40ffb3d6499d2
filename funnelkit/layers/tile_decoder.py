"""The amortised Gaussian ansatz of the image funnel (paper Sec. 4 "Image Data", A.7.1, A.8).

For the 2x2-tile convolutional funnel (:mod:`funnelkit.layers.conv_funnel_2d`), the dropped
values of each tile t (3C of them) get a diagonal Gaussian whose mean and log standard
deviation are an MLP of the 3x3 neighbourhood n_t of z around that tile (zero padding at the
borders, 9C inputs; A.8: "27 inputs" for C = 3):

    p_phi(x_- | z) = prod_t N(x_-,t; mu(n_t), diag sigma(n_t)^2),   [mu, log sigma] = MLP(n_t)

One MLP serves every tile (amortised); log-probs are summed over tiles. A mask removes entries
that are padding constants rather than data (odd image sizes), so the product runs over real
pixels only and stays a normalised density of them.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .decoder_noise import decoder_noise_scale
from .decoders import GaussianDecoder

_HALF_LOG_TWO_PI = 0.5 * math.log(2 * math.pi)


class TileGaussianDecoder(nn.Module):
    """p_phi(x_- | z) of :class:`ConvFunnel2d`: one Gaussian per 2x2 tile, from z's 3x3 neighbourhood.

    Dropped values of a tile are ordered channel-major: ``3 * channel + position``, with the
    positions (kh, kw) = (0, 0), (0, 1), (1, 0).

    Args:
        channels: C; each tile has 3C dropped values and a 9C-wide neighbourhood.
        hidden_features, num_hidden_layers: the ReLU MLP (A.8: 128 x 3).
        context_features: width of an outer context appended to every tile's neighbourhood.
    """

    def __init__(self, channels, hidden_features=128, num_hidden_layers=3, context_features=0):
        super().__init__()
        self.channels = channels
        self.context_features = context_features
        # GaussianDecoder zero-initialises its last layer: every tile starts at N(0, I).
        self.gaussian = GaussianDecoder(3 * channels, 9 * channels + context_features,
                                        hidden_features, num_hidden_layers)

    @property
    def features(self):
        """Dropped values per tile, 3C."""
        return 3 * self.channels

    def neighbourhoods(self, z, context=None):
        """The 3x3 neighbourhood of z around every tile (then the context): ``(batch, tiles, 9C + K)``."""
        near = F.unfold(z, kernel_size=3, padding=1).transpose(1, 2)
        if context is not None:
            near = torch.cat([near, context[:, None, :].expand(-1, near.shape[1], -1)], dim=2)
        return near

    def mean_and_log_std(self, z, context=None):
        """Per tile the mean and log standard deviation of its dropped values, each ``(batch, tiles, 3C)``."""
        near = self.neighbourhoods(z, context)
        batch, tiles = near.shape[:2]
        mean, log_std = self.gaussian.mean_and_log_std(near.reshape(batch * tiles, -1))
        return mean.reshape(batch, tiles, -1), log_std.reshape(batch, tiles, -1)

    @staticmethod
    def _sum(elementwise, mask):
        if mask is not None:
            elementwise = torch.where(mask, elementwise, torch.zeros_like(elementwise))
        return elementwise.sum(dim=(1, 2))

    def log_prob(self, dropped, z, mask=None, context=None):
        """log p_phi(x_- | z), shape ``(batch,)``; ``dropped`` is ``(batch, tiles, 3C)``.

        ``mask`` (``(tiles, 3C)`` bool) marks the entries that are data; the others are ignored.
        """
        mean, log_std = self.mean_and_log_std(z, context)
        standardised = (dropped - mean) * torch.exp(-log_std)
        return self._sum(-0.5 * standardised**2 - log_std - _HALF_LOG_TWO_PI, mask)

    def sample_and_log_prob(self, z, mask=None, context=None):
        """Draw x_- for every tile at once; masked-out entries are set to 0. Returns ``(dropped, log_prob)``.

        The noise is scaled by :func:`~funnelkit.layers.decoder_noise.decoder_noise_scale` (1 unless
        a sampling call tempers the decoders; 0 gives the means); ``log_prob`` is exact either way.
        """
        mean, log_std = self.mean_and_log_std(z, context)
        scale = decoder_noise_scale()
        if scale == 0:
            noise = torch.zeros_like(mean)
        else:
            noise = torch.randn_like(mean)
            if scale != 1:
                noise = noise * scale
        dropped = mean + torch.exp(log_std) * noise
        if mask is not None:
            dropped = torch.where(mask, dropped, torch.zeros_like(dropped))
        return dropped, self._sum(-0.5 * noise**2 - log_std - _HALF_LOG_TWO_PI, mask)
