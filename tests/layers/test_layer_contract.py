"""The layer contract (funnelkit.layers.base), one table and one test per property, as zuko's
tests/test_transforms.py runs every transform through the same checks.

Each row of ``CASES`` builds one small layer of ``funnelkit.layers`` (float64, parameters moved off
their initial values). Every property is computed a second way: the grid integral of
N(z; 0, I) exp(V(x)) where x has at most two dimensions, log|det dz/dx_+| from the autograd Jacobian,
the right-inverse condition by encoding a sample again, minus the contribution at the sample
(for the bounds, by hand), batch rows one at a time, and float64 against float32.
"""

import copy
import inspect
import math
from dataclasses import dataclass
from typing import Callable, Optional

import pytest
import torch
from nflows.transforms.base import Transform

import funnelkit.layers as layers
from funnelkit.layers import (ConvFunnel1d, ConvFunnel1dStrideOne, ConvFunnel1dStrideOneBound, ConvFunnel2d, Funnel,
                              FunnelLayer, GaussianDecoder, GenerativeFunnel, MLPFunnel, MLPFunnelBound, QRLinear,
                              Slice, SplineActivation, flow_decoder, rq_autoregressive)

from ..conftest import perturb

H = dict(hidden_features=8, num_hidden_layers=2)


# -- how to read each layer ------------------------------------------------------------------------
def all_of_x(layer, shape):
    return list(range(math.prod(shape)))


def split_kept(layer, shape):
    return layer.splitter.kept.tolist()


def mlp_kept(layer, shape):
    """After the permutation (permuted[:, j] = x[:, perm[j]]), x_+ is the last features_out columns."""
    perm = list(range(shape[0])) if layer.permutation is None else layer.permutation._permutation.tolist()
    return perm[layer.n_drop:]


def bound_stride_one_kept(layer, shape):
    return list(range(shape[0] - 1))  # x_1 .. x_{n-1}; x_n is held fixed


def image_kept(layer, shape):
    """The bottom-right pixel of every 2 x 2 tile, in unpadded coordinates (an odd side pads at the top/left)."""
    c, h, w = shape
    return [k * h * w + i * w + j for k in range(c) for i in range(h) for j in range(w)
            if i % 2 == (h + 1) % 2 and j % 2 == (w + 1) % 2]


def pin_nothing(layer, z):
    return {}


def pin_z_extra(layer, z):
    """The generative funnel's forward draws z_extra; evaluate it at the latent's own z_extra."""
    return {"z_extra": z[:, layer.features_in:]}


def mlp_bound_value(layer, x, z):
    """A.7.2 bound at a sample x drawn from z: log p_phi(x | z) + log|det R|, R's determinant by slogdet."""
    permuted = x if layer.permutation is None else x[:, layer.permutation._permutation]
    return layer.decoder.log_prob(permuted, context=z) + torch.linalg.slogdet(layer.weight_r()).logabsdet


def stride_one_bound_value(layer, x, z):
    """A.7.1 bound at a sample x drawn from z: (n-1) log|a| + log p(x_1 | z_1) + sum_i log p(x_i | z_{i-1})."""
    n = x.shape[1]
    contexts = [z[:, :1]] + [z[:, i - 1 : i] for i in range(1, n)]
    log_p = sum(layer.decoder.log_prob(x[:, i : i + 1], context=contexts[i]) for i in range(n))
    return (n - 1) * torch.log(layer.kernel.a.abs()) + log_p


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], Transform]
    shape: tuple  # x without the batch axis
    kept: Callable  # (layer, shape) -> flat indices of x_+, the coordinates z is a bijection of
    grid: Optional[tuple] = None  # (half_width, points) per axis of x; only where x has <= 2 dimensions
    integral: str = "one"  # "one", "below one" (a bound) or "one with z_extra" (the generative funnel, see the test)
    pin: Callable = pin_nothing  # kwargs that pin a stochastic forward to the latent's own noise
    bound_value: Optional[Callable] = None  # V at a sample x and the z it was drawn from, for a bound
    z_rows: Optional[int] = None  # rows of z that are the bijective image of x_+ (None: all)

    @property
    def right_inverse(self):
        return self.bound_value is None


def funnel_2d():
    return Funnel(2, rq_autoregressive(1, context_features=1, hidden_features=8, num_bins=5, tail_bound=4.0),
                  GaussianDecoder(1, 1, **H))


def funnel_4d():
    return Funnel(4, rq_autoregressive(2, context_features=2, hidden_features=8, num_bins=5, tail_bound=4.0),
                  flow_decoder(2, 2, num_layers=1, hidden_features=8, num_bins=4), dropped=(0, 2))


