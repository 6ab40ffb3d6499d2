"""Conditional elementwise bijections (the F of coupling funnels), checked against autograd and
against the nflows coupling layer they are the conditional half of."""

import pytest
import torch
from nflows.nn.nets import ResidualNet
from nflows.transforms.coupling import AffineCouplingTransform, PiecewiseRationalQuadraticCouplingTransform

from funnelkit.layers.conditional_elementwise import ConditionalAffine, ConditionalRQSpline

from ..conftest import perturb

FEATURES, CONTEXT = 3, 2


def make(kind, features=FEATURES, context=CONTEXT):
    if kind == "rq":
        layer = ConditionalRQSpline(features, context, num_bins=5, tail_bound=2.0, hidden_features=8, num_blocks=1)
    else:
        layer = ConditionalAffine(features, context, hidden_features=8, num_blocks=1)
    return perturb(layer.double(), scale=0.5)


def inputs(batch, features=FEATURES, context=CONTEXT):
    x = 2.0 * torch.randn(batch, features, dtype=torch.float64)  # some values beyond the tail bound
    return x, torch.randn(batch, context, dtype=torch.float64)


@pytest.mark.parametrize("kind", ["rq", "affine"])
def test_logabsdet_matches_the_autograd_jacobian_which_is_diagonal(kind):
    layer = make(kind)
    x, c = inputs(6)
    assert (x.abs() > 2.0).any() and (x.abs() < 2.0).any()
    z, logabsdet = layer(x, context=c)
    for i in range(x.shape[0]):
        jacobian = torch.autograd.functional.jacobian(lambda row: layer(row[None], context=c[i : i + 1])[0][0], x[i])
        assert torch.allclose(jacobian - torch.diag(torch.diagonal(jacobian)), torch.zeros_like(jacobian))
        assert (torch.diagonal(jacobian) > 0).all()  # monotone in every coordinate
        assert torch.allclose(logabsdet[i], torch.linalg.slogdet(jacobian).logabsdet, atol=1e-10)


@pytest.mark.parametrize("kind", ["rq", "affine"])
@pytest.mark.parametrize("batch", [1, 9])
def test_inverse_undoes_forward_given_the_context(kind, batch):
    layer = make(kind)
    x, c = inputs(batch)
    z, logabsdet = layer(x, context=c)
    x_again, inverse_logabsdet = layer.inverse(z, context=c)
    assert z.shape == x.shape and logabsdet.shape == (batch,)
    assert torch.allclose(x_again, x, atol=1e-10)
    assert torch.allclose(inverse_logabsdet, -logabsdet, atol=1e-10)
    assert not torch.allclose(z, x)  # not the identity after perturbation


@pytest.mark.parametrize("kind", ["rq", "affine"])
def test_the_context_conditions_the_map(kind):
    layer = make(kind)
    x, c = inputs(5)
    z1, _ = layer(x, context=c)
    z2, _ = layer(x, context=c + 1.0)
    assert not torch.allclose(z1, z2)


@pytest.mark.parametrize("kind", ["rq", "affine"])
def test_equals_the_transformed_half_of_an_nflows_coupling_layer(kind):
    """Coupling on [c, x] with c as the identity half: the same weights give the same x-half."""
    layer = make(kind)

    def create(in_features, out_features):
        return ResidualNet(in_features, out_features, hidden_features=8, num_blocks=1)

    mask = torch.tensor([0] * CONTEXT + [1] * FEATURES)
    if kind == "rq":
        coupling = PiecewiseRationalQuadraticCouplingTransform(mask, create, num_bins=5, tails="linear", tail_bound=2.0)
    else:
        coupling = AffineCouplingTransform(mask, create)
    coupling = coupling.double()
    coupling.transform_net.load_state_dict(layer.net.state_dict())
    x, c = inputs(7)
    z, logabsdet = layer(x, context=c)
    joint, joint_logabsdet = coupling(torch.cat([c, x], dim=1))
    assert torch.allclose(joint[:, CONTEXT:], z, atol=1e-12)
    assert torch.allclose(joint_logabsdet, logabsdet, atol=1e-12)


def test_bad_input_is_refused_with_what_was_expected():
    layer = make("rq")
    x, c = inputs(4)
    with pytest.raises(ValueError, match="needs a context of width 2"):
        layer(x)
    with pytest.raises(ValueError, match=r"context of shape \(4, 2\), got \(4, 3\)"):
        layer(x, context=torch.randn(4, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"inputs of shape \(batch, 3\), got \(4, 2\)"):
        layer.inverse(x[:, :2], context=c)
    with pytest.raises(ValueError, match="context_features >= 1"):
        ConditionalAffine(2, 0)
    with pytest.raises(ValueError, match="num_bins"):
        ConditionalRQSpline(2, 1, num_bins=0)
    for bound in ("3", None, True, 0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"tail_bound must be a positive finite number, got " + repr(bound)):
            ConditionalRQSpline(2, 1, tail_bound=bound)


def test_float32_by_default():
    layer = ConditionalRQSpline(2, 1, hidden_features=4)
    z, logabsdet = layer(torch.randn(3, 2), context=torch.randn(3, 1))
    assert z.dtype == torch.float32 and torch.isfinite(logabsdet).all()
