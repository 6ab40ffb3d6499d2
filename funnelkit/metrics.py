"""Metrics: mean log-likelihoods in nats with two-standard-error bars, and latent checks."""

import math

import torch


def mean_and_error(values):
    """The mean of per-example values and its two-standard-error bar, 2 std / sqrt(N).

    (NSF's code divides by N instead of sqrt(N), which understates the error; this does not.)
    """
    values = torch.as_tensor(values, dtype=torch.float64).flatten()
    if values.numel() < 2:
        raise ValueError(f"need at least two values for an error bar, got {values.numel()}")
    return values.mean().item(), 2 * values.std().item() / math.sqrt(values.numel())


@torch.no_grad()
def log_likelihood(model, x, batch_size=10_000):
    """Per-example log p(x) of ``model`` on ``x``, computed in batches, shape ``(n,)``."""
    x = x.to(device=model.device, dtype=model.dtype)
    return torch.cat([model.log_prob(chunk).cpu() for chunk in x.split(batch_size)])


def ks_statistic(values):
    """Kolmogorov-Smirnov distance between the empirical CDF of ``values`` and N(0, 1)."""
    values = torch.as_tensor(values, dtype=torch.float64).flatten().sort().values
    n = values.numel()
    cdf = 0.5 * (1 + torch.erf(values / math.sqrt(2)))
    above = torch.arange(1, n + 1, dtype=torch.float64) / n - cdf
    below = cdf - torch.arange(0, n, dtype=torch.float64) / n
    return max(above.max().item(), below.max().item())
