"""Autoregressive rational-quadratic spline stacks (NSF, Durkan et al. 2019), built from nflows."""

from nflows.transforms.autoregressive import MaskedPiecewiseRationalQuadraticAutoregressiveTransform
from nflows.transforms.base import CompositeTransform
from nflows.transforms.permutations import ReversePermutation
from torch.nn import functional as F

from .._compat import LULinear

ACTIVATIONS = {"relu": F.relu, "leaky_relu": F.leaky_relu}


def rq_autoregressive(features, context_features=None, hidden_features=256, num_bins=50,
                      num_blocks=2, tail_bound=4.0, activation="relu"):
    """One autoregressive RQ-spline layer with linear tails on [-tail_bound, tail_bound]."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    return MaskedPiecewiseRationalQuadraticAutoregressiveTransform(
        features=features,
        hidden_features=hidden_features,
        context_features=context_features or None,
        num_bins=num_bins,
        tails="linear",
        tail_bound=tail_bound,
        num_blocks=num_blocks,
        use_residual_blocks=True,
        activation=ACTIVATIONS[activation],
    )


def rq_autoregressive_stack(features, num_layers, context_features=None, mixing="reverse", **kwargs):
    """``num_layers`` RQ layers with a mixing layer between consecutive ones.

    ``mixing`` is ``"reverse"`` (a reversed permutation, as in NSF) or ``"lu"`` (an LU-linear
    layer, as in the authors' code, which puts one between 1-D layers too).
    """
    layers = []
    for i in range(num_layers):
        if i > 0:
            layers.append(mixing_layer(features, mixing))
        layers.append(rq_autoregressive(features, context_features, **kwargs))
    return CompositeTransform(layers)


def mixing_layer(features, mixing):
    """A reversed permutation (``"reverse"``) or an LU-linear layer (``"lu"``)."""
    if mixing == "reverse":
        return ReversePermutation(features)
    if mixing == "lu":
        return LULinear(features)
    raise ValueError(f"mixing must be 'reverse' or 'lu', got {mixing!r}")
