"""Bit reduction and uniform dequantisation of uint8 images, the convention of NSF and Funnels.

The paper (A.9 of the kit's reference note; NSF's and Funnels' ``Preprocess(num_bits)``):

1. reduce to ``b`` bits: ``x_b = floor(x / 2**(8 - b))``, integers in ``[0, 2**b)`` (8 bits:
   ``x`` unchanged; 5 bits: ``[0, 32)``);
2. dequantise: ``u = x_b + U[0, 1)``, fresh noise each time, so ``u`` lies in ``[0, 2**b)``;
3. the model's first transform maps ``u`` to ``u / 2**b - 0.5`` and counts its log-det
   ``-D b ln 2`` in ``log_prob``, so ``log p(u)`` is a density on unit-width bins and
   ``bits/dim = -log p(u) / (D ln 2)``. A density ``q`` on ``[0, 1)`` (or ``[-0.5, 0.5)``)
   instead needs the offset of ``b`` bits: ``bits/dim = -log q / (D ln 2) + b`` (``+5`` on 5-bit
   data, not ``+8``). The kit's metrics module does that arithmetic; this one only prepares data.

Back to pictures, as NSF does: ``floor(u) * 256 / 2**b`` clamped to 255, so 5-bit pixels land
on ``{0, 8, ..., 248}``.

One fix over NSF: in float32, ``x_b + U`` can round up to ``x_b + 1`` when the noise is within
half a float spacing of 1 (about 1 draw in 130,000 at ``x_b = 255``), and ``floor`` then lands
in the next bin (256 at 8 bits). :func:`dequantize` keeps every value strictly below ``x_b + 1``.
"""

from __future__ import annotations

import torch

BITS = (5, 8)


def _check_bits(bits):
    if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= 8:
        raise ValueError(f"bits must be an int in 1..8 (the paper uses {BITS}), got {bits!r}")
    return bits


def reduce_bits(x: torch.Tensor, bits: int) -> torch.Tensor:
    """``floor(x / 2**(8 - bits))`` of 8-bit images ``x`` (uint8, or integer values 0..255).

    Returns a uint8 tensor for integer input, and a tensor of ``x``'s floating dtype otherwise.
    """
    _check_bits(bits)
    x = torch.as_tensor(x)
    if x.dtype == torch.uint8:
        return torch.div(x, 2 ** (8 - bits), rounding_mode="floor")
    if x.is_floating_point():
        if torch.isnan(x).any() or (x < 0).any() or (x > 255).any() or (x != torch.floor(x)).any():
            raise ValueError("expected integer pixel values in 0..255 (not scaled to [0, 1])")
        return torch.floor(x / 2 ** (8 - bits))
    if (x < 0).any() or (x > 255).any():
        raise ValueError("expected pixel values in 0..255")
    return torch.div(x, 2 ** (8 - bits), rounding_mode="floor").to(torch.uint8)


def dequantize(x_b: torch.Tensor, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``u = x_b + U[0, 1)`` with noise from ``generator`` (a ``torch.Generator``, for seeding).

    ``u`` is strictly below ``x_b + 1`` in ``dtype`` (see the module text), so
    :func:`quantize` gives ``x_b`` back exactly.
    """
    x_b = torch.as_tensor(x_b).to(dtype)
    noise = torch.rand(x_b.shape, generator=generator, dtype=dtype, device=x_b.device)
    u = x_b + noise
    return torch.minimum(u, torch.nextafter(x_b + 1, x_b))


def preprocess(x, bits, generator=None, dtype=torch.float32):
    """NSF's ``Preprocess``: reduce uint8 images to ``bits`` and dequantise, in ``[0, 2**bits)``."""
    return dequantize(reduce_bits(x, bits), generator=generator, dtype=dtype)


def quantize(u: torch.Tensor, bits: int | None = None) -> torch.Tensor:
    """``floor(u)``: the integer bin of dequantised values, as uint8 (clamped to the range).

    With ``bits`` given the result is clamped to ``[0, 2**bits)``; model samples may leave it.
    """
    top = 2 ** _check_bits(bits) - 1 if bits is not None else 255
    return torch.floor(torch.as_tensor(u)).clamp(0, top).to(torch.uint8)


def to_uint8_images(u: torch.Tensor, bits: int) -> torch.Tensor:
    """Dequantised values (or ``x_b``) back to 8-bit pictures: ``floor(u) * 256 / 2**bits``,
    clamped to ``[0, 255]``, as NSF shows samples."""
    step = 256 // 2 ** _check_bits(bits)
    x_b = torch.floor(torch.as_tensor(u)).clamp(0, 2 ** bits - 1)
    return (x_b * step).clamp(0, 255).to(torch.uint8)
