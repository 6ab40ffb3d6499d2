"""Bit reduction and uniform dequantisation (NSF/Funnels convention), with exact round trips."""

import pytest
import torch

from funnelkit.data.dequantize import (dequantize, preprocess, quantize, reduce_bits,
                                       to_uint8_images)

ALL = torch.arange(256, dtype=torch.uint8)


@pytest.mark.parametrize("bits", [5, 8])
def test_reduce_bits_matches_floor_division(bits):
    x_b = reduce_bits(ALL, bits)
    assert x_b.dtype == torch.uint8
    assert torch.equal(x_b.long(), torch.tensor([v // 2 ** (8 - bits) for v in range(256)]))
    assert x_b.min() == 0 and x_b.max() == 2 ** bits - 1
    assert torch.equal(reduce_bits(ALL.float(), bits), x_b.float())    # float input, same values
    assert torch.equal(reduce_bits(ALL.long(), bits), x_b)


def test_eight_bits_is_identity_and_five_bits_in_range():
    assert torch.equal(reduce_bits(ALL, 8), ALL)
    x5 = reduce_bits(torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8), 5)
    assert x5.max() < 32 and x5.min() >= 0


@pytest.mark.parametrize("bits", [5, 8])
def test_dequantise_then_quantise_returns_x_b(bits):
    x = torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8)
    x_b = reduce_bits(x, bits)
    u = preprocess(x, bits, generator=torch.Generator().manual_seed(1))
    assert u.dtype == torch.float32 and u.shape == x.shape
    noise = u - x_b.float()
    assert noise.min() >= 0 and noise.max() < 1
    assert 0 <= u.min() and u.max() < 2 ** bits
    assert torch.equal(quantize(u), x_b)
    assert abs(noise.double().mean().item() - 0.5) < 0.01               # U[0, 1)


def test_seeded():
    x_b = reduce_bits(torch.randint(0, 256, (100,), dtype=torch.uint8), 5)
    a = dequantize(x_b, generator=torch.Generator().manual_seed(7))
    b = dequantize(x_b, generator=torch.Generator().manual_seed(7))
    c = dequantize(x_b, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_float32_round_up_is_prevented():
    """x_b + U in float32 rounds to x_b + 1 for noise within 2**-17 of 1 at x_b = 255."""
    x_b = torch.full((2_000_000,), 255.0)
    generator = torch.Generator().manual_seed(0)
    naive = x_b + torch.rand(x_b.shape, generator=torch.Generator().manual_seed(0))
    assert (torch.floor(naive) == 256).any()                            # the edge case occurs
    u = dequantize(x_b, generator=generator)
    assert (torch.floor(u) == 255).all() and u.max() < 256
    assert (u == naive).float().mean() > 0.9999                         # else the same draws


@pytest.mark.parametrize("bits, expected", [(5, {0, 8, 248}), (8, {0, 1, 255})])
def test_to_uint8_images(bits, expected):
    u = preprocess(ALL, bits, generator=torch.Generator().manual_seed(2))
    images = to_uint8_images(u, bits)
    assert images.dtype == torch.uint8
    assert expected <= set(images.tolist()) and images.max() <= 255
    assert torch.equal(images, reduce_bits(ALL, bits) * (256 // 2 ** bits))
    assert to_uint8_images(torch.tensor([-3.0, 40.5]), 5).tolist() == [0, 248]   # clamped


def test_bad_arguments():
    with pytest.raises(ValueError, match="bits"):
        reduce_bits(ALL, 9)
    with pytest.raises(ValueError, match="0..255"):
        reduce_bits(torch.rand(3), 5)                                   # scaled to [0, 1)
