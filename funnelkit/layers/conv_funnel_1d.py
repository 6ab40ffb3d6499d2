"""Convolutional funnels on 1-D signals (paper Sec. 3 "Convolutional kernels", A.7.1, Eqs. 7-8, 18-19).

A 2x1 kernel [a, b] with a bias c slides over x in R^n. Indices in the docstrings are the
paper's (from 1); in the code they are 0-based, so the paper's x_{2i-1} is ``x[:, 0::2]``.

* Stride two, :class:`ConvFunnel1d` (Eqs. 7-8, 18-19). z_i = a x_{2i-1} + b x_{2i} + c for
  i = 1..n/2; x_{2i-1} are kept (x_+), x_{2i} dropped (x_-). For fixed x_-, dz/dx_+ = a I_{n/2}:

      V(x) = (n/2) log|a| + log p_phi({x_2i} | z)

  **Erratum.** Eq. 7 and A.7.1 print the Jacobian term as log((n/2)|a|) ("the total Jacobian is
  given by (n/2) a"). The determinant of the diagonal matrix a I_{n/2} is a^{n/2}, so the term
  is (n/2) log|a|; with log((n/2)|a|) the density does not integrate to 1 (for n = 2 the two
  agree, for n > 2 they do not). Inverse, Eq. 8: x'_2i ~ p_phi(. | z),
  x_{2i-1} = (z_i - b x'_2i - c) / a.

* Stride one, :class:`ConvFunnel1dStrideOne` (A.7.1). z_i = a x_i + b x_{i+1} + c, i = 1..n-1,
  maps R^n to R^{n-1}. x_n is dropped; dz/dx_{1:n-1} is upper bidiagonal with a on the diagonal:

      V(x) = (n-1) log|a| + log p_phi(x_n | z)

  Inverse: x'_n ~ p_phi(. | z), then the recursion x_{n-i} = (z_{n-i} - b x_{n-i+1} - c) / a.
  Exact, but sampling takes n-1 sequential steps.

* Stride one, fast: :class:`ConvFunnel1dStrideOneBound` (A.7.1) drops the right-inverse condition
  and is a bound, not a density (see its docstring).

a = sign * exp(log_abs_a) with a fixed sign, so a can never be zero and log|a| = log_abs_a.
All three start at a = 1, b = c = 0 (the stride-two layer is then a slice, A.3).
"""

import torch
from nflows.transforms.base import Transform
from torch import nn

from ..validation import check_positive_int
from .base import FunnelLayer
from .context import join_context
from .decoders import GaussianDecoder
from .funnel import Funnel


class Kernel2x1(nn.Module):
    """The kernel [a, b] of Sec. 3 (Eq. 7) and a bias c, with a = sign * exp(log_abs_a) (never zero).

    Args:
        sign: the fixed sign of a, +1 or -1.
    """

    def __init__(self, sign=1.0):
        super().__init__()
        if sign not in (1, -1):
            raise ValueError(f"sign must be +1 or -1, got {sign!r}")
        self.log_abs_a = nn.Parameter(torch.zeros(()))
        self.b = nn.Parameter(torch.zeros(()))
        self.c = nn.Parameter(torch.zeros(()))
        self.register_buffer("sign", torch.tensor(float(sign)))

    @property
    def a(self):
        return self.sign * torch.exp(self.log_abs_a)

    def stride_one(self, x):
        """z_i = a x_i + b x_{i+1} + c for i = 1..n-1: ``(batch, n) -> (batch, n - 1)``."""
        return self.a * x[:, :-1] + self.b * x[:, 1:] + self.c


class _StrideTwoMap(Transform):
    """x_+ -> z = a x_+ + b x_- + c, a bijection for fixed x_- (the context's first columns)."""

    def __init__(self, kernel, n_drop):
        super().__init__()
        self.kernel = kernel
        self.n_drop = n_drop

    def _logabsdet(self, x):
        return self.n_drop * self.kernel.log_abs_a * x.new_ones(x.shape[0])

    def forward(self, inputs, context=None):
        x_minus = context[:, : self.n_drop]
        k = self.kernel
        return k.a * inputs + k.b * x_minus + k.c, self._logabsdet(inputs)

    def inverse(self, inputs, context=None):
        x_minus = context[:, : self.n_drop]
        k = self.kernel
        return (inputs - k.b * x_minus - k.c) / k.a, -self._logabsdet(inputs)  # Eq. 8