CASES = [
    Case("Funnel-2", funnel_2d, (2,), split_kept, grid=((10.0, 500),) * 2),
    Case("Funnel-4-flow-decoder", funnel_4d, (4,), split_kept),
    Case("Slice-2", lambda: Slice(2, GaussianDecoder(1, 1, **H)), (2,), split_kept, grid=((10.0, 500),) * 2),
    Case("Slice-3", lambda: Slice(3, GaussianDecoder(2, 1, **H), dropped=(0, 2)), (3,), split_kept),
    Case("ConvFunnel1d-2", lambda: ConvFunnel1d(2, **H), (2,), split_kept, grid=((12.0, 600),) * 2),
    Case("ConvFunnel1d-6", lambda: ConvFunnel1d(6, **H), (6,), split_kept),
    Case("ConvFunnel1dStrideOne-2", lambda: ConvFunnel1dStrideOne(2, **H), (2,), split_kept, grid=((12.0, 600),) * 2),
    Case("ConvFunnel1dStrideOne-5", lambda: ConvFunnel1dStrideOne(5, **H), (5,), split_kept),
    Case("ConvFunnel1dStrideOneBound-2", lambda: ConvFunnel1dStrideOneBound(2, **H), (2,), bound_stride_one_kept,
         grid=((12.0, 600),) * 2, integral="below one", bound_value=stride_one_bound_value),
    Case("ConvFunnel1dStrideOneBound-5", lambda: ConvFunnel1dStrideOneBound(5, **H), (5,), bound_stride_one_kept,
         bound_value=stride_one_bound_value),
    Case("ConvFunnel2d-1x1x2", lambda: ConvFunnel2d(1, 1, 2, **H), (1, 1, 2), image_kept, grid=((14.0, 500),) * 2),
    Case("ConvFunnel2d-2x4x4", lambda: ConvFunnel2d(2, 4, 4, **H), (2, 4, 4), image_kept),
    Case("ConvFunnel2d-1x3x5-unconstrained", lambda: ConvFunnel2d(1, 3, 5, jacobian="unconstrained", **H), (1, 3, 5),
         image_kept),
    Case("MLPFunnel-2-1", lambda: MLPFunnel(2, 1, permutation_seed=3, **H), (2,), mlp_kept, grid=((10.0, 500),) * 2),
    Case("MLPFunnel-2-2", lambda: MLPFunnel(2, 2, "qr", **H), (2,), mlp_kept, grid=((10.0, 500),) * 2),
    Case("MLPFunnel-5-3-qr", lambda: MLPFunnel(5, 3, "qr", permutation_seed=2, **H), (5,), mlp_kept),
    Case("MLPFunnelBound-2-1", lambda: MLPFunnelBound(2, 1, **H), (2,), mlp_kept, grid=((10.0, 500),) * 2,
         integral="below one", bound_value=mlp_bound_value),
    Case("MLPFunnelBound-4-2-qr", lambda: MLPFunnelBound(4, 2, "qr", permutation_seed=None, **H), (4,), mlp_kept,
         bound_value=mlp_bound_value),
    Case("GenerativeFunnel-1-1", lambda: GenerativeFunnel(1, 1, num_bins=6, **H), (1,), all_of_x,
         grid=((12.0, 500), (10.0, 500)), integral="one with z_extra", pin=pin_z_extra, z_rows=1),
    Case("GenerativeFunnel-2-3", lambda: GenerativeFunnel(2, 3, num_bins=6, **H), (2,), all_of_x, pin=pin_z_extra,
         z_rows=2),
    Case("QRLinear-2", lambda: QRLinear(2), (2,), all_of_x, grid=((10.0, 500),) * 2),
    Case("SplineActivation-2", lambda: SplineActivation(2, num_bins=5), (2,), all_of_x, grid=((10.0, 500),) * 2),
    Case("SplineActivation-3-shared", lambda: SplineActivation(3, num_bins=4, shared=True), (3,), all_of_x),
]
GRID_CASES = [case for case in CASES if case.grid is not None]


def ids(cases):
    return [case.name for case in cases]


def make(case, seed=1):
    torch.manual_seed(1)  # nflows initialises some networks at random: the same layer every run
    return perturb(case.build().double(), seed=seed)


