"""More 2-D toy distributions for the dashboard, each a seeded sampler returning ``(n, 2)``.

Their definitions follow the 2-D sets of NSF/FFJORD that the paper's code also ships
(``funnels/data/plane.py``); only four circles has a closed-form density here.
"""

from __future__ import annotations

import math

import torch

from ..validation import check_positive_int
from .four_circles import four_circles


def _generator(n, seed, generator):
    check_positive_int(n, "n")
    return generator if generator is not None else torch.Generator().manual_seed(int(seed))


def two_moons(n, seed=0, dtype=torch.float32, generator=None, noise=0.1):
    """Two interleaved half circles, standardised to about [-2, 2]^2."""
    g = _generator(n, seed, generator)
    upper = torch.rand(n, generator=g, dtype=torch.float64) < 0.5
    angle = math.pi * torch.rand(n, generator=g, dtype=torch.float64)
    x = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    x = torch.where(upper[:, None], x, torch.stack([1 - x[:, 0], 0.5 - x[:, 1]], dim=1))
    x = x + noise * torch.randn(n, 2, generator=g, dtype=torch.float64)
    return ((x - torch.tensor([0.5, 0.25], dtype=torch.float64)) * 2).to(dtype)


def checkerboard(n, seed=0, dtype=torch.float32, generator=None):
    """Uniform on the black squares of a 4x4 board on [-4, 4]^2 (the paper code's default toy)."""
    g = _generator(n, seed, generator)
    x1 = 4 * torch.rand(n, generator=g, dtype=torch.float64) - 2
    x2 = torch.rand(n, generator=g, dtype=torch.float64) - 2 * torch.randint(0, 2, (n,), generator=g)
    x2 = x2 + torch.floor(x1) % 2
    return (2 * torch.stack([x1, x2], dim=1)).to(dtype)


def eight_gaussians(n, seed=0, dtype=torch.float32, generator=None, std=0.5):
    """Eight Gaussians on a circle of radius 4 (FFJORD), scaled by 1/sqrt(2)."""
    g = _generator(n, seed, generator)
    k = torch.randint(0, 8, (n,), generator=g).to(torch.float64)
    centres = 4 * torch.stack([torch.cos(k * math.pi / 4), torch.sin(k * math.pi / 4)], dim=1)
    x = centres + std * torch.randn(n, 2, generator=g, dtype=torch.float64)
    return (x / math.sqrt(2)).to(dtype)


TOYS = {
    "four-circles": four_circles,
    "two-moons": two_moons,
    "checkerboard": checkerboard,
    "eight-gaussians": eight_gaussians,
}


def toy(name: str, n: int, seed: int = 0, dtype: torch.dtype = torch.float32,
        generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample the 2-D toy called ``name`` (one of :data:`TOYS`)."""
    if name not in TOYS:
        raise ValueError(f"unknown toy dataset {name!r}; expected one of {', '.join(map(repr, TOYS))}")
    return TOYS[name](n, seed=seed, dtype=dtype, generator=generator)
