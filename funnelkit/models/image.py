"""The image models of the paper (Sec. 4 "Image Data", Table 2, A.8, Table 7).

All take (n, C, H, W) dequantised values in [0, 2^b) and start with x' = x 2^-b - 1/2, whose
log-determinant is part of log p(x) (reference note 4.3), so bits per dimension are the usual
discrete ones.

* ``"nsf"``: RQ-NSF (C) of A.8, Glow-like: per level a squeeze, 7 steps of ActNorm -> 1x1
  convolution -> RQ coupling (conditioner: convolutional residual net, 3 blocks, batch norm,
  dropout), then a 1x1 convolution. CIFAR-10: 3 levels, no factoring out (latent 3,072).
  ImageNet64: 4 levels, multi-scale, half the channels factored out after each level (12,288).
  Hidden channels, bins, dropout and levels per dataset and bit depth: Table 7 (``TABLE_7``).
* ``"f-nsf"``: the same with two convolutional funnels (ActNorm + ConvFunnel2d, Gaussian ansatz a
  ReLU MLP 3 x 128) reaching Table 2's latent of D/16 (CIFAR-10 192, ImageNet64 768). Where they
  sit (the paper does not say where the second goes):

  1. "the first block of the NSF architecture" (A.8): squeeze, one step, 1x1 conv, unsqueeze, then
     the first funnel on the raw RGB image (C = 3: its tile Gaussian has A.8's "27 inputs" and 9
     outputs): 3 x H x W -> 3 x H/2 x W/2;
  2. the first NSF level (squeeze, 7 steps, 1x1 conv) -> the second funnel on 12 channels
     (108 inputs, 36 outputs): -> 12 x H/8 x W/8 (CIFAR-10 192, ImageNet64 768);
  3. the remaining levels (CIFAR-10: 2 more, ImageNet64: 3 more, multi-scale).

  A.8's "27 inputs" holds only for a funnel on raw RGB; the authors' default CIFAR model puts both
  funnels on squeezed tensors (C = 12 and 48: 108 and 432 inputs; reference note 6.4 item 11).
* ``"vae"``: the ResNet18-style VAE of A.8 (:mod:`funnelkit.models.resnet_vae`), latent the
  F-NSF's (192 / 768); its log_prob is the ELBO, a bound. x' = x 2^-b in [0, 1), the sigmoid's range.
* ``"mnist"`` and ``"fashion-mnist"`` (1 x 28 x 28): the anomaly models of A.9
  (:mod:`funnelkit.models.anomaly`): nsf, f-nsf with latent 16, the MLP VAE with latent 16.

Presets: ``"paper"`` (Table 7; for a GPU) and ``"quick"`` (the same structure, one step per
level, 16 hidden channels, small decoders: for a laptop CPU). ``"classroom"`` (MNIST and
Fashion-MNIST only: the anomaly models' classroom sizes, :data:`funnelkit.models.anomaly.PRESETS`,
sized by measurement for about 25-30 minutes of training on a 2-core laptop CPU); CIFAR-10 and
ImageNet64 have no classroom preset (a ValueError says so).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..validation import check_choice, lowercase
from . import anomaly
from .funnel_flow import FunnelFlow
from .image_steps import Preprocess, StepConfig, funnel_block, glow_level, multiscale_levels
from .resnet_vae import ResNetDecoder, ResNetEncoder
from .vae import VAE

IMAGE_MODELS = ("nsf", "f-nsf", "vae")
IMAGE_SHAPES = {"cifar10": (3, 32, 32), "imagenet64": (3, 64, 64), "mnist": (1, 28, 28),
                "fashion-mnist": (1, 28, 28)}
IMAGE_DATASETS = tuple(IMAGE_SHAPES)
BITS = (5, 8)


@dataclass(frozen=True)
class ImageConfig(StepConfig):
    """Sizes of the CIFAR-10 / ImageNet64 models (A.8); defaults: CIFAR-10 5-bit of Table 7."""

    levels: int = 3
    steps_per_level: int = 7
    multi_scale: bool = False
    steps_before_funnel: int = 1  # F-NSF: "the first block of the NSF architecture" (A.8)
    funnel_hidden_features: int = 128  # A.8: "a three layer MLP with 128 nodes in each layer"
    funnel_hidden_layers: int = 3
    funnel_jacobian: str = "lu"
    vae_base_channels: int = 64  # ResNet18: stage widths 64, 128, 256, 512
    vae_blocks: tuple = (2, 2, 2, 2)
    latent_dim: int = 0  # the VAE's latent dimension; 0: the F-NSF's, D / 16


TABLE_7 = {  # (dataset, bits): levels, hidden channels, bins, dropout (and multi-scale on ImageNet64)
    ("cifar10", 5): ImageConfig(levels=3, hidden_channels=64, num_bins=2, dropout=0.2),
    ("cifar10", 8): ImageConfig(levels=3, hidden_channels=96, num_bins=4, dropout=0.2),
    ("imagenet64", 5): ImageConfig(levels=4, hidden_channels=96, num_bins=8, dropout=0.1, multi_scale=True),
    ("imagenet64", 8): ImageConfig(levels=4, hidden_channels=96, num_bins=8, dropout=0.0, multi_scale=True),
}
TRAINING = {  # Table 7 and A.8: batch size, Adam learning rate (cosine-annealed to 0), steps
    ("cifar10", 5): {"batch_size": 512, "lr": 5e-4, "steps": 100_000},
    ("cifar10", 8): {"batch_size": 512, "lr": 5e-4, "steps": 200_000},
    ("imagenet64", 5): {"batch_size": 256, "lr": 5e-4, "steps": 100_000},
    ("imagenet64", 8): {"batch_size": 256, "lr": 5e-4, "steps": 200_000},
}
QUICK = dict(steps_per_level=1, hidden_channels=16, num_res_blocks=1, dropout=0.0, funnel_hidden_features=32,
             funnel_hidden_layers=2, vae_base_channels=8, vae_blocks=(1, 1, 1, 1))
PRESETS = ("paper", "quick", "classroom")
CLASSROOM_DATASETS = ("mnist", "fashion-mnist")  # the classroom preset is sized for 1 x 28 x 28 images only


def _check_preset(preset, dataset):
    check_choice(preset, PRESETS, "preset")
    if preset == "classroom" and dataset not in CLASSROOM_DATASETS:
        raise ValueError(f"the classroom preset is defined for {' and '.join(CLASSROOM_DATASETS)} (1 x 28 x 28), "
                         f"not for {dataset}; expected preset 'quick' or 'paper' for {dataset}")


def image_config(dataset, bits=8, preset="paper", **overrides):
    """The :class:`ImageConfig` of CIFAR-10 or ImageNet64 at a bit depth and preset, with overrides."""
    check_choice(dataset, ("cifar10", "imagenet64"), "dataset with a Table 7 config")
    check_choice(bits, BITS, "bits")
    _check_preset(preset, dataset)
    config = TABLE_7[dataset, bits]
    if preset == "quick":
        config = replace(config, **QUICK)
    try:
        return replace(config, **overrides)
    except TypeError as error:
        raise ValueError(f"unknown image model setting: {error}") from None


def nsf_layers(shape, config):
    """RQ-NSF (C): ``config.levels`` levels of squeeze -> steps -> 1x1 conv (multi-scale if set)."""
    if config.multi_scale:
        return [multiscale_levels(shape, config.levels, config.steps_per_level, config)]
    layers = []
    for _ in range(config.levels):
        level = glow_level(shape, config.steps_per_level, config)
        layers.append(level)
        shape = level.output_shape
    return layers


def f_nsf_layers(shape, config):
    """The F-NSF: first block -> funnel (raw RGB) -> first level -> funnel -> the other levels."""
    if config.levels < 2:
        raise ValueError(f"the image F-NSF needs at least 2 levels (a funnel after the first), got {config.levels}")
    funnel_sizes = (config.funnel_hidden_features, config.funnel_hidden_layers, config.funnel_jacobian)
    first_block = glow_level(shape, config.steps_before_funnel, config, unsqueeze=True)
    first_funnel, shape = funnel_block(shape, *funnel_sizes)
    first_level = glow_level(shape, config.steps_per_level, config)
    second_funnel, shape = funnel_block(first_level.output_shape, *funnel_sizes)
    layers = [first_block, *first_funnel, first_level, *second_funnel]
    if config.multi_scale:
        return layers + [multiscale_levels(shape, config.levels - 1, config.steps_per_level, config)]
    for _ in range(config.levels - 1):
        level = glow_level(shape, config.steps_per_level, config)
        layers.append(level)
        shape = level.output_shape
    return layers


def resnet_vae(shape, bits, config, record):
    """The ResNet18-style VAE of A.8 (a bound), latent ``config.latent_dim`` or D / 16."""
    latent = config.latent_dim or math.prod(shape) // 16
    encoder = ResNetEncoder(shape[0], latent, config.vae_base_channels, config.vae_blocks)
    decoder = ResNetDecoder(latent, shape, config.vae_base_channels, config.vae_blocks)
    return VAE(encoder, decoder, shape, latent, scale=2.0**-bits, shift=0.0, config=record)


def image_model(name: str, dataset: str, bits: int = 8, preset: str = "paper", **overrides) -> FunnelFlow | VAE:
    """Build ``"nsf"``, ``"f-nsf"`` or ``"vae"`` for ``dataset`` at ``bits`` (5 or 8) colour depth.

    Args:
        name: one of ``IMAGE_MODELS``.
        dataset: "cifar10", "imagenet64", "mnist" or "fashion-mnist".
        bits: 5 or 8; inputs are dequantised values in [0, 2^bits).
        preset: "paper" (Table 7), "quick" or (mnist, fashion-mnist) "classroom".
        overrides: fields of :class:`ImageConfig` (cifar10, imagenet64) or of
            :class:`funnelkit.models.anomaly.AnomalyConfig` plus ``latent_dim`` (mnist, fashion-mnist).
    """
    name, dataset = lowercase(name), lowercase(dataset)
    check_choice(name, IMAGE_MODELS, "image model")
    check_choice(dataset, IMAGE_DATASETS, "image dataset")
    check_choice(bits, BITS, "bits")
    _check_preset(preset, dataset)
    record = {"builder": "image", "name": name, "dataset": dataset, "bits": bits, "preset": preset,
              "overrides": dict(overrides)}
    shape = IMAGE_SHAPES[dataset]
    if dataset in ("mnist", "fashion-mnist"):
        settings = dict(overrides)
        latent_dim = settings.pop("latent_dim", 16)
        config = anomaly.anomaly_config(preset, **settings)
        return anomaly.mnist_model(name, shape, bits, latent_dim, config, record)
    config = image_config(dataset, bits, preset, **overrides)
    if name == "vae":
        return resnet_vae(shape, bits, config, record)
    layers = nsf_layers(shape, config) if name == "nsf" else f_nsf_layers(shape, config)
    return FunnelFlow([Preprocess(bits), *layers], data_shape=shape, config=record)


__all__ = ["BITS", "CLASSROOM_DATASETS", "IMAGE_DATASETS", "IMAGE_MODELS", "IMAGE_SHAPES", "ImageConfig", "TABLE_7",
           "TRAINING", "f_nsf_layers", "image_config", "image_model", "nsf_layers", "resnet_vae"]
