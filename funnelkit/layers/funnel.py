"""The funnel layer of the paper, Eq. 6, as an nflows ``Transform``.

Forward (data -> latent), for x = (x_-, x_+):

    z = F^{-1}_{theta(x_-, x_+)}(x_+)
    V(x) = log |det dz/dx_+| + log p_phi(x_- | z)                                   (Eq. 6)

so that log p(x) = log p(z) + V(x) summed over layers. F is any nflows transform acting on
x_+ with ``context = [x_-, c]`` (c: the outer context); p_phi is any nflows ``Distribution``
with ``context = [z, c]``.

Inverse (latent -> data), Eq. 3: x_- ~ p_phi(. | z), x_+ = F(z | x_-), x = merge(x_-, x_+), and
the returned value is ``-V(x)`` at the sampled x, so that nflows' ``Flow.sample_and_log_prob``
returns the exact log p(x) of each sample. (The authors' code adds log p_phi(x_- | z) there
instead of subtracting it, with the log-determinant's sign right, so its sampled log p is the
true one minus 2 log p_phi; docs/errata.md.) The draw of x_- is the decoder's own: inside
:func:`funnelkit.layers.decoder_noise.scaled_decoder_noise` (what ``FunnelFlow.sample(...,
temper="all" | "mean")`` sets) it is tempered or noise-free, and -V(x) is still exact.
"""

from .base import FunnelLayer
from .context import join_context
from .splitters import CoordinateSplitter


class Funnel(FunnelLayer):
    r"""Eq. 6: a dimension-reducing, exact surjective layer.

    .. math::

        z = F^{-1}_{\theta(x_-, x_+)}(x_+), \qquad
        \mathcal{V}(x) = \log\left|\det \frac{\partial z}{\partial x_+}\right| + \log p_\phi(x_- \mid z)

    Args:
        features: the width n of x.
        bijection: an nflows transform on x_+ (width ``features - n_drop``) taking the context
            ``[x_-, c]``; it must be a bijection in x_+ for every fixed x_-.
        decoder: an nflows ``Distribution`` of x_- (width n_drop) taking the context ``[z, c]``.
        dropped: indices of x_- (default: the first coordinate, the paper's x_{1:m-1}).
        context_features: width of the outer context c (0 for none).
    """

    bijective = False
    stochastic_inverse = True
    exact = True  # Eq. 6 is the exact log-likelihood contribution, not a bound

    def __init__(self, features, bijection, decoder, dropped=(0,), context_features=0):
        super().__init__()
        self.splitter = CoordinateSplitter(features, dropped)
        self.bijection = bijection
        self.decoder = decoder
        self.context_features = context_features

    @property
    def features_in(self):
        return self.splitter.features

    @property
    def features_out(self):
        return self.splitter.n_keep

    @property
    def n_drop(self):
        return self.splitter.n_drop

    def contributions(self, inputs, context=None):
        """Return ``(z, logabsdet, log_p_dropped)``: the two terms of Eq. 6 separately."""
        x_minus, x_plus = self.splitter.split(inputs)
        z, logabsdet = self.bijection(x_plus, context=join_context(x_minus, context))
        log_p_dropped = self.decoder.log_prob(x_minus, context=join_context(z, context))
        return z, logabsdet, log_p_dropped

    def inverse(self, inputs, context=None):
        z = inputs
        x_minus, log_p_dropped = self.decoder.sample_and_log_prob(1, context=join_context(z, context))
        # nflows returns (batch, 1, n_drop) and (batch, 1); reshape, never squeeze (batch may be 1).
        x_minus = x_minus.reshape(z.shape[0], self.n_drop)
        log_p_dropped = log_p_dropped.reshape(z.shape[0])
        x_plus, inverse_logabsdet = self.bijection.inverse(z, context=join_context(x_minus, context))
        # inverse_logabsdet = log|det dx_+/dz| = -log|det dz/dx_+|.
        return self.splitter.merge(x_minus, x_plus), inverse_logabsdet - log_p_dropped