class _StrideOneMap(Transform):
    """x_{1:n-1} -> z = a x_i + b x_{i+1} + c, a bijection for fixed x_n (the context's first column)."""

    def __init__(self, kernel):
        super().__init__()
        self.kernel = kernel

    def _logabsdet(self, x):
        return x.shape[1] * self.kernel.log_abs_a * x.new_ones(x.shape[0])

    def forward(self, inputs, context=None):
        x = torch.cat([inputs, context[:, :1]], dim=1)
        return self.kernel.stride_one(x), self._logabsdet(inputs)

    def inverse(self, inputs, context=None):
        k = self.kernel
        a, b, c = k.a, k.b, k.c
        x_next = context[:, 0]
        columns = []
        for i in reversed(range(inputs.shape[1])):  # x_{n-i} = (z_{n-i} - b x_{n-i+1} - c) / a
            x_next = (inputs[:, i] - b * x_next - c) / a
            columns.append(x_next)
        return torch.stack(columns[::-1], dim=1), -self._logabsdet(inputs)


def _check_rows(x, width, name, layer):
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != width or x.shape[0] == 0:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{layer} expects {name} of shape (batch, {width}) with batch >= 1, got {got}")


def _check_context(context, features, batch, layer):
    if features == 0:
        if context is not None:
            raise ValueError(f"{layer} takes no context (context_features=0), but one was given")
        return
    _check_rows(context, features, "context", layer)
    if context.shape[0] != batch:
        raise ValueError(f"{layer}: context has {context.shape[0]} rows, the input has {batch}")


class _CheckedFunnel(Funnel):
    """A :class:`Funnel` whose forward and inverse check the input widths first."""

    def contributions(self, inputs, context=None):
        """Return ``(z, logabsdet, log_p_dropped)``: the two terms of V(x) separately."""
        _check_rows(inputs, self.features_in, "x", type(self).__name__)
        _check_context(context, self.context_features, inputs.shape[0], type(self).__name__)
        return super().contributions(inputs, context)

    def inverse(self, inputs, context=None):
        _check_rows(inputs, self.features_out, "z", type(self).__name__)
        _check_context(context, self.context_features, inputs.shape[0], type(self).__name__)
        return super().inverse(inputs, context)

    @property
    def kernel(self):
        return self.bijection.kernel


class ConvFunnel1d(_CheckedFunnel):
    """Eqs. 7-8: the stride-two 2x1 kernel funnel, R^n -> R^{n/2}, exact.

    z_i = a x_{2i-1} + b x_{2i} + c; V(x) = (n/2) log|a| + log p_phi({x_2i} | z) (Eq. 7 with its
    erratum corrected: the paper prints log((n/2)|a|)). Inverse (Eq. 8): sample x_2i, then
    x_{2i-1} = (z_i - b x_2i - c) / a.

    Args:
        length: n, even.
        decoder: an nflows ``Distribution`` of the n/2 dropped values with context ``[z, c]``
            (default: a :class:`GaussianDecoder`).
        context_features: width of an outer context c (0: none).
        hidden_features, num_hidden_layers: size of the default decoder's MLP.
        sign: the fixed sign of a.
    """

    def __init__(self, length, decoder=None, context_features=0, hidden_features=128,
                 num_hidden_layers=3, sign=1.0):
        length = check_positive_int(length, "length")
        if length % 2:
            raise ValueError(f"ConvFunnel1d (stride two) needs an even length n, got {length}")
        half = length // 2
        if decoder is None:
            decoder = GaussianDecoder(half, half + context_features, hidden_features, num_hidden_layers)
        super().__init__(length, _StrideTwoMap(Kernel2x1(sign), half), decoder,
                         dropped=range(1, length, 2), context_features=context_features)


class ConvFunnel1dStrideOne(_CheckedFunnel):
    """A.7.1: the stride-one 2x1 kernel funnel, R^n -> R^{n-1}, exact.

    z_i = a x_i + b x_{i+1} + c (i = 1..n-1); x_n is dropped; V(x) = (n-1) log|a| + log p_phi(x_n | z).
    Inverse: sample x_n, then x_{n-i} = (z_{n-i} - b x_{n-i+1} - c) / a for i = 1..n-1 (sequential).

    Args:
        length: n >= 2.
        decoder: an nflows ``Distribution`` of x_n (width 1) with context ``[z, c]``
            (default: a :class:`GaussianDecoder`).
        context_features, hidden_features, num_hidden_layers, sign: as :class:`ConvFunnel1d`.
    """

    def __init__(self, length, decoder=None, context_features=0, hidden_features=128,
                 num_hidden_layers=3, sign=1.0):
        length = check_positive_int(length, "length")
        if length < 2:
            raise ValueError(f"ConvFunnel1dStrideOne needs a length n >= 2, got {length}")
        if decoder is None:
            decoder = GaussianDecoder(1, length - 1 + context_features, hidden_features, num_hidden_layers)
        super().__init__(length, _StrideOneMap(Kernel2x1(sign)), decoder,
                         dropped=(length - 1,), context_features=context_features)


