"""Building blocks of the image flows: the Glow-like RQ-NSF (C) of the paper's A.8 and A.9.

* :class:`Preprocess`: x' = x / 2^b - 1/2, from dequantised values in [0, 2^b) to [-1/2, 1/2).
  It is the model's first transform (as NSF's ``AffineScalarTransform(scale=2^-b, shift=-0.5)``,
  reference note 4.3), so its log-determinant D log 2^-b is part of log p(x) and bits per
  dimension come out in the usual discrete units.
* :func:`glow_step`: one step, ActNorm -> invertible 1x1 convolution -> rational-quadratic
  coupling (A.8: "each step consists of an actnorm layer, an invertible 1x1 convolution and a
  coupling transform"). The coupling splits the channels at the middle; its conditioner is a
  convolutional residual network (3 blocks with batch normalisation and dropout in the paper);
  linear tails, tail bound 3, minimum bin width, height and derivative 1e-3.
* :class:`CheckerboardRQCoupling` and :func:`checkerboard_step`: the same step for an image
  with ONE channel and an odd side, where neither a squeeze nor a channel split is possible
  (the anomaly F-NSF at 7 x 7, A.9). The split is spatial: pixels with (i + j) even (or odd)
  pass unchanged and condition an RQ spline on every other pixel,

      y_t = RQS(x_t; theta(m * x)),   y_i = x_i,     m = the checkerboard of the kept pixels,

  so dy/dx is triangular and log|det| = sum over transformed pixels of log RQS'(x_t).
* :func:`glow_level`: a level, [squeeze] -> steps -> 1x1 convolution -> [unsqueeze]; squeezing
  only where H and W are even, and checkerboard steps where one channel cannot be split.
* :func:`multiscale_levels`: levels where half of the channels leave after each one (RealNVP's
  multi-scale architecture, nflows ``MultiscaleCompositeTransform``; ImageNet64 in A.8).
* :func:`funnel_block`: ActNorm -> :class:`~funnelkit.layers.conv_funnel_2d.ConvFunnel2d` (A.7.1),
  returned as two layers so that the funnel stays visible to ``FunnelFlow.contributions``.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
from nflows.nn.nets import ConvResidualNet
from nflows.transforms.base import CompositeTransform, InverseTransform, MultiscaleCompositeTransform, Transform
from nflows.transforms.coupling import PiecewiseRationalQuadraticCouplingTransform
from nflows.transforms.normalization import ActNorm as _NflowsActNorm
from nflows.transforms.reshape import SqueezeTransform
from nflows.transforms.splines.rational_quadratic import unconstrained_rational_quadratic_spline
from nflows.transforms.standard import PointwiseAffineTransform
from nflows.utils import torchutils

from .._compat import OneByOneConvolution
from ..layers.conv_funnel_2d import ConvFunnel2d
from ..validation import check_int


@dataclass(frozen=True)
class StepConfig:
    """Settings of one RQ coupling step; the defaults are the anomaly NSF's (A.9, AD config)."""

    hidden_channels: int = 64
    num_bins: int = 2
    num_res_blocks: int = 3
    batch_norm: bool = True
    dropout: float = 0.2
    tail_bound: float = 3.0
    min_bin_width: float = 1e-3
    min_bin_height: float = 1e-3
    min_derivative: float = 1e-3


class ActNorm(_NflowsActNorm):
    """Glow's ActNorm (nflows), the first part of each step (A.8), whose data-dependent initialisation
    waits for a training batch with at least two values per channel: from a single value nflows
    would set log_scale to NaN for good (a batch of 1 at a 1 x 1 level)."""

    def _initialize(self, inputs):
        if inputs.numel() // inputs.shape[1] >= 2:
            super()._initialize(inputs)


class Preprocess(PointwiseAffineTransform):
    """x' = x 2^-b - 1/2: dequantised values in [0, 2^b) to [-1/2, 1/2); log|det| = D log 2^-b (A.8, as NSF)."""

    def __init__(self, bits):
        bits = check_int(bits, "bits", 1, 16, message="{name} must be an int in [{low}, {high}]")
        super().__init__(shift=-0.5, scale=2.0**-bits)
        self.bits = bits


def _conv_resnet(config):
    def create(in_channels, out_channels):
        return ConvResidualNet(
            in_channels, out_channels, hidden_channels=config.hidden_channels, num_blocks=config.num_res_blocks,
            use_batch_norm=config.batch_norm, dropout_probability=config.dropout,
        )

    return create


