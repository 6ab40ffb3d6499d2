"""Conditional elementwise bijections: the F of a coupling funnel (paper Sec. 2, Table 1, A.6).

A coupling funnel drops the coupling's identity features x_- and keeps

    z_i = f(x_+,i ; theta_i(c)),   c = the context (x_-, and any outer context),

where f is a monotone map of one variable whose parameters theta_i come from a residual network
of the context alone. The Jacobian dz/dx_+ is diagonal, so log|det| = sum_i log f'(x_+,i).

* :class:`ConditionalRQSpline`: f is a rational-quadratic spline on [-B, B] with linear tails
  (Durkan et al. 2019, the spline of NSF's coupling layers), for F-NSF.
* :class:`ConditionalAffine`: f(x) = s x + t with s = sigmoid(h + 2) + 1e-3 (the scale of nflows'
  ``AffineCouplingTransform``), for F-GLOW.

Both are nflows ``Transform``s whose ``context`` is required; ``inverse`` solves for x_+ given
the same context. They are also usable as a 1-D conditional flow step, where a coupling layer
cannot split its input.
"""

import abc
import math
import numbers

import torch
from nflows.nn.nets import ResidualNet
from nflows.transforms.base import Transform
from nflows.transforms.splines import rational_quadratic as rq
from torch.nn import functional as F

from ..validation import check_int, check_positive_int


class ConditionalElementwiseTransform(Transform, abc.ABC):
    """Base class of a coupling funnel's F (Sec. 2; A.3, Eqs. 10-11, 14):
    ``theta = ResidualNet(context)`` of width ``features * params_per_feature``,
    laid out as in the matching nflows coupling layer (so the two can share weights).

    Args:
        features: width of the transformed input x.
        context_features: width of the context c (at least 1).
        hidden_features, num_blocks, dropout_probability, activation, use_batch_norm: the
            conditioner, nflows' ``ResidualNet`` (ReLU, no batch norm: the NSF/UCI setting).
    """

    params_per_feature = None  # set by subclasses

    def __init__(self, features, context_features, hidden_features=64, num_blocks=2,
                 dropout_probability=0.0, activation=F.relu, use_batch_norm=False):
        super().__init__()
        needs = type(self).__name__ + " needs {name} >= {low} (an int)"
        features = check_int(features, "features", low=1, message=needs)
        context_features = check_int(context_features, "context_features", low=1, message=needs)
        self.features = features
        self.context_features = context_features
        self.net = ResidualNet(
            in_features=context_features,
            out_features=features * self.params_per_feature,
            hidden_features=hidden_features,
            context_features=None,
            num_blocks=num_blocks,
            activation=activation,
            dropout_probability=dropout_probability,
            use_batch_norm=use_batch_norm,
        )

    def _params(self, inputs, context):
        if context is None:
            raise ValueError(f"{type(self).__name__} needs a context of width {self.context_features}, got None")
        if inputs.dim() != 2 or inputs.shape[1] != self.features:
            raise ValueError(
                f"{type(self).__name__} expects inputs of shape (batch, {self.features}), got {tuple(inputs.shape)}"
            )
        if context.dim() != 2 or context.shape != (inputs.shape[0], self.context_features):
            raise ValueError(
                f"{type(self).__name__} expects a context of shape ({inputs.shape[0]}, {self.context_features}), "
                f"got {tuple(context.shape)}"
            )
        return self.net(context)

    def forward(self, inputs, context=None):
        outputs, logabsdet = self._elementwise(inputs, self._params(inputs, context), inverse=False)
        return outputs, logabsdet.sum(dim=1)

    def inverse(self, inputs, context=None):
        outputs, logabsdet = self._elementwise(inputs, self._params(inputs, context), inverse=True)
        return outputs, logabsdet.sum(dim=1)

    @abc.abstractmethod
    def _elementwise(self, inputs, params, inverse):
        """Map ``inputs`` given the raw ``params`` ``(batch, features * params_per_feature)``;
        return the outputs and the per-feature log|f'| (negated for the inverse)."""


class ConditionalRQSpline(ConditionalElementwiseTransform):
    """The F of F-NSF (A.6): z_i = RQ-spline_i(x_i; theta(c)) with ``num_bins`` bins on [-tail_bound, tail_bound] and
    identity (slope 1) tails outside; 3 * num_bins - 1 parameters per feature, as in nflows'
    coupling splines (the raw widths and heights divided by sqrt(hidden_features), as nflows does)."""

    def __init__(self, features, context_features, num_bins=8, tail_bound=3.0, hidden_features=64,
                 num_blocks=2, dropout_probability=0.0, activation=F.relu, use_batch_norm=False,
                 min_bin_width=rq.DEFAULT_MIN_BIN_WIDTH, min_bin_height=rq.DEFAULT_MIN_BIN_HEIGHT,
                 min_derivative=rq.DEFAULT_MIN_DERIVATIVE):
        num_bins = check_positive_int(num_bins, "num_bins")
        if (isinstance(tail_bound, bool) or not isinstance(tail_bound, numbers.Real) or not math.isfinite(tail_bound)
                or tail_bound <= 0):
            raise ValueError(f"tail_bound must be a positive finite number, got {tail_bound!r}")
        self.num_bins = num_bins
        self.params_per_feature = 3 * num_bins - 1
        super().__init__(features, context_features, hidden_features, num_blocks, dropout_probability,
                         activation, use_batch_norm)
        self.tail_bound = float(tail_bound)
        self.min_bin_width, self.min_bin_height, self.min_derivative = min_bin_width, min_bin_height, min_derivative

    def _elementwise(self, inputs, params, inverse):
        params = params.reshape(inputs.shape[0], self.features, self.params_per_feature)
        scale = math.sqrt(self.net.hidden_features)
        widths = params[..., : self.num_bins] / scale
        heights = params[..., self.num_bins : 2 * self.num_bins] / scale
        derivatives = params[..., 2 * self.num_bins :]
        return rq.unconstrained_rational_quadratic_spline(
            inputs, widths, heights, derivatives, inverse=inverse, tails="linear", tail_bound=self.tail_bound,
            min_bin_width=self.min_bin_width, min_bin_height=self.min_bin_height,
            min_derivative=self.min_derivative,
        )


class ConditionalAffine(ConditionalElementwiseTransform):
    """The F of F-GLOW (A.6): z_i = s_i(c) x_i + t_i(c) with s = sigmoid(h + 2) + 1e-3 in (0.001, 1.001), the
    parameterisation of nflows' ``AffineCouplingTransform`` (Glow-like coupling)."""

    params_per_feature = 2

    def _elementwise(self, inputs, params, inverse):
        shift, unconstrained_scale = params[:, : self.features], params[:, self.features :]
        scale = torch.sigmoid(unconstrained_scale + 2) + 1e-3
        log_scale = torch.log(scale)
        if inverse:
            return (inputs - shift) / scale, -log_scale
        return inputs * scale + shift, log_scale


__all__ = ["ConditionalAffine", "ConditionalElementwiseTransform", "ConditionalRQSpline"]