class ConvFunnel1dStrideOneBound(FunnelLayer):
    """A.7.1's fast stride-one variant: a lower *bound* on the likelihood, not a density.

    z_i = a x_i + b x_{i+1} + c as in :class:`ConvFunnel1dStrideOne`, but every x_i is modelled
    by ONE shared scalar density p_phi(x | z_scalar), used in each block:

        V_bound(x) = (n-1) log|a| + log p_phi(x_1 | z_1) + sum_{i=2..n} log p_phi(x_i | z_{i-1})

    Sampling draws every x_i in parallel from p_phi(. | z), so the right-inverse condition
    f(x) = z is violated and exp(log N(z) + V_bound) is not a normalised density.

    When is it a bound? V_bound = V_exact + log p_phi(x_1 | z_1) + sum_{i=2..n-1} log p_phi(x_i | z_{i-1}),
    where V_exact is the exact stride-one funnel whose p_phi(x_n | z) is the same shared density
    conditioned on z_{n-1}. So V_bound <= V_exact (and the "density" integrates to <= 1) whenever
    p_phi <= 1 everywhere, e.g. a Gaussian with sigma >= (2 pi)^(-1/2) ~ 0.40. The paper calls
    it a lower bound without this condition; a very narrow p_phi can push the integral above 1.

    ``inverse(z)`` returns the sampled x and -V_bound evaluated with the z it was drawn from
    (which differs from ``forward(x)``'s own z, since f(x) != z).

    Args:
        length: n >= 2.
        decoder: an nflows ``Distribution`` of one value with context ``[z_scalar, c]``
            (default: a small :class:`GaussianDecoder`).
        context_features, sign: as :class:`ConvFunnel1d`.
        hidden_features, num_hidden_layers: size of the default decoder's MLP.
    """

    exact = False
    bijective = False
    stochastic_inverse = True

    def __init__(self, length, decoder=None, context_features=0, hidden_features=32,
                 num_hidden_layers=2, sign=1.0):
        super().__init__()
        length = check_positive_int(length, "length")
        if length < 2:
            raise ValueError(f"ConvFunnel1dStrideOneBound needs a length n >= 2, got {length}")
        self.kernel = Kernel2x1(sign)
        self.decoder = decoder if decoder is not None else GaussianDecoder(
            1, 1 + context_features, hidden_features, num_hidden_layers)
        self.length = length
        self.context_features = context_features

    @property
    def features_in(self):
        return self.length

    @property
    def features_out(self):
        return self.length - 1

    def _decoder_context(self, z, context):
        """Per block the scalar it conditions on: [z_1, z_1, z_2, ..., z_{n-1}] (then c), ``(batch * n, .)``."""
        per_block = torch.cat([z[:, :1], z], dim=1).reshape(-1, 1)
        if context is not None:
            context = context.repeat_interleave(self.length, dim=0)
        return join_context(per_block, context)

    def _logabsdet(self, z):
        return (self.length - 1) * self.kernel.log_abs_a * z.new_ones(z.shape[0])

    def contributions(self, inputs, context=None):
        """Return ``(z, logabsdet, log_p_bound)``; their sum is V_bound, not an exact term."""
        name = type(self).__name__
        _check_rows(inputs, self.length, "x", name)
        _check_context(context, self.context_features, inputs.shape[0], name)
        z = self.kernel.stride_one(inputs)
        log_p = self.decoder.log_prob(inputs.reshape(-1, 1), context=self._decoder_context(z, context))
        return z, self._logabsdet(z), log_p.reshape(-1, self.length).sum(dim=1)

    def inverse(self, inputs, context=None):
        name = type(self).__name__
        _check_rows(inputs, self.length - 1, "z", name)
        _check_context(context, self.context_features, inputs.shape[0], name)
        x, log_p = self.decoder.sample_and_log_prob(1, context=self._decoder_context(inputs, context))
        x = x.reshape(-1, self.length)
        log_p = log_p.reshape(-1, self.length).sum(dim=1)
        return x, -(self._logabsdet(inputs) + log_p)
