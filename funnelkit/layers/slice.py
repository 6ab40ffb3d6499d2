"""The slice surjection (SurVAE; paper A.3) as the funnel whose F is the identity."""

from nflows.transforms.standard import IdentityTransform

from .funnel import Funnel


class Slice(Funnel):
    """A.3: z = x_+, V(x) = log p_phi(x_- | z). The funnel of Eq. 6 with F the identity.

    With p_phi a fixed N(0, I) that ignores z this is the multi-scale split of RealNVP/Glow.
    """

    def __init__(self, features, decoder, dropped=(0,), context_features=0):
        super().__init__(features, IdentityTransform(), decoder, dropped, context_features)
