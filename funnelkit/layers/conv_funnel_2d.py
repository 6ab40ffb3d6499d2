"""The convolutional funnel on images (paper Sec. 3, A.7.1 Eqs. 20-21, A.8, A.9).

A 2x2 kernel with stride two on C channels (weight (C, C, 2, 2), bias (C)) maps x of shape
(C, H, W) to z of shape (C, ceil(H/2), ceil(W/2)). In every 2x2 tile t the bottom-right element
(kh = kw = 1) of each channel is kept (x_+,t: C values) and the other three are dropped
(x_-,t: 3C values). For fixed x_- each tile's output is affine in its kept values,

    z_t = J x_+,t + W_- x_-,t + bias,       J = weight[:, :, 1, 1]  (C x C, Eq. 20)

so dz/dx_+ is block diagonal with one J per tile and

    V(x) = (number of tiles) log|det J| + log p_phi(x_- | z),

with p_phi the amortised tile Gaussian of A.7.1/A.8 (:class:`TileGaussianDecoder`).

Inverse (Eq. 21), all tiles in parallel: draw x_- ~ p_phi(. | z); consts = the convolution of
the image holding x_- and zeros at the kept positions (plus the bias); x_+,t = J^{-1}(z_t - consts_t).

The Jacobian J:

* ``jacobian="lu"`` (default): J = P L U, P a fixed random permutation, L unit lower
  triangular, U upper triangular with diagonal sign * exp(s) (a fixed sign). det J can never be
  zero and log|det J| = sum(s).
* ``jacobian="unconstrained"``: J is a free slice of the kernel, as in the authors' code;
  log|det J| comes from ``torch.linalg.slogdet``. Nothing keeps det J away from 0 there, and
  training can diverge if it gets close.

Odd sizes (the anomaly model's 28 -> 14 -> 7 -> 4 -> 2, A.9). The authors zero-pad 7 -> 8 with a
"surjection" of log-det 0, which leaves the density unnormalised (it lives on a slice). Here the
padding is a constant, not data: an odd H gets one row of zeros at the TOP and an odd W one column
at the LEFT, so every kept (bottom-right) element is a real pixel. p_phi's log-prob and the sampled
output ignore the padded positions (a mask). For fixed real dropped pixels the map from the real
kept pixels to z is still z_t = J x_+,t + const_t, a bijection, and p_phi is a normalised density
of the real dropped pixels, so the layer stays exact.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..validation import check_choice, check_positive_int
from .base import FunnelLayer
from .tile_decoder import TileGaussianDecoder


class ConvFunnel2d(FunnelLayer):
    """A.7.1: the exact 2x2, stride-two convolutional funnel on ``(batch, C, H, W)`` images.

    Args:
        channels, height, width: the input shape (C, H, W); odd H or W are padded exactly
            (see the module docstring).
        hidden_features, num_hidden_layers: the tile Gaussian's MLP (A.8: 128 x 3).
        jacobian: ``"lu"`` (det J never zero) or ``"unconstrained"`` (the authors' free slice).
        context_features: width of an outer context given to p_phi with every tile (0: none).

    Attributes:
        input_shape: (C, H, W); output_shape: (C, ceil(H/2), ceil(W/2)).
    """

    exact = True
    bijective = False
    stochastic_inverse = True

    def __init__(self, channels, height, width, hidden_features=128, num_hidden_layers=3,
                 jacobian="lu", context_features=0):
        super().__init__()
        channels = check_positive_int(channels, "channels")
        height = check_positive_int(height, "height")
        width = check_positive_int(width, "width")
        check_choice(jacobian, ("lu", "unconstrained"), "jacobian")
        self.input_shape = (channels, height, width)
        self.pad_top, self.pad_left = height % 2, width % 2
        self.output_shape = (channels, (height + 1) // 2, (width + 1) // 2)
        self.jacobian = jacobian
        self.context_features = context_features

        c = channels
        bound = 1 / math.sqrt(4 * c)  # torch's default Conv2d initialisation, as the authors'
        self.dropped_weight = nn.Parameter(torch.empty(c, c, 3).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(c).uniform_(-bound, bound))
        if jacobian == "lu":
            self.register_buffer("permutation", torch.randperm(c))
            self.lower = nn.Parameter(torch.zeros(c, c))  # only the strict lower part is used
            self.upper = nn.Parameter(torch.zeros(c, c))  # only the strict upper part is used
            self.log_abs_diagonal = nn.Parameter(torch.zeros(c))  # s
            self.register_buffer("diagonal_sign", torch.ones(c))
        else:
            self.kept_weight = nn.Parameter(torch.empty(c, c).uniform_(-bound, bound))
        self.decoder = TileGaussianDecoder(c, hidden_features, num_hidden_layers, context_features)
        real = F.pad(torch.ones(1, *self.input_shape), (self.pad_left, 0, self.pad_top, 0))
        self.register_buffer("dropped_mask", self._tile(real)[1][0] > 0.5, persistent=False)

    # -- the kernel ---------------------------------------------------------------------------
    @property
    def num_tiles(self):
        return self.output_shape[1] * self.output_shape[2]

    def _lower_upper(self):
        c = self.input_shape[0]
        eye = torch.eye(c, dtype=self.lower.dtype, device=self.lower.device)
        lower = torch.tril(self.lower, -1) + eye
        upper = torch.triu(self.upper, 1) + torch.diag(self.diagonal_sign * torch.exp(self.log_abs_diagonal))
        return lower, upper

    def jacobian_matrix(self):
        """J = weight[:, :, 1, 1], the (C, C) matrix acting on each tile's kept values."""
        if self.jacobian == "unconstrained":
            return self.kept_weight
        lower, upper = self._lower_upper()
        return (lower @ upper)[self.permutation]  # P L U with P = I[permutation]

    def log_abs_det_jacobian(self):
        """log|det J| (a scalar)."""
        if self.jacobian == "unconstrained":
            return torch.linalg.slogdet(self.kept_weight).logabsdet
        return self.log_abs_diagonal.sum()

    @property
    def weight(self):
        """The full kernel, shape (C, C, 2, 2): the dropped taps and J at (1, 1)."""
        c = self.input_shape[0]
        return torch.cat([self.dropped_weight, self.jacobian_matrix().unsqueeze(-1)], dim=-1).reshape(c, c, 2, 2)

    def _solve(self, rhs):
        """J^{-1} rhs for ``rhs`` of shape (batch, C, tiles)."""
        if self.jacobian == "unconstrained":
            return torch.linalg.solve(self.kept_weight, rhs)
        lower, upper = self._lower_upper()
        unpermuted = rhs[:, torch.argsort(self.permutation)]  # P^T rhs
        y = torch.linalg.solve_triangular(lower, unpermuted, upper=False, unitriangular=True)
        return torch.linalg.solve_triangular(upper, y, upper=True)

    # -- tiles --------------------------------------------------------------------------------
    def _pad(self, x):
        return F.pad(x, (self.pad_left, 0, self.pad_top, 0))

    def _tile(self, padded):
        """(batch, C, 2h, 2w) -> kept (batch, tiles, C), dropped (batch, tiles, 3C)."""
        batch, c = padded.shape[:2]
        _, h, w = self.output_shape
        tiles = padded.reshape(batch, c, h, 2, w, 2).permute(0, 2, 4, 1, 3, 5).reshape(batch, h * w, c, 4)
        return tiles[..., 3], tiles[..., :3].reshape(batch, h * w, 3 * c)

    def _untile(self, kept, dropped):
        """Inverse of :meth:`_tile`: the padded image."""
        batch, _, c = kept.shape
        _, h, w = self.output_shape
        tiles = torch.cat([dropped.reshape(batch, h * w, c, 3), kept.unsqueeze(-1)], dim=-1)
        return tiles.reshape(batch, h, w, c, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(batch, c, 2 * h, 2 * w)

    def tiles(self, inputs):
        """Split images into ``(kept, dropped)``: ``(batch, tiles, C)`` and ``(batch, tiles, 3C)``.

        Tiles are in row-major order; padded entries of ``dropped`` are 0.
        """
        self._check(inputs, self.input_shape, "x")
        return self._tile(self._pad(inputs))

    # -- the layer ----------------------------------------------------------------------------
    def _check(self, tensor, shape, name):
        if not isinstance(tensor, torch.Tensor) or tensor.dim() != 4 or tuple(tensor.shape[1:]) != shape \
                or tensor.shape[0] == 0:
            got = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise ValueError(
                f"ConvFunnel2d expects {name} of shape (batch, {', '.join(map(str, shape))}) "
                f"(C, H, W = {shape[0]}, {shape[1]}, {shape[2]}), got {got}"
            )

    def _check_context(self, context, batch):
        if self.context_features == 0:
            if context is not None:
                raise ValueError("ConvFunnel2d takes no context (context_features=0), but one was given")
            return
        k = self.context_features
        if not isinstance(context, torch.Tensor) or context.dim() != 2 or tuple(context.shape) != (batch, k):
            got = tuple(context.shape) if isinstance(context, torch.Tensor) else type(context).__name__
            raise ValueError(f"ConvFunnel2d expects a context of shape ({batch}, {k}), got {got}")

    def _logabsdet(self, z):
        return self.num_tiles * self.log_abs_det_jacobian() * z.new_ones(z.shape[0])

    def contributions(self, inputs, context=None):
        """Return ``(z, logabsdet, log_p_dropped)``: the two terms of V(x) separately."""
        self._check(inputs, self.input_shape, "x")
        self._check_context(context, inputs.shape[0])
        padded = self._pad(inputs)
        z = F.conv2d(padded, self.weight, self.bias, stride=2)
        _, dropped = self._tile(padded)
        log_p = self.decoder.log_prob(dropped, z, mask=self.dropped_mask, context=context)
        return z, self._logabsdet(z), log_p

    def inverse_given_dropped(self, z, dropped):
        """Eq. 21: the image whose dropped values are ``dropped`` (``(batch, tiles, 3C)``) and whose
        kept values solve J x_+,t = z_t - consts_t. With the true dropped values this returns x."""
        self._check(z, self.output_shape, "z")
        dropped = torch.where(self.dropped_mask, dropped, torch.zeros_like(dropped))  # padding is 0
        batch, c = z.shape[:2]
        holes = self._untile(z.new_zeros(batch, self.num_tiles, c), dropped)
        consts = F.conv2d(holes, self.weight, self.bias, stride=2)
        kept = self._solve((z - consts).reshape(batch, c, self.num_tiles))
        image = self._untile(kept.transpose(1, 2), dropped)
        return image[:, :, self.pad_top:, self.pad_left:]

    def inverse(self, inputs, context=None):
        """Sample x with f(x) = z; returns ``(x, -V(x))`` so that log N(z) - value = log p(x)."""
        self._check(inputs, self.output_shape, "z")
        self._check_context(context, inputs.shape[0])
        dropped, log_p = self.decoder.sample_and_log_prob(inputs, mask=self.dropped_mask, context=context)
        x = self.inverse_given_dropped(inputs, dropped)
        return x, -(self._logabsdet(inputs) + log_p)
