"""The generative funnel of A.2 (Eq. 9): a dimension-*increasing* layer, x (n) -> z (n + m).

Generative direction: z = (z_main, z_extra) -> x = G(z_main | z_extra), a bijection in z_main
for every z_extra, which drops z_extra. The model density of x is then

    p(x) = integral dz_extra p(G^{-1}(x | z_extra), z_extra) |det dG^{-1}/dx|.

Inference direction (this layer's forward): draw z_extra ~ q(z_extra | x), set
z_main = G^{-1}(x | z_extra), and return the single-sample estimate of Eq. 9,

    V(x, z_extra) = log |det dz_main/dx| - log q(z_extra | x),

so log p(z) + V is a stochastic LOWER BOUND on log p(x): its expectation under q is below
log p(x) by KL(q(z_extra | x) || p(z_extra | x)) (Jensen), and averaging exp(log p(z) + V) over
many draws (importance weighting) converges to p(x). The layer is not exact (``exact = False``).
"""

import torch

from ..validation import check_int
from .base import FunnelLayer
from .context import join_context
from .decoders import GaussianDecoder
from .splines import rq_autoregressive


class GenerativeFunnel(FunnelLayer):
    """A.2, Eq. 9: x (n) -> (z_main, z_extra) (n + m); forward gives a stochastic lower BOUND.

    Args:
        features: width n of x.
        extra_features: width m of z_extra.
        bijection: an nflows transform x -> z_main with context ``[z_extra, c]`` (its forward is
            G^{-1}); default an autoregressive RQ spline (:func:`rq_autoregressive`).
        encoder: q(z_extra | x), an nflows ``Distribution`` of width m with context ``[x, c]``;
            default a :class:`GaussianDecoder` (a conditional diagonal Gaussian).
        hidden_features, num_hidden_layers, num_bins, tail_bound: sizes of the defaults.
        context_features: width of an outer context c (0 for none).
    """

    exact = False
    bijective = False

    def __init__(self, features, extra_features, bijection=None, encoder=None, hidden_features=64,
                 num_hidden_layers=2, num_bins=8, tail_bound=4.0, context_features=0):
        super().__init__()
        at_least = "{name} must be an int >= {low}"
        features = check_int(features, "features", low=1, message=at_least)
        extra_features = check_int(extra_features, "extra_features", low=1, message=at_least)
        context_features = check_int(context_features, "context_features", low=0, message=at_least)
        self.features_in = features
        self.extra_features = extra_features
        self.features_out = features + extra_features
        self.context_features = context_features
        if bijection is None:
            bijection = rq_autoregressive(features, context_features=extra_features + context_features,
                                          hidden_features=hidden_features, num_bins=num_bins,
                                          num_blocks=num_hidden_layers, tail_bound=tail_bound)
        if encoder is None:
            encoder = GaussianDecoder(extra_features, features + context_features, hidden_features,
                                      num_hidden_layers)
        self.bijection = bijection
        self.encoder = encoder

    def contributions(self, inputs, context=None, z_extra=None):
        """Return ``(z, log|det dz_main/dx|, -log q(z_extra | x))``.

        ``z_extra`` is drawn from q unless given (give it to evaluate the bound at a chosen point).
        """
        x = inputs
        encoder_context = join_context(x, context)
        if z_extra is None:
            z_extra, log_q = self.encoder.sample_and_log_prob(1, context=encoder_context)
            z_extra = z_extra.reshape(x.shape[0], self.extra_features)
            log_q = log_q.reshape(x.shape[0])
        else:
            log_q = self.encoder.log_prob(z_extra, context=encoder_context)
        z_main, logabsdet = self.bijection(x, context=join_context(z_extra, context))
        return torch.cat([z_main, z_extra], dim=1), logabsdet, -log_q

    def inverse(self, inputs, context=None):
        """x = G(z_main | z_extra), deterministic; returns minus the bound term V(x, z_extra)."""
        z_main, z_extra = inputs[:, : self.features_in], inputs[:, self.features_in :]
        x, inverse_logabsdet = self.bijection.inverse(z_main, context=join_context(z_extra, context))
        log_q = self.encoder.log_prob(z_extra, context=join_context(x, context))
        # inverse_logabsdet = -log|det dz_main/dx|, so this is -(log|det dz_main/dx| - log q).
        return x, inverse_logabsdet + log_q