def rq_coupling(channels, config):
    """The RQ coupling of A.8 on ``channels`` (>= 2): the first ceil(C/2) channels are transformed."""
    if channels < 2:
        raise ValueError(f"a channel-split coupling needs at least 2 channels, got {channels}")
    return PiecewiseRationalQuadraticCouplingTransform(
        mask=torchutils.create_mid_split_binary_mask(channels), transform_net_create_fn=_conv_resnet(config),
        num_bins=config.num_bins, tails="linear", tail_bound=config.tail_bound,
        apply_unconditional_transform=False, min_bin_width=config.min_bin_width,
        min_bin_height=config.min_bin_height, min_derivative=config.min_derivative,
    )


def glow_step(channels, config):
    """ActNorm -> 1x1 convolution (LU) -> RQ coupling with a mid-split channel mask (A.8)."""
    return CompositeTransform([ActNorm(channels), OneByOneConvolution(channels), rq_coupling(channels, config)])


class CheckerboardRQCoupling(Transform):
    """An RQ coupling with a checkerboard SPATIAL mask, exact for any C, H, W (one channel, odd sizes; A.9).

    Pixels (i, j) with (i + j) % 2 == ``parity`` are kept; every channel of every other pixel goes
    through its own RQ spline (linear tails), whose parameters come from a convolutional residual
    network that sees the kept pixels (others zeroed) and the mask itself as an extra channel.
    The transformed pixels never feed their own parameters, so the Jacobian is triangular.

    Args:
        channels, height, width: the input shape (C, H, W).
        parity: 0 or 1, which colour of the checkerboard is kept.
        config: a :class:`StepConfig`.
    """

    def __init__(self, channels, height, width, parity, config):
        super().__init__()
        if parity not in (0, 1):
            raise ValueError(f"parity must be 0 or 1, got {parity!r}")
        self.input_shape = self.output_shape = (channels, height, width)
        self.num_bins, self.tail_bound = config.num_bins, config.tail_bound
        self.min_bin_width, self.min_bin_height = config.min_bin_width, config.min_bin_height
        self.min_derivative = config.min_derivative
        self.hidden_channels = config.hidden_channels
        rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
        kept = ((rows + cols) % 2 == parity).float()[None, None]
        if kept.sum() == 0 or kept.sum() == height * width:
            raise ValueError(f"a checkerboard coupling needs at least 2 pixels, got {height} x {width}")
        self.register_buffer("kept_mask", kept)
        self.net = _conv_resnet(config)(channels + 1, channels * (3 * config.num_bins - 1))

    def _check(self, inputs):
        if not isinstance(inputs, torch.Tensor) or inputs.dim() != 4 or tuple(inputs.shape[1:]) != self.input_shape:
            got = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
            raise ValueError(f"CheckerboardRQCoupling expects inputs of shape "
                             f"(batch, {', '.join(map(str, self.input_shape))}), got {got}")

    def _spline(self, inputs, inverse):
        self._check(inputs)
        batch, c, h, w = inputs.shape
        kept = self.kept_mask.to(inputs.dtype)
        conditioner_input = torch.cat([inputs * kept, kept.expand(batch, 1, h, w)], dim=1)
        params = self.net(conditioner_input).reshape(batch, c, -1, h, w).permute(0, 1, 3, 4, 2)
        k, scale = self.num_bins, math.sqrt(self.hidden_channels)  # NSF's softmax scaling
        outputs, logabsdet = unconstrained_rational_quadratic_spline(
            inputs, params[..., :k] / scale, params[..., k : 2 * k] / scale, params[..., 2 * k :],
            inverse=inverse, tails="linear", tail_bound=self.tail_bound, min_bin_width=self.min_bin_width,
            min_bin_height=self.min_bin_height, min_derivative=self.min_derivative,
        )
        transformed = kept.expand_as(inputs) < 0.5
        outputs = torch.where(transformed, outputs, inputs)
        logabsdet = torch.where(transformed, logabsdet, torch.zeros_like(logabsdet)).flatten(1).sum(dim=1)
        return outputs, logabsdet

    def forward(self, inputs, context=None):
        return self._spline(inputs, inverse=False)

    def inverse(self, inputs, context=None):
        return self._spline(inputs, inverse=True)  # nflows' inverse spline returns -log|dy/dx|


