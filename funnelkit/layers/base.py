r"""The one contract every funnel layer keeps (paper Sec. 2, Eq. 6; the likelihood contribution of Eq. 1).

A funnel layer is an nflows ``Transform`` from x to a latent z whose size may differ from x's.
Its likelihood contribution V(x) has two terms, the log-determinant of the part of x it maps
bijectively to z (x_+, the rest held fixed) and the log-density of what it drops (x_-):

.. math::

    \mathcal{V}(x) = \log\left|\det \frac{\partial z}{\partial x_+}\right| + \log p_\phi(x_- \mid z),
    \qquad \log p(x) = \log \mathcal{N}(z_L; 0, I) + \sum_l \mathcal{V}_l(x_l).

* ``contributions(x, context)`` returns ``(z, logabsdet, log_p)``, the two terms separately;
* ``forward(x, context)`` returns ``(z, logabsdet + log_p)``, what nflows' ``Flow`` adds up;
* ``inverse(z, context)`` draws an x for z (Eq. 3) and returns ``(x, -V)``, minus the contribution
  at that sample, so that ``Flow.sample_and_log_prob`` gives log p of every sample;
* ``exact`` is True when V is the exact contribution of Eq. 6, False when it is only a bound (or
  a one-draw estimate of one); a bound layer's ``inverse`` returns minus the bound evaluated with
  the z it drew from, and its samples need not encode back to z.

:class:`funnelkit.models.FunnelFlow` relies on this contract: it lists each layer's two terms
(``FunnelFlow.contributions``) and is exact when every funnel layer in it is.
"""

import abc

from nflows.transforms.base import Transform


class FunnelLayer(Transform, abc.ABC):
    """Base class of the funnel layers (Sec. 2, Eq. 6): ``contributions``, ``forward`` (their sum),
    ``inverse`` (a sample and minus its contribution) and ``exact`` (a class attribute, True or False).

    A subclass implements :meth:`contributions` and :meth:`inverse` and sets ``exact``.
    """

    #: True when ``forward`` gives the exact likelihood contribution of Eq. 6, False for a bound.
    exact = None

    def __init__(self):
        super().__init__()
        if not isinstance(self.exact, bool):
            raise TypeError(f"{type(self).__name__} must set exact = True or False (a funnel layer says "
                            f"whether its contribution is exact), got {self.exact!r}")

    @abc.abstractmethod
    def contributions(self, inputs, context=None):
        """Return ``(z, logabsdet, log_p)``: the outputs and the two terms of V(x), each ``(batch,)``."""

    def forward(self, inputs, context=None):
        """Return ``(z, V(x))`` with V the sum of the two terms of :meth:`contributions`."""
        z, logabsdet, log_p = self.contributions(inputs, context)
        return z, logabsdet + log_p

    @abc.abstractmethod
    def inverse(self, inputs, context=None):
        """Draw x for the latent ``inputs``; return ``(x, -V)``, minus the contribution at that x."""
