"""F-MLP: stacks of MLP funnels (Sec. 3) and spline activations, for tabular data (A.6) and
anomaly detection on images (A.9).

Every layer is a fixed random permutation and an :class:`~funnelkit.layers.mlp_funnel.MLPFunnel`
with R in LU form, followed by a :class:`~funnelkit.layers.spline_activation.SplineActivation`;
the last layer has no activation (an MLP's output layer is linear, as in the authors' code; the
paper's "an activation for each layer" is silent on the last one). Every layer is exact, so
log p(x) is an exact log density.

* :func:`tabular_f_mlp` (A.6): D -> D -> D -> M -> M -> L -> L -> L -> L, that is "two dimension
  preserving layers, followed by one layer to map to a vector with half the dimension of the
  input and the latent space dimension [M], followed by a dimension preserving layer, a layer to
  map to the latent space, and then three dimension preserving layers". M is the midpoint
  (D + L) / 2 rounded up, M = D - floor((D - L) / 2), as the authors' later code (D - k/2).
  Splines: 10 bins, tail bound 2; p_phi a Gaussian from a ReLU MLP 128 x 3.
* :func:`anomaly_f_mlp` (A.9): flatten, then five layers 784 -> 512 -> 256 -> 128 -> 64 -> LS
  (the paper writes 768; a 28 x 28 image has 784 values), a per-dimension spline of 5 bins and
  tail bound 4 between them, decoders MLPs 256 x 3 (the authors' code).

Presets: ``"paper"`` (the sizes above) and ``"quick"`` (narrower decoders, and for images
narrower layers, for a laptop CPU).
"""

import math
from dataclasses import dataclass, replace

from nflows.transforms.base import Transform

from ..layers.mlp_funnel import MLPFunnel
from ..layers.spline_activation import SplineActivation
from ..validation import check_choice, check_positive_int
from .funnel_flow import FunnelFlow


@dataclass(frozen=True)
class FMLPConfig:
    """Sizes of an F-MLP; the defaults are the paper's tabular settings (A.6)."""

    num_bins: int = 10
    tail_bound: float = 2.0
    shared_spline: bool = False  # True: one spline per layer, as the authors' SPLEEN
    hidden_features: int = 128  # p_phi: ReLU MLP hidden_features x num_hidden_layers
    num_hidden_layers: int = 3
    parameterisation: str = "lu"
    final_activation: bool = False  # a spline after the last layer too
    seed: int = 0  # layer i permutes with seed + i


#: The tabular F-MLP's config of each preset.
TABULAR_CONFIGS = {
    "paper": FMLPConfig(),
    "quick": FMLPConfig(hidden_features=32, num_hidden_layers=2),
}


@dataclass(frozen=True)
class AnomalyFMLPConfig(FMLPConfig):
    """A.9: five layers to the latent size; per-dimension 5-bin splines with tail bound 4."""

    num_bins: int = 5
    tail_bound: float = 4.0
    hidden_features: int = 256
    widths: tuple = (512, 256, 128, 64)  # the hidden widths; then the latent size


#: The anomaly F-MLP's config of each preset.
ANOMALY_CONFIGS = {
    "paper": AnomalyFMLPConfig(),
    "quick": AnomalyFMLPConfig(hidden_features=64, num_hidden_layers=2, widths=(256, 128, 64, 32)),
}


def tabular_widths(data_dim, latent_dim):
    """The nine widths of A.6's stack, D, D, D, M, M, L, L, L, L, with M = D - (D - L) // 2."""
    middle = data_dim - (data_dim - latent_dim) // 2
    return [data_dim, data_dim, data_dim, middle, middle, latent_dim, latent_dim, latent_dim, latent_dim]


