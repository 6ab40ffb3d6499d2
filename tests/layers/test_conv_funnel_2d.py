"""The 2x2 convolutional funnel on images (A.7.1, Eqs. 20-21): each term checked against an independent computation."""

import math

import pytest
import torch
import torch.nn.functional as F

from funnelkit.layers.conv_funnel_2d import ConvFunnel2d
from funnelkit.layers.tile_decoder import TileGaussianDecoder

from ..conftest import perturb
from .checks import assert_outer_context_reaches_the_decoder

JACOBIANS = ["lu", "unconstrained"]
DROPPED_POSITIONS = [(0, 0), (0, 1), (1, 0)]


def make(channels, height, width, jacobian="lu", **kwargs):
    layer = ConvFunnel2d(channels, height, width, hidden_features=8, num_hidden_layers=2, jacobian=jacobian, **kwargs)
    return perturb(layer.double())


def log_p_of(layer, mask=True):
    """log N(z) + V(x) for flat rows of x; ``mask=False`` counts the padding as data (the authors' way)."""
    def log_p(rows):
        x = rows.reshape(-1, *layer.input_shape)
        z, logabsdet, log_p_dropped = layer.contributions(x)
        if not mask:
            log_p_dropped = layer.decoder.log_prob(layer.tiles(x)[1], z)
        base = -0.5 * (z**2).flatten(1).sum(1) - 0.5 * z[0].numel() * math.log(2 * math.pi)
        return base + logabsdet + log_p_dropped
    return log_p


@torch.no_grad()
def grid_integral(log_p, axes):
    """Midpoint rule of exp(log_p) on the product grid; ``axes`` is a list of (half_width, points)."""
    centres, volume = [], 1.0
    for half_width, points in axes:
        step = 2 * half_width / points
        centres.append(-half_width + step * (torch.arange(points, dtype=torch.float64) + 0.5))
        volume *= step
    grid = torch.stack(torch.meshgrid(*centres, indexing="ij"), dim=-1).reshape(-1, len(axes))
    return (sum(torch.exp(log_p(chunk)).sum() for chunk in grid.split(200_000)) * volume).item()


def kept_half_width(layer):
    """Where the kept pixel can be: |x_+| <= (6 + 6 sum|W_-| + |bias|) / |J| for |z|, |x_-| <= 6 (1 channel)."""
    w = layer.weight.detach().flatten()
    return (6 + 6 * w[:3].abs().sum() + layer.bias.detach().abs().sum()).item() / abs(w[3].item())


def by_hand_padded(layer, x):
    """x with the zero row (top) and column (left) of an odd size, built without the layer."""
    c, h, w = layer.output_shape
    padded = x.new_zeros(x.shape[0], c, 2 * h, 2 * w)
    padded[:, :, 2 * h - x.shape[2] :, 2 * w - x.shape[3] :] = x
    return padded


# -- exactness ----------------------------------------------------------------------------------
@pytest.mark.parametrize("jacobian", JACOBIANS)
def test_one_partial_tile_is_normalised_on_a_2d_grid(jacobian):
    """H = 1, W = 2: a padded row on top; x[0, 0] is the real dropped pixel, x[0, 1] the kept one."""
    layer = make(1, 1, 2, jacobian)
    assert layer.exact is True and layer.output_shape == (1, 1, 1)
    axes = [(14.0, 400), (kept_half_width(layer), 400)]
    total = grid_integral(log_p_of(layer), axes)
    assert abs(total - 1) < 1e-3, total
    # Counting the two padded zeros as data (a log-det-0 padding, as in the authors' code) is not normalised.
    unmasked = grid_integral(log_p_of(layer, mask=False), axes)
    assert abs(unmasked - 1) > 0.05, unmasked


