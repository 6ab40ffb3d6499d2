"""The one place where funnelkit adapts nflows 0.14 to current torch.

nflows 0.14 (2020) is the only release of nflows. Two of its habits need care on torch 2.x
(see ``reference/anchor-flow-libraries.md``, section 3):

* ``LULinear`` (and ``OneByOneConvolution``, which inherits from it) inverts with
  ``torch.triangular_solve``, deprecated in torch and due to be removed. Sampling goes through
  that inverse. :class:`LULinear` here uses ``torch.linalg.solve_triangular`` instead and builds
  its identity in the parameters' dtype and device.
* ``StandardNormal`` draws its noise in torch's default dtype, so a float64 model samples
  float32 noise and fails. :class:`StandardNormal` here draws noise in the dtype the module
  was moved to.

Everything else is used from nflows unchanged. ``tests/test_compat.py`` fails the day a wrapped
call changes, so the reason is named in CI.
"""

import torch
from nflows.distributions.normal import StandardNormal as _NflowsStandardNormal
from nflows.transforms.conv import OneByOneConvolution as _NflowsOneByOneConvolution
from nflows.transforms.lu import LULinear as _NflowsLULinear
from nflows.utils import torchutils


class _SolveTriangularMixin:
    """LU inverses with ``torch.linalg.solve_triangular`` (the fix of nflows PR #57, unreleased)."""

    def inverse_no_cache(self, inputs):
        lower, upper = self._create_lower_upper()
        outputs = (inputs - self.bias).t()
        outputs = torch.linalg.solve_triangular(lower, outputs, upper=False, unitriangular=True)
        outputs = torch.linalg.solve_triangular(upper, outputs, upper=True)
        logabsdet = -self.logabsdet() * inputs.new_ones(inputs.shape[0])
        return outputs.t(), logabsdet

    def weight_inverse(self):
        lower, upper = self._create_lower_upper()
        identity = torch.eye(self.features, dtype=lower.dtype, device=lower.device)
        lower_inverse = torch.linalg.solve_triangular(lower, identity, upper=False, unitriangular=True)
        return torch.linalg.solve_triangular(upper, lower_inverse, upper=True)


class LULinear(_SolveTriangularMixin, _NflowsLULinear):
    """nflows' ``LULinear`` (W = L U + b) with a current triangular solver."""


class OneByOneConvolution(_SolveTriangularMixin, _NflowsOneByOneConvolution):
    """nflows' ``OneByOneConvolution`` (Glow's 1x1 convolution, LU form) with a current solver."""


class StandardNormal(_NflowsStandardNormal):
    """N(0, I) whose samples follow the dtype and device the module was moved to."""

    def __init__(self, shape):
        super().__init__(shape)
        self.register_buffer("_dtype_probe", torch.zeros(()), persistent=False)

    def _sample(self, num_samples, context):
        like = self._dtype_probe
        if context is None:
            return torch.randn(num_samples, *self._shape, dtype=like.dtype, device=like.device)
        samples = torch.randn(
            context.shape[0] * num_samples, *self._shape, dtype=like.dtype, device=like.device
        )
        return torchutils.split_leading_dim(samples, [context.shape[0], num_samples])
