"""The models of the anomaly-detection experiment (paper Sec. 4 "Anomaly Detection", Table 4, A.9,
Table 8): trained on MNIST (1 x 28 x 28, 8 bits), scored on Fashion-MNIST.

Every model takes dequantised values in [0, 2^b) and starts with the preprocessing
x' = x 2^-b - 1/2 (its log-determinant is part of log p(x); for the VAEs x' = x 2^-b).

* ``"nsf"``: the Glow-like RQ-NSF of A.9 (the authors' AD config: 64 hidden channels, 3 levels
  of 7 steps, 2 bins, tail bound 3, 3 residual blocks with batch norm, dropout 0.2), squeezing
  only where the size is even: 1x28x28 -> 4x14x14 -> 16x7x7 -> 16x7x7. Latent 784;
  ``latent_size`` is ignored.
* ``"f-nsf"``: the convolutional funnel NSF (A.9; the authors' ``funnel_conv_deeper``). Per level:
  [squeeze, 1 step, 1x1 conv, unsqueeze] -> ActNorm + ConvFunnel2d halving H and W ->
  [squeeze, 7 steps, 1x1 conv, unsqueeze]. Three levels give 28 -> 14 -> 7 -> 4 (latent 16),
  four give -> 2 (latent 4). Odd sizes are kept EXACT: a 7 x 7 image is not zero-padded to 8 x 8
  (the authors' padding has log-det 0 and leaves a density on a slice, reference note 6.3 item 9);
  where a squeeze is impossible the steps use a checkerboard spatial mask
  (:class:`~funnelkit.models.image_steps.CheckerboardRQCoupling`) and the next funnel maps
  7 -> 4 with constant padding that is not data (:class:`~funnelkit.layers.conv_funnel_2d.ConvFunnel2d`).
* ``"vae"``: the MLP VAE of A.9, encoder 784 -> 512 -> 512 -> 512 -> 2 LS and decoder
  LS -> 512 -> 512 -> 512 -> 784 with ReLU and one learnable scalar log standard deviation (the
  authors' code). Its log_prob is the ELBO, a bound (``exact`` is False).
* ``"f-mlp"``: :func:`funnelkit.models.f_mlp.anomaly_f_mlp` (784 -> 512 -> 256 -> 128 -> 64 -> LS),
  given the preprocessing and image-shaped inputs here.

Presets: ``"paper"`` (A.9 and the authors' AD config; the parameter counts are within a few per
cent of Table 8), ``"quick"`` (one thread, a few hundred steps of batch 64 in about a minute) and
``"classroom"`` (sized by measurement for a 2-core laptop CPU, about 25-30 minutes of training per flow on
one thread: ``benchmarks/results/classroom_sweep.md``; the same structure as the paper's, fewer
coupling steps, narrower conditioners, no dropout; the F-MLP keeps the paper's widths
784 -> 512 -> 256 -> 128 -> 64 -> LS with smaller decoders, ``CLASSROOM_F_MLP``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from torch import nn

from ..validation import check_choice, check_positive_int, lowercase
from .f_mlp import anomaly_f_mlp
from .funnel_flow import FunnelFlow
from .image_steps import Preprocess, StepConfig, funnel_block, glow_level
from .vae import MLP, VAE, GaussianMLPDecoder

ANOMALY_MODELS = ("vae", "f-nsf", "f-mlp", "nsf")
MNIST_SHAPE = (1, 28, 28)


@dataclass(frozen=True)
class AnomalyConfig(StepConfig):
    """Sizes of the anomaly models; the defaults are the paper's (A.9, the authors' AD config)."""

    levels: int = 3  # NSF levels; the F-NSF's follow from latent_size
    steps_per_level: int = 7  # NSF
    steps_before_funnel: int = 1  # F-NSF: the coupling steps in front of each funnel
    steps_after_funnel: int = 7  # F-NSF: the coupling steps after each funnel
    funnel_hidden_features: int = 128  # the tile Gaussian's ReLU MLP (A.8: 3 x 128)
    funnel_hidden_layers: int = 3
    funnel_jacobian: str = "lu"  # "unconstrained": J a free kernel slice, as the authors'
    vae_width: int = 512
    vae_depth: int = 3


PRESETS = {
    "paper": AnomalyConfig(),
    # one thread, batch 64: about 0.1-0.25 s a step (NSF and F-NSF both have 6 couplings at latent 16)
    "quick": AnomalyConfig(hidden_channels=16, num_res_blocks=1, dropout=0.0, steps_per_level=2,
                           steps_after_funnel=1, funnel_hidden_features=32, funnel_hidden_layers=2,
                           vae_width=256, vae_depth=3),
    # chosen by benchmarks/bench_classroom_sweep.py (results/classroom_sweep.md); parameters F-NSF 186,816
    # (latent 16), 249,289 (latent 4), NSF 120,864, VAE 1,879,857 (the paper's MLP VAE); one thread, batch 64:
    # 0.16-0.22 s a flow step, 0.02 s a VAE step
    "classroom": AnomalyConfig(hidden_channels=32, num_res_blocks=1, dropout=0.0, steps_per_level=2,
                               steps_after_funnel=2, funnel_hidden_features=64, funnel_hidden_layers=2,
                               vae_width=512, vae_depth=3),
}
#: The classroom F-MLP: the paper's widths (A.9), its decoders p_phi a ReLU MLP 128 x 2 (the paper's: 256 x 3).
CLASSROOM_F_MLP = dict(hidden_features=128, num_hidden_layers=2, widths=(512, 256, 128, 64))


def anomaly_config(preset="paper", **overrides):
    """The :class:`AnomalyConfig` of a preset, with any field overridden."""
    check_choice(preset, tuple(PRESETS), "preset")
    try:
        return replace(PRESETS[preset], **overrides)
    except TypeError as error:
        raise ValueError(f"unknown anomaly model setting: {error}") from None


def f_nsf_shapes(image_shape, levels):
    """The image shape after each funnel: H and W halve, rounding up (28 -> 14 -> 7 -> 4 -> 2)."""
    c, h, w = image_shape
    shapes = []
    for _ in range(levels):
        h, w = (h + 1) // 2, (w + 1) // 2
        shapes.append((c, h, w))
    return shapes


def f_nsf_levels(image_shape, latent_dim):
    """The number of funnel levels whose latent has ``latent_dim`` values (MNIST: 16 -> 3, 4 -> 4)."""
    reachable = {}
    for levels, shape in enumerate(f_nsf_shapes(image_shape, 8), start=1):
        reachable.setdefault(math.prod(shape), levels)
    if latent_dim not in reachable:
        raise ValueError(f"an F-NSF on {tuple(image_shape)} images halves H and W per level, so its latent size "
                         f"must be one of {sorted(reachable, reverse=True)}, got {latent_dim}")
    return reachable[latent_dim]


def mnist_nsf_layers(image_shape, config):
    """The A.9 NSF: ``config.levels`` levels of [squeeze where even] -> steps -> 1x1 conv."""
    layers, shape = [], tuple(image_shape)
    for _ in range(config.levels):
        level = glow_level(shape, config.steps_per_level, config)
        layers.append(level)
        shape = level.output_shape
    return layers


def mnist_f_nsf_layers(image_shape, levels, config):
    """The A.9 F-NSF (``funnel_conv_deeper``), exact at odd sizes; see the module docstring."""
    layers, shape = [], tuple(image_shape)
    for _ in range(levels):
        before = glow_level(shape, config.steps_before_funnel, config, unsqueeze=True)
        funnel, shape = funnel_block(shape, config.funnel_hidden_features, config.funnel_hidden_layers,
                                     config.funnel_jacobian)
        after = glow_level(shape, config.steps_after_funnel, config, unsqueeze=True)
        layers += [before, *funnel, after]
    return layers


def mlp_vae(image_shape, bits, latent_dim, config, record):
    """The MLP VAE of A.9 (a bound): flatten, MLP encoder to [mean, log-variance], MLP decoder with
    one learnable scalar log standard deviation; x' = x 2^-b in [0, 1) as in the authors' code."""
    data_dim = math.prod(image_shape)
    encoder = nn.Sequential(nn.Flatten(), MLP(data_dim, 2 * latent_dim, config.vae_width, config.vae_depth))
    decoder = GaussianMLPDecoder(latent_dim, tuple(image_shape), config.vae_width, config.vae_depth,
                                 log_std="scalar")
    return VAE(encoder, decoder, tuple(image_shape), latent_dim, scale=2.0**-bits, shift=0.0, config=record)


def mnist_model(name, image_shape, bits, latent_dim, config, record):
    """nsf, f-nsf or vae on small one-channel images (shared by :func:`anomaly_model` and
    :func:`funnelkit.models.image.image_model` for mnist and fashion-mnist)."""
    if name == "vae":
        return mlp_vae(image_shape, bits, latent_dim, config, record)
    if name == "nsf":
        layers = mnist_nsf_layers(image_shape, config)
    else:
        layers = mnist_f_nsf_layers(image_shape, f_nsf_levels(image_shape, latent_dim), config)
    return FunnelFlow([Preprocess(bits), *layers], data_shape=tuple(image_shape), config=record)


def f_mlp_model(latent_dim, preset, overrides, record, image_shape=MNIST_SHAPE, bits=8):
    """:func:`funnelkit.models.f_mlp.anomaly_f_mlp` (which flattens the images) behind the preprocessing."""
    if preset == "classroom":  # the F-MLP's own presets are paper and quick: classroom is paper resized
        preset, overrides = "paper", {**CLASSROOM_F_MLP, **overrides}
    model = anomaly_f_mlp(latent_dim, image_shape=tuple(image_shape), preset=preset, **overrides)
    return FunnelFlow([Preprocess(bits), *model.layers], data_shape=tuple(image_shape), config=record)


def anomaly_model(name: str, latent_size: int = 16, preset: str = "paper", **overrides) -> FunnelFlow | VAE:
    """Build an anomaly-detection model of A.9 for 1 x 28 x 28 MNIST images with 8 bits.

    Args:
        name: one of ``ANOMALY_MODELS``: "vae", "f-nsf", "f-mlp", "nsf".
        latent_size: 4 or 16 in the paper (the F-NSF reaches 196, 49, 16, 4 or 1); "nsf" ignores
            it (its latent is 784).
        preset: "paper", "quick" or "classroom".
        overrides: fields of :class:`AnomalyConfig` (for "f-mlp": of
            :class:`funnelkit.models.f_mlp.AnomalyFMLPConfig`).
    """
    name = lowercase(name)
    check_choice(name, ANOMALY_MODELS, "anomaly model")
    latent_size = check_positive_int(latent_size, "latent_size")
    record = {"builder": "anomaly", "name": name, "latent_size": latent_size, "preset": preset,
              "overrides": dict(overrides)}
    if name == "f-mlp":
        check_choice(preset, tuple(PRESETS), "preset")
        return f_mlp_model(latent_size, preset, overrides, record)
    config = anomaly_config(preset, **overrides)
    return mnist_model(name, MNIST_SHAPE, 8, latent_size, config, record)


__all__ = ["ANOMALY_MODELS", "AnomalyConfig", "CLASSROOM_F_MLP", "MNIST_SHAPE", "PRESETS", "anomaly_config",
           "anomaly_model", "f_nsf_levels", "mnist_f_nsf_layers", "mlp_vae", "mnist_nsf_layers"]