@pytest.mark.parametrize("jacobian", JACOBIANS)
def test_one_full_tile_is_normalised_on_a_4d_grid(jacobian):
    """1 x 2 x 2: coarse midpoint rule, 24^3 x 48 points; measured error < 1e-4, asserted < 1e-3."""
    layer = make(1, 2, 2, jacobian)
    total = grid_integral(log_p_of(layer), [(12.0, 24)] * 3 + [(kept_half_width(layer), 48)])
    assert abs(total - 1) < 1e-3, total


@pytest.mark.parametrize("jacobian", JACOBIANS)
@pytest.mark.parametrize("size", [(4, 4), (5, 5)])
def test_logabsdet_matches_autograd(jacobian, size):
    height, width = size
    layer = make(2, height, width, jacobian)
    x = torch.randn(1, 2, height, width, dtype=torch.float64)
    top, left = 1 - height % 2, 1 - width % 2  # the kept (bottom-right) pixels in unpadded coordinates
    kept = x[0, :, top::2, left::2].clone()
    assert kept.shape == layer.output_shape

    def z_of_kept(values):
        image = x.clone()
        image[0, :, top::2, left::2] = values
        return layer(image)[0]

    jacobian_matrix = torch.autograd.functional.jacobian(z_of_kept, kept).reshape(kept.numel(), kept.numel())
    _, logabsdet, _ = layer.contributions(x)
    assert torch.allclose(logabsdet[0], torch.linalg.slogdet(jacobian_matrix).logabsdet, atol=1e-10)
    assert torch.allclose(logabsdet[0], layer.num_tiles * torch.linalg.slogdet(layer.jacobian_matrix()).logabsdet)


def test_lu_jacobian_is_p_l_u_and_its_log_det_is_sum_s():
    layer = make(3, 4, 4, "lu")
    lower = torch.tril(layer.lower, -1) + torch.eye(3, dtype=torch.float64)
    upper = torch.triu(layer.upper, 1) + torch.diag(layer.log_abs_diagonal.exp())
    permutation = torch.eye(3, dtype=torch.float64)[layer.permutation]
    assert torch.allclose(layer.jacobian_matrix(), permutation @ lower @ upper, atol=1e-12)
    assert torch.allclose(layer.weight[:, :, 1, 1], layer.jacobian_matrix())
    assert torch.allclose(layer.log_abs_det_jacobian(), torch.linalg.slogdet(layer.jacobian_matrix()).logabsdet)
    assert "permutation" in layer.state_dict()  # a checkpoint restores the same random P
    layer.permutation.copy_(torch.tensor([1, 2, 0]))  # a 3-cycle: P^T != P, so the solve must undo P right
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    assert torch.allclose(layer.inverse_given_dropped(layer(x)[0], layer.tiles(x)[1]), x, atol=1e-10)


# -- the forward map ----------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(4, 6), (5, 3)])
def test_z_is_the_strided_kernel_summed_by_hand(size):
    layer = make(2, *size)
    x = torch.randn(2, 2, *size, dtype=torch.float64)
    padded = by_hand_padded(layer, x)
    weight = layer.weight
    c, h, w = layer.output_shape
    expected = torch.empty(2, c, h, w, dtype=torch.float64)
    for ti in range(h):
        for tj in range(w):
            tile = padded[:, :, 2 * ti : 2 * ti + 2, 2 * tj : 2 * tj + 2]
            expected[:, :, ti, tj] = torch.einsum("oikl,bikl->bo", weight, tile) + layer.bias
    assert torch.allclose(layer(x)[0], expected, atol=1e-12)


