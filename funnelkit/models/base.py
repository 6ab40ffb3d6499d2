"""DensityModel: what every model of the kit shares (paper Sec. 2, A.4).

Every model of the paper gives log p(x) of a sample: a flow or funnel flow exactly (Sec. 2,
Eq. 6: ``exact`` is True), the VAE baseline as its ELBO, a lower bound (A.4, Eq. 16: ``exact``
is False). The builders (:mod:`funnelkit.models`) return subclasses of this class.
"""

from __future__ import annotations

import torch
from torch import nn


class DensityModel(nn.Module):
    """A model of a density p(x): its dtype and device, its size, and whether ``log_prob`` is exact.

    .. math::

        \\log p(x) = \\log N(z_L; 0, I) + \\sum_l V_l \\quad \\text{(Sec. 2, Eq. 6: exact)}, \\qquad
        \\log p(x) \\ge \\mathrm{ELBO}(x) \\quad \\text{(A.4, Eq. 16: a bound)}

    A subclass holds a buffer ``_dtype_probe`` (a scalar that follows ``.to()``), or overrides
    :meth:`_probe`, so that :attr:`dtype` and :attr:`device` are right even without parameters.
    """

    #: True when ``log_prob`` is an exact log density (Sec. 2); False for a bound such as the ELBO.
    exact: bool = True

    def _probe(self) -> torch.Tensor:
        return self._dtype_probe

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the model's values (and of the inputs ``log_prob`` takes)."""
        return self._probe().dtype

    @property
    def device(self) -> torch.device:
        """The device the model lives on."""
        return self._probe().device

    def num_parameters(self) -> int:
        """The number of trainable and frozen parameter values (Table 8's count)."""
        return sum(p.numel() for p in self.parameters())


__all__ = ["DensityModel"]
