"""The MLP funnel of the paper (Sec. 3, "MLP funnels"; A.6; A.7.2; A.9) and its lower-bound variant.

A fixed random permutation, then the weight matrix of one MLP layer, W : R^n -> R^k (k <= n),
split into an invertible block R (k x k) acting on x_+ and a free block W' acting on x_-:

    z = W x + b = R x_+ + W' x_- + b
    V(x) = log |det R| + log p_phi(x_- | z)                           (Sec. 3; Eq. 6 with F affine)

For fixed x_- the map x_+ -> z is affine and invertible, so this is the funnel of Eq. 6 with
F^{-1}(x_+ | x_-) = R x_+ + W' x_- + b. Sampling inverts it exactly: x_- ~ p_phi(. | z), then
x_+ = R^{-1} (z - W' x_- - b). With k = n there is no x_-: the layer is the permutation and R
only (A.6: "for dimension preserving layers just the matrix R was used").

R is invertible by construction, in one of two parameterisations (Sec. 3 cites both):

* ``"lu"``: R = L U, L unit lower triangular, U upper triangular with a softplus-positive
  diagonal (Kingma & Dhariwal 2018); funnelkit's :class:`~funnelkit._compat.LULinear`.
* ``"qr"``: R = Q U, Q = exp(A - A^T) orthogonal (A free, so A - A^T is skew-symmetric),
  U upper triangular with diagonal exp(s) (Hoogeboom et al. 2019); :class:`QRLinear`.

Both start at R = I. In both det R > 0, so log |det R| is the sum of the log-diagonal of U.

:class:`MLPFunnelBound` is the paper's second form, which gives up the right-inverse condition:
V(x) = log p_phi(x | W x + b) + log |det R| with p_phi a density of *all* of x. The paper calls
it a lower bound; it is not an exact density (see its docstring).
"""

import torch
from nflows.transforms.base import Transform
from nflows.transforms.permutations import Permutation
from torch import nn

from .._compat import LULinear
from ..validation import check_int
from .base import FunnelLayer
from .context import join_context
from .decoders import GaussianDecoder
from .funnel import Funnel

PARAMETERISATIONS = ("lu", "qr")


