"""Splitting a vector into the dropped part x_- and the kept part x_+ (paper Sec. 2).

The paper writes x_- = x_{1:m-1} (conditions F, modelled by p_phi) and x_+ = x_{m:n} (mapped
bijectively to z). funnelkit's convention follows the paper: by default the *first* ``n_drop``
coordinates are dropped. A splitter is a fixed permutation, so its log-determinant is 0.
"""

import torch
from torch import nn


class CoordinateSplitter(nn.Module):
    """Split the features of a ``(batch, features)`` tensor into the dropped x_- and the kept x_+ (Sec. 2, Eq. 2).

    Args:
        features: the width of the input vector.
        dropped: the indices of the dropped coordinates x_- (default: the first one).
    """

    def __init__(self, features, dropped=(0,)):
        super().__init__()
        dropped = sorted(int(i) for i in dropped)
        if not dropped or len(set(dropped)) != len(dropped) or dropped[0] < 0 or dropped[-1] >= features:
            raise ValueError(
                f"dropped must be distinct indices in [0, {features}), got {list(dropped)}"
            )
        if len(dropped) >= features:
            raise ValueError(f"a funnel must keep at least one of the {features} coordinates")
        kept = [i for i in range(features) if i not in dropped]
        self.features = features
        self.register_buffer("dropped", torch.tensor(dropped, dtype=torch.long), persistent=False)
        self.register_buffer("kept", torch.tensor(kept, dtype=torch.long), persistent=False)

    @property
    def n_drop(self):
        return self.dropped.numel()

    @property
    def n_keep(self):
        return self.kept.numel()

    def split(self, x):
        """Return ``(x_minus, x_plus)``."""
        return x[:, self.dropped], x[:, self.kept]

    def merge(self, x_minus, x_plus):
        """Inverse of :meth:`split`."""
        x = x_plus.new_empty(x_plus.shape[0], self.features)
        x[:, self.dropped] = x_minus
        x[:, self.kept] = x_plus
        return x
