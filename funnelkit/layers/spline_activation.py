"""The invertible activation of the F-MLP (A.6, A.9): a monotone rational-quadratic spline.

y_i = s_i(x_i), with s_i a rational-quadratic spline of ``num_bins`` bins on
[-tail_bound, tail_bound] and the identity outside (linear tails; Durkan et al. 2019, NSF), so

    log |det dy/dx| = sum_i log s_i'(x_i).

A.9 uses "a fixed per dimension rational quadratic spline": one learned spline per coordinate
(``shared=False``, the default). The authors' code (``SPLEEN``) learns one spline shared by every
coordinate of the layer (``shared=True``). A spline of K bins has 3K - 1 parameters (K widths,
K heights, K - 1 inner derivatives; the two boundary derivatives are 1 to meet the tails).

The spline starts at the identity (uniform bins, unit derivatives); the paper is silent on the
initialisation (the authors' code starts at random).
"""

import math

import torch
from nflows.transforms.base import Transform
from nflows.transforms.splines.rational_quadratic import (
    DEFAULT_MIN_DERIVATIVE,
    unconstrained_rational_quadratic_spline,
)
from torch import nn

from ..validation import check_int


class SplineActivation(Transform):
    """The F-MLP's activation (A.6, A.9): an elementwise monotone RQ spline with linear tails,
    a bijection of R^features.

    Args:
        features: width of the input (batch, features).
        num_bins: bins of each spline.
        tail_bound: the spline acts on [-tail_bound, tail_bound]; identity outside.
        shared: one spline for all coordinates (the authors' code) instead of one per coordinate.
    """

    def __init__(self, features, num_bins=10, tail_bound=2.0, shared=False):
        super().__init__()
        features = check_int(features, "features", low=1, message="{name} must be an int >= {low}")
        num_bins = check_int(num_bins, "num_bins", low=2, message="{name} must be an int >= {low}")
        if not isinstance(tail_bound, (int, float)) or isinstance(tail_bound, bool) or not tail_bound > 0:
            raise ValueError(f"tail_bound must be a positive number, got {tail_bound!r}")
        self.features = features
        self.num_bins = num_bins
        self.tail_bound = float(tail_bound)
        self.shared = shared
        rows = 1 if shared else features
        unit_derivative = math.log(math.expm1(1 - DEFAULT_MIN_DERIVATIVE))  # softplus(.) + min = 1
        self.unnormalized_widths = nn.Parameter(torch.zeros(rows, num_bins))
        self.unnormalized_heights = nn.Parameter(torch.zeros(rows, num_bins))
        self.unnormalized_derivatives = nn.Parameter(torch.full((rows, num_bins - 1), unit_derivative))

    @property
    def features_in(self):
        return self.features

    def _spline(self, inputs, inverse):
        if inputs.dim() != 2 or inputs.shape[1] != self.features:
            raise ValueError(f"SplineActivation expects inputs of shape (batch, {self.features}), "
                             f"got {tuple(inputs.shape)}")
        shape = (inputs.shape[0], self.features, -1)
        outputs, logabsdet = unconstrained_rational_quadratic_spline(
            inputs,
            self.unnormalized_widths.expand(shape),
            self.unnormalized_heights.expand(shape),
            self.unnormalized_derivatives.expand(shape),
            inverse=inverse,
            tails="linear",
            tail_bound=self.tail_bound,
        )
        return outputs, logabsdet.sum(dim=1)

    def forward(self, inputs, context=None):
        return self._spline(inputs, inverse=False)

    def inverse(self, inputs, context=None):
        return self._spline(inputs, inverse=True)