def test_the_kept_element_is_the_bottom_right_of_each_tile():
    layer = make(2, 4, 4)
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64)
    z, logabsdet, log_p = layer.contributions(x)
    delta = 0.5
    dropped, kept = x.clone(), x.clone()
    dropped[0, 1, 0, 0] += delta  # top-left of tile (0, 0), channel 1
    kept[0, 1, 1, 1] += delta  # bottom-right of tile (0, 0), channel 1
    z_d, logabsdet_d, log_p_d = layer.contributions(dropped)
    z_k, _, _ = layer.contributions(kept)
    assert torch.equal(logabsdet_d, logabsdet) and not torch.allclose(log_p_d, log_p)
    expected_d, expected_k = torch.zeros_like(z), torch.zeros_like(z)
    expected_d[0, :, 0, 0] = layer.weight[:, 1, 0, 0] * delta
    expected_k[0, :, 0, 0] = layer.jacobian_matrix()[:, 1] * delta
    assert torch.allclose(z_d - z, expected_d, atol=1e-12)
    assert torch.allclose(z_k - z, expected_k, atol=1e-12)


# -- the tile Gaussian ---------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(4, 4), (5, 3)])
def test_tile_log_prob_matches_a_loop_over_tiles(size):
    layer = make(2, *size)
    x = torch.randn(3, 2, *size, dtype=torch.float64)
    z, _, log_p = layer.contributions(x)
    padded, z_padded = by_hand_padded(layer, x), F.pad(z, (1, 1, 1, 1))
    pad_top, pad_left = 2 * z.shape[2] - size[0], 2 * z.shape[3] - size[1]
    c, h, w = layer.output_shape
    expected, real_count = torch.zeros(3, dtype=torch.float64), 0
    for ti in range(h):
        for tj in range(w):
            near = z_padded[:, :, ti : ti + 3, tj : tj + 3].reshape(3, 9 * c)
            mean, log_std = layer.decoder.gaussian.mean_and_log_std(near)
            for channel in range(c):
                for p, (kh, kw) in enumerate(DROPPED_POSITIONS):
                    row, col = 2 * ti + kh, 2 * tj + kw
                    if row < pad_top or col < pad_left:
                        continue  # a padded constant, not data
                    real_count += 1
                    k = 3 * channel + p
                    normal = torch.distributions.Normal(mean[:, k], log_std[:, k].exp())
                    expected += normal.log_prob(padded[:, channel, row, col])
    assert real_count == c * (size[0] * size[1] - h * w)
    assert int(layer.dropped_mask.sum()) == real_count
    assert torch.allclose(log_p, expected, atol=1e-10)


def test_the_context_of_a_tile_is_its_3x3_neighbourhood_9c_wide():
    layer = make(2, 8, 8)
    first = [m for m in layer.decoder.modules() if isinstance(m, torch.nn.Linear)][0]
    assert first.in_features == 9 * 2 and layer.decoder.features == 3 * 2
    z = torch.randn(1, *layer.output_shape, dtype=torch.float64)
    mean, _ = layer.decoder.mean_and_log_std(z)
    tile = 1 * 4 + 1  # tile (1, 1) of the 4 x 4 grid
    near, far = z.clone(), z.clone()
    near[0, 0, 2, 2] += 1.0
    far[0, 0, 3, 3] += 1.0
    assert not torch.allclose(layer.decoder.mean_and_log_std(near)[0][0, tile], mean[0, tile])
    assert torch.equal(layer.decoder.mean_and_log_std(far)[0][0, tile], mean[0, tile])


def test_fresh_tile_gaussian_is_standard_normal_on_the_real_dropped_pixels():
    layer = ConvFunnel2d(1, 3, 3, hidden_features=8).double()
    x = torch.randn(2, 1, 3, 3, dtype=torch.float64)
    _, _, log_p = layer.contributions(x)
    real_dropped = torch.ones(3, 3, dtype=torch.bool)
    real_dropped[0::2, 0::2] = False  # the kept pixels of a padded 3 x 3 image
    values = x[:, 0][:, real_dropped]
    assert values.shape[1] == 5
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(values).sum(1)
    assert torch.allclose(log_p, expected, atol=1e-12)
    assert isinstance(layer.decoder, TileGaussianDecoder)


