"""The four-circles distribution of the paper's Fig. 2 and Fig. 5 (A.5).

The paper's generator (shared with NSF): a circle index c uniform in four, an angle u uniform in
[0, 2 pi), x = R (cos u, sin u) + eps - c with R = 2, eps ~ N(0, 0.1^2 I) and the centres c in
{(-1,-1), (-1,1), (1,-1), (1,1)}; the model sees this raw scale, about [-3.3, 3.3]^2.

Its density integrates the noise over the angle. For one circle centred at m, with
r = |x - m|, the angle integral has a closed form in the modified Bessel function I_0:

    p(x | m) = (2 pi)^-1 int du N(x; m + R (cos u, sin u), s^2 I)
             = exp(-(r^2 + R^2) / (2 s^2)) I_0(r R / s^2) / (2 pi s^2),

and p(x) is the mean over the four centres. :func:`four_circles_log_prob` evaluates it in a
numerically stable form (``i0e``); :func:`four_circles_log_prob_quadrature` evaluates the angle
integral by the trapezoid rule, which the tests use as the second, independent computation.
"""

from __future__ import annotations

import math

import torch

from ..validation import check_positive_int

RADIUS = 2.0
NOISE = 0.1
CENTRES = ((-1.0, -1.0), (-1.0, 1.0), (1.0, -1.0), (1.0, 1.0))


def four_circles(n: int, seed: int = 0, dtype: torch.dtype = torch.float32,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` points of four circles, shape ``(n, 2)``, in shuffled order (seeded, repeatable).

    ``generator`` (a ``torch.Generator``), when given, is used instead of ``seed``: the Trainer
    passes its own so that fresh batches are drawn from one stream.
    """
    n = check_positive_int(n, "n")
    if generator is None:
        generator = torch.Generator().manual_seed(int(seed))
    circle = torch.arange(n) % 4  # n/4 points per circle, as in the paper's generator
    circle = circle[torch.randperm(n, generator=generator)]
    angle = 2 * math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
    ring = RADIUS * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    noise = NOISE * torch.randn(n, 2, generator=generator, dtype=torch.float64)
    centres = torch.tensor(CENTRES, dtype=torch.float64)[circle]
    return (ring + noise - centres).to(dtype)


def _check_points(x):
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != 2:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a tensor of shape (n, 2), got {shape}")
    if not x.is_floating_point():
        raise ValueError(f"x must be floating point, got {x.dtype}")


def four_circles_log_prob(x: torch.Tensor) -> torch.Tensor:
    """The true log density of four circles at x, shape ``(n,)`` (closed form, float64 inside)."""
    _check_points(x)
    x64 = x.to(torch.float64)
    centres = torch.tensor(CENTRES, dtype=torch.float64, device=x.device)
    # The generator subtracts the centre, so circle c is centred at -c; the set is symmetric.
    r = torch.linalg.norm(x64[:, None, :] + centres[None, :, :], dim=2)
    s2 = NOISE**2
    bessel_argument = r * RADIUS / s2
    log_per_circle = (
        -((r - RADIUS) ** 2) / (2 * s2)
        + torch.log(torch.special.i0e(bessel_argument))
        - math.log(2 * math.pi * s2)
    )
    return (torch.logsumexp(log_per_circle, dim=1) - math.log(4)).to(x.dtype)


def four_circles_log_prob_quadrature(x: torch.Tensor, num_angles: int = 2048) -> torch.Tensor:
    """The same density by the trapezoid rule over the circle angle (periodic: spectrally exact)."""
    _check_points(x)
    x64 = x.to(torch.float64)
    angle = torch.arange(num_angles, dtype=torch.float64) * (2 * math.pi / num_angles)
    ring = RADIUS * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    centres = -torch.tensor(CENTRES, dtype=torch.float64)
    points = (centres[:, None, :] + ring[None, :, :]).reshape(-1, 2)  # every circle point
    squared = ((x64[:, None, :] - points[None, :, :]) ** 2).sum(dim=2)
    log_gauss = -squared / (2 * NOISE**2) - math.log(2 * math.pi * NOISE**2)
    return (torch.logsumexp(log_gauss, dim=1) - math.log(len(points))).to(x.dtype)
