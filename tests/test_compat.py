"""The nflows 0.14 compatibility module: wrapped calls agree with the originals, warn-free.

These tests fail on the day torch removes a call nflows 0.14 uses (the original is called here
for comparison), so CI names the cause.
"""

import warnings

import pytest
import torch
from nflows.distributions.normal import StandardNormal as NflowsStandardNormal
from nflows.transforms.lu import LULinear as NflowsLULinear

from funnelkit._compat import LULinear, OneByOneConvolution, StandardNormal


def _perturbed(layer):
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return layer


def test_torch_still_has_the_solver_nflows_calls():
    assert hasattr(torch, "triangular_solve"), (
        "torch removed torch.triangular_solve: nflows 0.14's LULinear.inverse is broken; "
        "funnelkit's _compat.LULinear no longer needs the original for comparison"
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lu_inverse_matches_nflows_and_does_not_warn(dtype):
    ours = _perturbed(LULinear(4, identity_init=False)).to(dtype)
    original = NflowsLULinear(4, identity_init=False).to(dtype)
    original.load_state_dict(ours.state_dict())
    z = torch.randn(7, 4, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x, logabsdet = ours.inverse(z)
        weight_inverse = ours.weight_inverse()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x_original, logabsdet_original = original.inverse(z)
    # float32: a 4 x 4 triangular solve of values of order 1 is a few ulps (6e-8) times the condition
    # number off, on any CPU's kernels; measured at most 1.5e-6 over 200 seeds (AVX-512 and unvectorised)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert torch.allclose(x, x_original, atol=tol)
    assert torch.allclose(logabsdet, logabsdet_original, atol=tol)
    assert weight_inverse.dtype == dtype
    assert torch.allclose(weight_inverse @ ours.weight(), torch.eye(4, dtype=dtype), atol=tol * 10)
    z_back, forward_logabsdet = ours(x)
    assert torch.allclose(z_back, z, atol=tol * 10)
    assert torch.allclose(forward_logabsdet, -logabsdet, atol=tol)


def test_one_by_one_convolution_round_trip_without_warning():
    conv = _perturbed(OneByOneConvolution(3)).double()
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    z, logabsdet = conv(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x_back, inverse_logabsdet = conv.inverse(z)
    assert torch.allclose(x_back, x, atol=1e-12)
    assert torch.allclose(inverse_logabsdet, -logabsdet, atol=1e-12)


def test_standard_normal_follows_the_module_dtype():
    original = NflowsStandardNormal([3]).double()
    assert original.sample(2).dtype == torch.get_default_dtype(), (
        "nflows' StandardNormal now follows dtype: funnelkit's wrapper may be dropped"
    )
    ours = StandardNormal([3]).double()
    assert ours.sample(5).dtype == torch.float64
    assert ours.sample(5, context=torch.zeros(2, 1)).shape == (2, 5, 3)
    assert StandardNormal([3]).sample(5).dtype == torch.float32