# -- inverse ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("jacobian", JACOBIANS)
@pytest.mark.parametrize("size", [(4, 4), (5, 5), (3, 6)])
def test_reconstruction_from_the_true_dropped_values_is_exact(jacobian, size):
    layer = make(2, *size, jacobian=jacobian)
    x = torch.randn(3, 2, *size, dtype=torch.float64)
    z, _ = layer(x)
    _, dropped = layer.tiles(x)
    assert torch.allclose(layer.inverse_given_dropped(z, dropped), x, atol=1e-10)


@pytest.mark.parametrize("jacobian", JACOBIANS)
@pytest.mark.parametrize("size", [(4, 4), (5, 5), (1, 2)])
@pytest.mark.parametrize("batch", [1, 3])
def test_inverse_samples_satisfy_the_right_inverse_condition(jacobian, size, batch):
    layer = make(2, *size, jacobian=jacobian)
    z = torch.randn(batch, *layer.output_shape, dtype=torch.float64)
    x, minus_v = layer.inverse(z)
    assert x.shape == (batch, 2, *size) and x.dtype == torch.float64
    z_again, v = layer(x)
    assert torch.allclose(z_again, z, atol=1e-9)
    assert torch.allclose(v, -minus_v, atol=1e-9)


def test_the_anomaly_models_sizes_chain_and_sample():
    """28 -> 14 -> 7 -> 4 -> 2 (A.9), sampled from the latent back to an image, exactly."""
    layers, shape = [], (1, 28, 28)
    for _ in range(4):  # a mild perturbation: an unbounded log-std fed back through four layers can overflow
        layers.append(perturb(ConvFunnel2d(*shape, hidden_features=8, num_hidden_layers=2).double(), scale=0.1))
        shape = layers[-1].output_shape
    assert [layer.output_shape[1] for layer in layers] == [14, 7, 4, 2]
    x = torch.randn(2, *shape, dtype=torch.float64)
    total = torch.zeros(2, dtype=torch.float64)
    for layer in reversed(layers):
        x, minus_v = layer.inverse(x)
        total += minus_v
    assert x.shape == (2, 1, 28, 28)
    forward = torch.zeros(2, dtype=torch.float64)
    for layer in layers:
        x, v = layer(x)
        forward += v
    assert torch.allclose(forward, -total, atol=1e-8)


def test_outer_context_reaches_every_tile():
    layer = make(1, 4, 4, context_features=2)
    assert_outer_context_reaches_the_decoder(layer, torch.randn(3, 1, 4, 4, dtype=torch.float64), 2)


# -- checks ----------------------------------------------------------------------------------------
def test_bad_input_raises_value_errors_naming_the_shape():
    layer = ConvFunnel2d(2, 4, 4, hidden_features=8)
    assert layer.input_shape == (2, 4, 4) and layer.output_shape == (2, 2, 2)
    with pytest.raises(ValueError, match=r"x of shape \(batch, 2, 4, 4\).*got \(1, 3, 4, 4\)"):
        layer(torch.randn(1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"x of shape \(batch, 2, 4, 4\).*got \(1, 2, 4, 5\)"):
        layer(torch.randn(1, 2, 4, 5))
    with pytest.raises(ValueError, match=r"x of shape \(batch, 2, 4, 4\).*got \(2, 32\)"):
        layer(torch.randn(2, 32))
    with pytest.raises(ValueError, match=r"z of shape \(batch, 2, 2, 2\)"):
        layer.inverse(torch.randn(1, 2, 4, 4))
    with pytest.raises(ValueError, match="takes no context"):
        layer(torch.randn(1, 2, 4, 4), context=torch.randn(1, 2))
    with pytest.raises(ValueError, match=r"context of shape \(1, 2\)"):
        ConvFunnel2d(2, 4, 4, context_features=2)(torch.randn(1, 2, 4, 4), context=torch.randn(1, 3))
    with pytest.raises(ValueError, match="unknown jacobian 'qr'"):
        ConvFunnel2d(2, 4, 4, jacobian="qr")
    with pytest.raises(ValueError, match="channels must be a positive int"):
        ConvFunnel2d(0, 4, 4)