def checkerboard_step(channels, height, width, parity, config):
    """ActNorm -> 1x1 convolution -> :class:`CheckerboardRQCoupling`: a step with no channel split."""
    return CompositeTransform([
        ActNorm(channels), OneByOneConvolution(channels),
        CheckerboardRQCoupling(channels, height, width, parity, config),
    ])


class Level(CompositeTransform):
    """A level of the multi-scale architecture (A.8), a composite that knows its input and output shapes (C, H, W)."""

    def __init__(self, transforms, input_shape, output_shape):
        super().__init__(transforms)
        self.input_shape, self.output_shape = tuple(input_shape), tuple(output_shape)


class Unsqueeze(InverseTransform):
    """(4C, H, W) -> (C, 2H, 2W), the inverse of nflows' ``SqueezeTransform``; log-det 0 (A.9's F-NSF levels)."""

    def __init__(self):
        super().__init__(SqueezeTransform())


def can_squeeze(shape):
    _, h, w = shape
    return h % 2 == 0 and w % 2 == 0


def glow_level(shape, flow_steps, config, squeeze=True, unsqueeze=False, final_conv=True, mask="auto"):
    """[Squeeze] -> ``flow_steps`` steps -> [1x1 convolution] -> [unsqueeze], as a :class:`Level`.

    The squeeze is skipped where H or W is odd (A.9: "squeezing only when the size is even").
    ``mask="auto"`` uses channel-split steps (:func:`glow_step`) when there are >= 2 channels and
    checkerboard steps (alternating parity) on one channel; ``"channel"`` or ``"checkerboard"`` force one.
    """
    if mask not in ("auto", "channel", "checkerboard"):
        raise ValueError(f"unknown mask {mask!r}; expected one of 'auto', 'channel', 'checkerboard'")
    c, h, w = input_shape = tuple(shape)
    transforms = []
    squeezed = squeeze and can_squeeze(input_shape)
    if squeezed:
        transforms.append(SqueezeTransform())
        c, h, w = 4 * c, h // 2, w // 2
    kind = ("channel" if c >= 2 else "checkerboard") if mask == "auto" else mask
    for i in range(flow_steps):
        transforms.append(glow_step(c, config) if kind == "channel" else checkerboard_step(c, h, w, i % 2, config))
    if final_conv:
        transforms.append(OneByOneConvolution(c))
    if squeezed and unsqueeze:
        transforms.append(Unsqueeze())
        c, h, w = input_shape
    return Level(transforms, input_shape, (c, h, w))


class MultiscaleLevels(MultiscaleCompositeTransform):
    """nflows' multi-scale composite (A.8, ImageNet64) that records its input shape and its flat output width."""

    def __init__(self, num_transforms, input_shape):
        super().__init__(num_transforms, split_dim=1)
        self.input_shape = tuple(input_shape)

    @property
    def output_shape(self):
        return (int(sum(np.prod(shape) for shape in self._output_shapes)),)


def multiscale_levels(shape, num_levels, flow_steps, config):
    """``num_levels`` levels of squeeze -> steps -> 1x1 convolution; after each level but the
    last, half of the channels are factored out (RealNVP's multi-scale architecture, A.8)."""
    multiscale = MultiscaleLevels(num_levels, shape)
    for _ in range(num_levels):
        if not can_squeeze(shape):
            raise ValueError(f"a multi-scale level squeezes, so H and W must be even, got {tuple(shape)}")
        level = glow_level(shape, flow_steps, config)
        shape = multiscale.add_transform(level, level.output_shape)
    return multiscale


def funnel_block(shape, hidden_features=128, num_hidden_layers=3, jacobian="lu"):
    """[ActNorm(C), ConvFunnel2d(C, H, W)]: the convolutional funnel of A.7.1 with the Gaussian
    ansatz of A.8 (a ReLU MLP ``hidden_features`` x ``num_hidden_layers``). Output (C, ceil(H/2), ceil(W/2))."""
    c, h, w = shape
    funnel = ConvFunnel2d(c, h, w, hidden_features=hidden_features, num_hidden_layers=num_hidden_layers,
                          jacobian=jacobian)
    return [ActNorm(c), funnel], tuple(funnel.output_shape)


__all__ = [
    "ActNorm", "CheckerboardRQCoupling", "Level", "MultiscaleLevels", "Preprocess", "StepConfig", "Unsqueeze",
    "can_squeeze", "checkerboard_step", "funnel_block", "glow_level", "glow_step", "multiscale_levels",
    "rq_coupling",
]
