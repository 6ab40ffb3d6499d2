"""A.3: the slice surjection is the funnel with F = identity, and a coupling INN followed by a
slice (Eq. 10-13) is the funnel whose F is that coupling's transform of x_+ given x_-."""

import math

import torch
from nflows.transforms.base import Transform

from funnelkit.layers.decoders import GaussianDecoder
from funnelkit.layers.funnel import Funnel
from funnelkit.layers.mlp_funnel import MLPFunnel
from funnelkit.layers.slice import Slice
from funnelkit.layers.splines import rq_autoregressive
from funnelkit.layers.splitters import CoordinateSplitter
from funnelkit.models.funnel_flow import FunnelFlow

from ..conftest import perturb

LOG_2PI = math.log(2 * math.pi)


def standard_normal_log_prob(z):
    return -0.5 * (z**2).sum(1) - 0.5 * z.shape[1] * LOG_2PI


def test_slice_density_is_the_base_density_of_x_plus_times_p_phi():
    decoder = GaussianDecoder(1, 2, hidden_features=8)
    model = perturb(FunnelFlow([Slice(3, decoder, dropped=(0,))], 3).double())
    x = torch.randn(20, 3, dtype=torch.float64)
    by_hand = standard_normal_log_prob(x[:, 1:]) + decoder.log_prob(x[:, :1], context=x[:, 1:])
    assert torch.allclose(model.log_prob(x), by_hand, atol=1e-12)


def test_mlp_funnel_with_w_prime_zero_and_r_identity_is_the_slice():
    layer = MLPFunnel(3, 2, permutation_seed=None, hidden_features=8)
    model = FunnelFlow([layer], 3)
    slice_model = FunnelFlow([Slice(3, layer.decoder, dropped=(0,))], 3).double()  # shares p_phi
    perturb(model.double())
    with torch.no_grad():  # back to R = I (LU at its identity), b = 0, W' = 0; p_phi stays perturbed
        r = layer.r_transform
        r.lower_entries.zero_()
        r.upper_entries.zero_()
        r.unconstrained_upper_diag.fill_(math.log(math.expm1(1 - r.eps)))
        r.bias.zero_()
        layer.funnel.bijection.mixing.weight.zero_()
    assert torch.allclose(layer.weight_r(), torch.eye(2, dtype=torch.float64), atol=1e-14)
    x = torch.randn(20, 3, dtype=torch.float64)
    assert torch.allclose(model.encode(x), x[:, 1:], atol=1e-14)
    assert torch.allclose(model.log_prob(x), slice_model.log_prob(x), atol=1e-12)


class CouplingINN(Transform):
    """Eq. 10: (x_-, x_+) -> (x_-, F(x_+ | x_-)) on the whole vector, log-det of F only (Eq. 11)."""

    def __init__(self, features, conditional, dropped):
        super().__init__()
        self.splitter = CoordinateSplitter(features, dropped)
        self.conditional = conditional

    def forward(self, inputs, context=None):
        x_minus, x_plus = self.splitter.split(inputs)
        y_plus, logabsdet = self.conditional(x_plus, context=x_minus)
        return self.splitter.merge(x_minus, y_plus), logabsdet

    def inverse(self, inputs, context=None):
        x_minus, y_plus = self.splitter.split(inputs)
        x_plus, logabsdet = self.conditional.inverse(y_plus, context=x_minus)
        return self.splitter.merge(x_minus, x_plus), logabsdet


def coupling_and_funnel():
    conditional = rq_autoregressive(2, context_features=1, hidden_features=8, num_bins=5, tail_bound=3.0)
    decoder = GaussianDecoder(1, 2, hidden_features=8)
    composed = FunnelFlow([CouplingINN(3, conditional, dropped=(0,)), Slice(3, decoder, dropped=(0,))], 3)
    funnel = FunnelFlow([Funnel(3, conditional, decoder, dropped=(0,))], 3)
    perturb(composed.double())  # the funnel shares the same (now perturbed) modules
    return composed, funnel.double(), conditional, decoder


def test_coupling_then_slice_equals_the_funnel_with_that_transform():
    composed, funnel, conditional, decoder = coupling_and_funnel()
    x = torch.randn(10, 3, dtype=torch.float64)
    # Eq. 13 by hand, the log-determinant from an autograd Jacobian of x_+ -> z.
    z = conditional(x[:, 1:], context=x[:, :1])[0]
    logabsdet = torch.stack([
        torch.linalg.slogdet(torch.autograd.functional.jacobian(
            lambda v: conditional(v[None], context=row[None, :1])[0][0], row[1:])).logabsdet
        for row in x
    ])
    by_hand = standard_normal_log_prob(z) + decoder.log_prob(x[:, :1], context=z) + logabsdet
    assert torch.allclose(composed.log_prob(x), by_hand, atol=1e-10)
    assert torch.allclose(funnel.log_prob(x), by_hand, atol=1e-10)
    assert torch.allclose(composed.encode(x), funnel.encode(x), atol=1e-12)


def test_coupling_then_slice_and_the_funnel_sample_the_same_points():
    composed, funnel, _, _ = coupling_and_funnel()
    torch.manual_seed(4)
    x_composed, log_prob_composed = composed.sample_and_log_prob(8)
    torch.manual_seed(4)
    x_funnel, log_prob_funnel = funnel.sample_and_log_prob(8)
    assert torch.allclose(x_composed, x_funnel, atol=1e-12)
    assert torch.allclose(log_prob_composed, log_prob_funnel, atol=1e-10)
    assert torch.allclose(funnel.log_prob(x_funnel), log_prob_funnel, atol=1e-9)