def f_mlp_layers(widths, config):
    """MLP funnels widths[i] -> widths[i + 1], each followed by a spline activation but the last."""
    layers = []
    for i, (features_in, features_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(MLPFunnel(features_in, features_out, config.parameterisation,
                                permutation_seed=config.seed + i, hidden_features=config.hidden_features,
                                num_hidden_layers=config.num_hidden_layers))
        if i < len(widths) - 2 or config.final_activation:
            layers.append(SplineActivation(features_out, config.num_bins, config.tail_bound, config.shared_spline))
    return layers


def _config(presets, preset, overrides, kind):
    check_choice(preset, tuple(presets), "preset")
    try:
        return replace(presets[preset], **overrides)
    except TypeError as error:
        raise ValueError(f"unknown {kind} F-MLP setting: {error}") from None


def tabular_f_mlp(data_dim, latent_dim, preset="paper", **overrides):
    """The F-MLP of A.6 for vectors of width ``data_dim`` with a latent of width ``latent_dim``.

    ``overrides`` set any :class:`FMLPConfig` field (num_bins, tail_bound, hidden_features, ...).
    """
    data_dim = check_positive_int(data_dim, "data_dim")
    latent_dim = check_positive_int(latent_dim, "latent_dim")
    if latent_dim > data_dim:
        raise ValueError(f"latent_dim must be at most data_dim={data_dim}, got {latent_dim}")
    config = _config(TABULAR_CONFIGS, preset, overrides, "tabular")
    record = {"builder": "tabular_f_mlp", "name": "f-mlp", "preset": preset, "data_dim": data_dim,
              "latent_dim": latent_dim, "overrides": dict(overrides)}
    return FunnelFlow(f_mlp_layers(tabular_widths(data_dim, latent_dim), config), data_dim, config=record)


class Flatten(Transform):
    """(batch, *shape) -> (batch, prod(shape)); a reshape, log-det 0 (A.9: the F-MLP first flattens the image)."""

    def __init__(self, shape):
        super().__init__()
        self.input_shape = tuple(shape)
        self.features_out = math.prod(self.input_shape)

    def forward(self, inputs, context=None):
        if tuple(inputs.shape[1:]) != self.input_shape:
            raise ValueError(f"Flatten expects inputs of shape (batch, {', '.join(map(str, self.input_shape))}), "
                             f"got {tuple(inputs.shape)}")
        return inputs.reshape(inputs.shape[0], -1), inputs.new_zeros(inputs.shape[0])

    def inverse(self, inputs, context=None):
        return inputs.reshape(inputs.shape[0], *self.input_shape), inputs.new_zeros(inputs.shape[0])


def anomaly_f_mlp(latent_size, image_shape=(1, 28, 28), preset="paper", **overrides):
    """The F-MLP of A.9: flatten, then MLP funnels 784 -> 512 -> 256 -> 128 -> 64 -> latent_size.

    ``overrides`` set any :class:`AnomalyFMLPConfig` field (widths, num_bins, hidden_features, ...).
    The model takes images of shape (batch, *image_shape).
    """
    latent_size = check_positive_int(latent_size, "latent_size")
    image_shape = tuple(check_positive_int(n, "each entry of image_shape") for n in image_shape)
    config = _config(ANOMALY_CONFIGS, preset, overrides, "anomaly")
    data_dim = math.prod(image_shape)
    widths = [data_dim, *config.widths, latent_size]
    if any(a < b for a, b in zip(widths[:-1], widths[1:])):
        raise ValueError(f"F-MLP widths must not increase, got {widths}")
    layers = [Flatten(image_shape), *f_mlp_layers(widths, config)]
    record = {"builder": "anomaly_f_mlp", "name": "f-mlp", "preset": preset, "latent_size": latent_size,
              "image_shape": list(image_shape), "overrides": dict(overrides)}
    return FunnelFlow(layers, image_shape, config=record)


__all__ = ["ANOMALY_CONFIGS", "AnomalyFMLPConfig", "FMLPConfig", "Flatten", "TABULAR_CONFIGS",
           "anomaly_f_mlp", "f_mlp_layers", "tabular_f_mlp", "tabular_widths"]