class QRLinear(Transform):
    """R of the MLP funnel in its QR form (Sec. 3): y = Q U x + b with Q = exp(A - A^T) orthogonal
    and U upper triangular, diag U = exp(s).

    log |det dy/dx| = sum(s). Starts at the identity (A = 0, U = I, b = 0).
    """

    def __init__(self, features):
        super().__init__()
        self.features = features
        self.generator = nn.Parameter(torch.zeros(features, features))  # A; only A - A^T is used
        self.upper_entries = nn.Parameter(torch.zeros(features * (features - 1) // 2))
        self.log_diag = nn.Parameter(torch.zeros(features))
        self.bias = nn.Parameter(torch.zeros(features))
        rows, cols = torch.triu_indices(features, features, offset=1)
        self.register_buffer("_upper_rows", rows, persistent=False)
        self.register_buffer("_upper_cols", cols, persistent=False)

    def orthogonal(self):
        return torch.linalg.matrix_exp(self.generator - self.generator.t())

    def upper(self):
        upper = torch.diag(torch.exp(self.log_diag))
        return upper.index_put((self._upper_rows, self._upper_cols), self.upper_entries)

    def weight(self):
        """The matrix R = Q U."""
        return self.orthogonal() @ self.upper()

    def logabsdet(self):
        return self.log_diag.sum()

    def forward(self, inputs, context=None):
        outputs = inputs @ self.weight().t() + self.bias
        return outputs, self.logabsdet() * inputs.new_ones(inputs.shape[0])

    def inverse(self, inputs, context=None):
        # x = U^{-1} Q^T (y - b): rows are samples, so solve U X^T = Q^T (Y - b)^T.
        rotated = self.orthogonal().t() @ (inputs - self.bias).t()
        outputs = torch.linalg.solve_triangular(self.upper(), rotated, upper=True).t()
        return outputs, -self.logabsdet() * inputs.new_ones(inputs.shape[0])


def invertible_linear(features, parameterisation="lu"):
    """y = R x + b with R invertible by construction: ``"lu"`` or ``"qr"`` (see the module doc)."""
    if parameterisation == "lu":
        return LULinear(features, identity_init=True)
    if parameterisation == "qr":
        return QRLinear(features)
    raise ValueError(f"parameterisation must be one of {PARAMETERISATIONS}, got {parameterisation!r}")


def seeded_permutation(features, seed):
    """A fixed random permutation of ``features`` coordinates drawn from ``seed`` (None: none)."""
    if seed is None:
        return None
    generator = torch.Generator().manual_seed(int(seed))
    return Permutation(torch.randperm(features, generator=generator))


class ConditionalLinear(Transform):
    """The MLP funnel's F (Sec. 3, Eq. 6): F^{-1}(x_+ | c) = R x_+ + W' c + b, invertible in x_+ for every c.

    ``linear`` holds R and b (an :func:`invertible_linear`); ``mixing`` is W' (no bias), acting on
    the context c = [x_-, outer context].
    """

    def __init__(self, linear, context_features):
        super().__init__()
        self.linear = linear
        self.mixing = nn.Linear(context_features, linear.features, bias=False)

    def forward(self, inputs, context=None):
        outputs, logabsdet = self.linear(inputs)
        return outputs + self.mixing(context), logabsdet

    def inverse(self, inputs, context=None):
        return self.linear.inverse(inputs - self.mixing(context))


def _check_widths(features_in, features_out, context_features, strictly_reducing=False):
    """Return the three widths as ints; raise ``ValueError`` unless they make an MLP funnel."""
    features_in = check_int(features_in, "features_in", low=1, message="{name} must be a positive int")
    features_out = check_int(features_out, "features_out", low=1, message="{name} must be a positive int")
    context_features = check_int(context_features, "context_features", low=0, message="{name} must be an int >= {low}")
    if strictly_reducing and features_out >= features_in:
        raise ValueError(f"a bound layer must reduce the dimension: features_out < features_in, "
                         f"got {features_in} -> {features_out}")
    if features_out > features_in:
        raise ValueError(f"an MLP funnel cannot increase the dimension (A.7.2): features_out <= features_in, "
                         f"got {features_in} -> {features_out}")
    return features_in, features_out, context_features


class _PermutedLayer(FunnelLayer):
    """Shared plumbing: the fixed permutation in front, widths as attributes."""

    def __init__(self, features_in, features_out, permutation_seed):
        super().__init__()
        self.features_in = features_in
        self.features_out = features_out
        self.permutation = seeded_permutation(features_in, permutation_seed)

    @property
    def n_drop(self):
        return self.features_in - self.features_out

    def _permute(self, x):
        return x if self.permutation is None else self.permutation(x)[0]

    def _unpermute(self, x):
        return x if self.permutation is None else self.permutation.inverse(x)[0]


class MLPFunnel(_PermutedLayer):
    """Sec. 3: z = R x_+ + W' x_- + b, V = log|det R| + log p_phi(x_- | z). Exact.

    After the fixed permutation, x_- is the first ``features_in - features_out`` coordinates
    (funnelkit's convention: dropped first) and x_+ the rest.

    Args:
        features_in, features_out: the widths n and k <= n. k = n gives the dimension-preserving
            layer (permutation, then R x + b; no decoder).
        parameterisation: ``"lu"`` or ``"qr"`` for R.
        decoder: p_phi(x_- | z), any nflows ``Distribution`` of width n - k with context width
            k + context_features; default a :class:`GaussianDecoder` (ReLU MLP
            ``hidden_features`` x ``num_hidden_layers``).
        permutation_seed: seed of the fixed random permutation; ``None`` for no permutation.
        context_features: width of an outer context c, fed to W' (next to x_-) and to p_phi.
    """

    exact = True

    def __init__(self, features_in, features_out, parameterisation="lu", decoder=None, permutation_seed=0,
                 hidden_features=128, num_hidden_layers=3, context_features=0):
        features_in, features_out, context_features = _check_widths(features_in, features_out, context_features)
        super().__init__(features_in, features_out, permutation_seed)
        linear = invertible_linear(features_out, parameterisation)
        self.parameterisation = parameterisation
        self.context_features = context_features
        if self.n_drop == 0:
            if decoder is not None:
                raise ValueError("a dimension-preserving MLP funnel drops nothing, so it takes no decoder")
            self.linear = linear
            self.funnel = None
        else:
            if decoder is None:
                decoder = GaussianDecoder(self.n_drop, features_out + context_features,
                                          hidden_features, num_hidden_layers)
            bijection = ConditionalLinear(linear, self.n_drop + context_features)
            self.funnel = Funnel(features_in, bijection, decoder, dropped=range(self.n_drop),
                                 context_features=context_features)

    @property
    def r_transform(self):
        """The transform x_+ -> R x_+ + b (holds R's parameters and the bias b)."""
        return self.linear if self.funnel is None else self.funnel.bijection.linear

    @property
    def decoder(self):
        return None if self.funnel is None else self.funnel.decoder

    def weight_r(self):
        """The matrix R."""
        return self.r_transform.weight()

    def weight_mixing(self):
        """The matrix W' acting on x_- (None when nothing is dropped)."""
        return None if self.funnel is None else self.funnel.bijection.mixing.weight[:, : self.n_drop]

    def contributions(self, inputs, context=None):
        """Return ``(z, log|det R|, log p_phi(x_- | z))`` (the last is zero if nothing is dropped)."""
        x = self._permute(inputs)
        if self.funnel is None:
            z, logabsdet = self.linear(x)
            return z, logabsdet, torch.zeros_like(logabsdet)
        return self.funnel.contributions(x, context)

    def inverse(self, inputs, context=None):
        if self.funnel is None:
            x, value = self.linear.inverse(inputs)
        else:
            x, value = self.funnel.inverse(inputs, context)
        return self._unpermute(x), value


class MLPFunnelBound(_PermutedLayer):
    """Sec. 3, the lower-bound form: V = log p_phi(x | W x + b) + log|det R|. NOT exact (a bound).

    z = W x + b = R x_+ + W' x_- + b as in :class:`MLPFunnel`, but p_phi is a Gaussian over *all*
    of x (the permuted x), so the right-inverse condition is violated: a sample x ~ p_phi(x | z)
    does not map back to z. The paper calls V a lower bound on the log-likelihood; in fact
    exp(log N(z) + V) integrates to at most 1 only while p_phi's density of x_+ stays below 1
    (Gaussian sigma >= 1/sqrt(2 pi)); a narrow p_phi can push the integral above 1. Use it as a
    training objective, not as a density.

    ``inverse(z)`` draws x ~ p_phi(x | z) and returns ``-(log p_phi(x | z) + log|det R|)`` at the
    given z (not at W x + b, which differs from z).
    """

    exact = False

    def __init__(self, features_in, features_out, parameterisation="lu", decoder=None, permutation_seed=0,
                 hidden_features=128, num_hidden_layers=3, context_features=0):
        features_in, features_out, context_features = _check_widths(features_in, features_out, context_features,
                                                                    strictly_reducing=True)
        super().__init__(features_in, features_out, permutation_seed)
        self.parameterisation = parameterisation
        self.context_features = context_features
        self.bijection = ConditionalLinear(invertible_linear(features_out, parameterisation),
                                           self.n_drop + context_features)
        if decoder is None:
            decoder = GaussianDecoder(features_in, features_out + context_features, hidden_features,
                                      num_hidden_layers)
        self.decoder = decoder

    def weight_r(self):
        return self.bijection.linear.weight()

    def contributions(self, inputs, context=None):
        """Return ``(z, log|det R|, log p_phi(x | z))``: the two terms of the bound."""
        x = self._permute(inputs)
        x_minus, x_plus = x[:, : self.n_drop], x[:, self.n_drop :]
        z, logabsdet = self.bijection(x_plus, context=join_context(x_minus, context))
        return z, logabsdet, self.decoder.log_prob(x, context=join_context(z, context))

    def inverse(self, inputs, context=None):
        z = inputs
        x, log_p = self.decoder.sample_and_log_prob(1, context=join_context(z, context))
        x = x.reshape(z.shape[0], self.features_in)
        logabsdet = self.bijection.linear.logabsdet() * z.new_ones(z.shape[0])
        return self._unpermute(x), -(log_p.reshape(z.shape[0]) + logabsdet)