def terms(layer, x, **pinned):
    """``(z, logabsdet, log_p)`` of any layer: a funnel layer's contributions, a bijection's (z, log|det|, 0)."""
    if isinstance(layer, FunnelLayer):
        return layer.contributions(x, **pinned)
    z, logabsdet = layer(x)
    return z, logabsdet, torch.zeros_like(logabsdet)


def latent(layer, case, batch, dtype=torch.float64, seed=0):
    """A batch of latents of the right shape (read from a forward pass)."""
    with torch.no_grad():
        z_shape = layer(torch.zeros(1, *case.shape, dtype=dtype))[0].shape[1:]
    return torch.randn(batch, *z_shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def log_normal(z):
    z = z.flatten(1)
    return -0.5 * (z**2).sum(1) - 0.5 * z.shape[1] * math.log(2 * math.pi)


# -- the properties --------------------------------------------------------------------------------
@pytest.mark.parametrize("case", GRID_CASES, ids=ids(GRID_CASES))
@torch.no_grad()
def test_density_integrates_to_one_on_a_grid(case):
    """Midpoint rule of N(z; 0, I) exp(V(x)) over x: 1 for an exact layer, less for a bound.

    The generative funnel's forward draws z_extra ~ q, and its V is a one-draw bound (A.2, Eq. 9), whose
    importance weights are too heavy-tailed for a grid; the density it bounds is the integral over z_extra of
    N(z) |det dz_main/dx| (z = [z_main, z_extra]), so that joint density of (x, z_extra) is integrated instead."""
    layer = make(case)
    assert (getattr(layer, "exact", True) is True) == (case.integral == "one")
    centres, volume = [], 1.0
    for half_width, points in case.grid:
        step = 2 * half_width / points
        centres.append(-half_width + step * (torch.arange(points, dtype=torch.float64) + 0.5))
        volume *= step
    grid = torch.stack(torch.meshgrid(*centres, indexing="ij"), dim=-1).reshape(-1, len(centres))
    total = 0.0
    for chunk in grid.split(50_000):
        if case.integral == "one with z_extra":
            x, z_extra = chunk[:, : layer.features_in], chunk[:, layer.features_in :]
            z, logabsdet, _ = layer.contributions(x, z_extra=z_extra)
            log_p = log_normal(z) + logabsdet
        else:
            z, value = layer(chunk.reshape(-1, *case.shape))
            log_p = log_normal(z) + value
        total += torch.exp(log_p).sum().item()
    total *= volume
    if case.integral == "below one":
        assert 0.05 < total < 0.95, total
    else:
        assert abs(total - 1) < 1e-3, total


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_logabsdet_matches_autograd(case):
    """log|det dz/dx_+| from the autograd Jacobian of z in the kept coordinates, the others held fixed."""
    layer = make(case)
    x = torch.randn(3, *case.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    z_pinned = latent(layer, case, 3, seed=3)
    kept = case.kept(layer, case.shape)
    for i in range(3):
        pinned = case.pin(layer, z_pinned[i : i + 1])
        row = x[i : i + 1]
        _, logabsdet, _ = terms(layer, row, **pinned)

        def z_of(flat):
            z = terms(layer, flat.reshape(1, *case.shape), **pinned)[0].flatten()
            return z if case.z_rows is None else z[: case.z_rows]

        jacobian = torch.autograd.functional.jacobian(z_of, row.flatten())[:, kept]
        assert jacobian.shape[0] == jacobian.shape[1] == len(kept)
        assert torch.allclose(logabsdet[0], torch.linalg.slogdet(jacobian).logabsdet, atol=1e-10)


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
@torch.no_grad()
def test_sample_then_encode_gives_the_latent_back(case):
    """The right-inverse condition (A.1): f(x) = z for every x drawn from z; the bounds give it up."""
    layer = make(case)
    z = latent(layer, case, 6)
    torch.manual_seed(0)
    x, _ = layer.inverse(z)
    assert x.shape == (6, *case.shape)
    z_again, _, _ = terms(layer, x, **case.pin(layer, z))
    if case.right_inverse:
        assert torch.allclose(z_again, z, atol=1e-9)
    else:
        assert (z_again - z).abs().max() > 1e-2


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
@torch.no_grad()
def test_inverse_returns_minus_the_contribution_at_the_sample(case):
    """inverse(z) returns -V(x) at the x it drew (for a bound: V by hand, with the z it drew from); for a
    bijection, inverse(forward(x)) is x again with minus the log-determinant."""
    layer = make(case)
    z = latent(layer, case, 5)
    torch.manual_seed(1)
    x, minus_value = layer.inverse(z)
    if case.right_inverse:
        _, logabsdet, log_p = terms(layer, x, **case.pin(layer, z))
        expected = logabsdet + log_p
    else:
        expected = case.bound_value(layer, x, z)
    assert minus_value.shape == (5,)
    assert torch.allclose(minus_value, -expected, atol=1e-9)
    if not isinstance(layer, FunnelLayer):
        data = torch.randn(5, *case.shape, dtype=torch.float64)
        y, logabsdet = layer(data)
        back, inverse_logabsdet = layer.inverse(y)
        assert torch.allclose(back, data, atol=1e-10) and torch.allclose(inverse_logabsdet, -logabsdet, atol=1e-10)


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
@torch.no_grad()
def test_a_batch_of_one_gives_the_rows_of_a_batch(case):
    """Each row alone (batch size 1) gives the same z and V as inside a batch; inverse takes a batch of one."""
    layer = make(case)
    x = torch.randn(4, *case.shape, dtype=torch.float64)
    z_pinned = latent(layer, case, 4, seed=5)
    z, logabsdet, log_p = terms(layer, x, **case.pin(layer, z_pinned))
    for i in range(4):
        z_i, logabsdet_i, log_p_i = terms(layer, x[i : i + 1], **case.pin(layer, z_pinned[i : i + 1]))
        assert z_i.shape == (1, *z.shape[1:]) and logabsdet_i.shape == log_p_i.shape == (1,)
        assert torch.allclose(z_i[0], z[i], atol=1e-12)
        assert torch.allclose(logabsdet_i[0] + log_p_i[0], logabsdet[i] + log_p[i], atol=1e-12)
    sample, minus_value = layer.inverse(z[:1])
    assert sample.shape == (1, *case.shape) and minus_value.shape == (1,)


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
@torch.no_grad()
def test_float64_throughout_and_float32_agrees(case):
    """A float64 layer keeps float64 both ways; its float32 copy gives the same z and V to float32 precision."""
    layer = make(case)
    x = torch.randn(5, *case.shape, dtype=torch.float64)
    z_pinned = latent(layer, case, 5, seed=7)
    z, logabsdet, log_p = terms(layer, x, **case.pin(layer, z_pinned))
    sample, minus_value = layer.inverse(z_pinned)
    assert {z.dtype, logabsdet.dtype, log_p.dtype, sample.dtype, minus_value.dtype} == {torch.float64}
    single = copy.deepcopy(layer).float()
    z32, logabsdet32, log_p32 = terms(single, x.float(), **case.pin(single, z_pinned.float()))
    assert z32.dtype == torch.float32
    assert torch.allclose(z32.double(), z, rtol=1e-4, atol=1e-4)
    assert torch.allclose((logabsdet32 + log_p32).double(), logabsdet + log_p, rtol=1e-4, atol=1e-3)


# -- the table covers every exported layer ----------------------------------------------------------
def exported_transforms():
    return {name: getattr(layers, name) for name in layers.__all__
            if inspect.isclass(getattr(layers, name)) and issubclass(getattr(layers, name), Transform)
            and not inspect.isabstract(getattr(layers, name))}


def test_every_exported_layer_is_in_the_table_and_every_funnel_layer_keeps_the_contract():
    exported = exported_transforms()
    covered = {type(case.build()).__name__ for case in CASES}
    assert set(exported) <= covered, f"layers with no row in CASES: {sorted(set(exported) - covered)}"
    funnels = {name for name, cls in exported.items() if issubclass(cls, FunnelLayer)}
    assert funnels == {"ConvFunnel1d", "ConvFunnel1dStrideOne", "ConvFunnel1dStrideOneBound", "ConvFunnel2d", "Funnel",
                       "GenerativeFunnel", "MLPFunnel", "MLPFunnelBound", "Slice"}
    for name in funnels:
        cls = exported[name]
        assert isinstance(cls.exact, bool), name
        assert cls.forward is FunnelLayer.forward, f"{name}.forward must be the sum of its contributions"
    grid_layers = {type(case.build()).__name__ for case in GRID_CASES}
    assert grid_layers == covered  # every layer is integrated on a grid at least once


def test_a_funnel_layer_must_say_whether_it_is_exact():
    class Unsaid(FunnelLayer):
        def contributions(self, inputs, context=None):
            return inputs, inputs[:, 0], inputs[:, 0]

        def inverse(self, inputs, context=None):
            return inputs, -inputs[:, 0]

    with pytest.raises(TypeError, match="Unsaid must set exact = True or False"):
        Unsaid()
    with pytest.raises(TypeError, match="abstract"):
        FunnelLayer()
