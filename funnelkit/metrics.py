"""Metrics: log-likelihoods in nats and bits/dim with two-standard-error bars, latent checks,
and anomaly scores (bits/dim ratio, exact AUROC, ROC curve). FID and IS live in ``fidelity.py``."""

from __future__ import annotations

import math

import torch

from .validation import check_positive_int


def mean_and_error(values):
    """The mean of per-example values and its two-standard-error bar, 2 std / sqrt(N).

    As both ``experiments/uci.py`` (NSF's and the authors') compute Table 1's bars,
    ``2 * std / np.sqrt(N)``. Only NSF's image helper (``eval_log_density_2`` in its
    ``experiments/autils.py``) divides by N instead, which understates the error; this does not.
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


# --------------------------------------------------------------------------------------------
# Bits per dimension (reference A.9)
# --------------------------------------------------------------------------------------------
#
# Two scales are in use for the same dequantised b-bit image:
#   * the unit-bin scale u in [0, 2**b)^D (uniform noise added to the integers 0..2**b - 1).
#     funnelkit's image models take this scale, and their ``log_prob`` is a density on it;
#     each bin has volume 1, so bpd = -log p(u) / (D ln 2), with no offset.
#   * the unit-interval scale y = u / 2**b in [0, 1)^D (or y - 1/2 in [-1/2, 1/2), which has
#     the same Jacobian). Since log p(u) = log q(y) - D b ln 2, bpd = -log q(y) / (D ln 2) + b.
#     The offset is the number of bits of the data: 5 for 5-bit, 8 for 8-bit. Adding 8 to a
#     density over 5-bit data is a common bug that inflates bpd by 3.

def _as_float64(values, name):
    values = torch.as_tensor(values, dtype=torch.float64).flatten()
    if torch.isnan(values).any():
        raise ValueError(f"{name} contains NaN")
    return values


def bits_per_dim(log_prob_nats: torch.Tensor | float, num_dims: int, num_bits: int | None = None) -> torch.Tensor | float:
    """Bits per dimension of a density over dequantised values on the UNIT-BIN scale.

    ``log_prob_nats`` is log p(u) in nats for u in [0, 2**num_bits)^D (integers plus uniform
    noise, bins of width 1), the scale funnelkit's image models take. Then

        bpd = -log p(u) / (D ln 2),

    with no offset: the bins already have unit volume. ``num_dims`` is D = C*H*W (784 for
    MNIST, 3072 for CIFAR-10, 12288 for ImageNet64). ``num_bits`` does not enter the formula on
    this scale; it is accepted (and checked) so both helpers read alike. For a density over
    y = u / 2**b in [0, 1), use :func:`bits_per_dim_unit_interval`, which adds b.

    Returns per-example bits/dim as a float64 tensor of the input's (flattened) length.
    """
    num_dims = check_positive_int(num_dims, "num_dims")
    if num_bits is not None:
        check_positive_int(num_bits, "num_bits")
    return -_as_float64(log_prob_nats, "log_prob_nats") / (num_dims * math.log(2))


def bits_per_dim_unit_interval(log_prob_nats: torch.Tensor | float, num_dims: int, num_bits: int) -> torch.Tensor | float:
    """Bits per dimension of a density over the UNIT-INTERVAL scale y = u / 2**b in [0, 1).

    ``log_prob_nats`` is log q(y) in nats (a shift to [-1/2, 1/2) changes nothing). Since
    log p(u) = log q(y) - D b ln 2,

        bpd = -log q(y) / (D ln 2) + b,

    where the offset b is ``num_bits`` of the data: 5 for 5-bit, 8 for 8-bit. (Adding 8 to a
    5-bit density, as some code does, overstates bpd by 3.) Equals :func:`bits_per_dim` on
    the matching unit-bin log density.
    """
    num_bits = check_positive_int(num_bits, "num_bits")
    return bits_per_dim(log_prob_nats, num_dims) + num_bits


def bits_per_dim_with_error(log_prob_nats, num_dims):
    """Test-set bits/dim and its two-standard-error bar, 2 std / sqrt(N), from unit-bin log p."""
    return mean_and_error(bits_per_dim(log_prob_nats, num_dims))


@torch.no_grad()
def per_example_bits_per_dim(model, x, batch_size=1_000):
    """Per-example bits/dim of ``model`` on images ``x`` of shape (n, C, H, W) on the unit-bin scale.

    For a VAE, ``log_prob`` is its ELBO, so this is an upper bound on its bits/dim.
    """
    num_dims = math.prod(x.shape[1:])
    return bits_per_dim(log_likelihood(model, x, batch_size=batch_size), num_dims)


# --------------------------------------------------------------------------------------------
# Anomaly detection (paper Table 4: trained on MNIST, scored on MNIST and Fashion-MNIST)
# --------------------------------------------------------------------------------------------
#
# The anomaly score of an example is its bits/dim: higher means less likely under the model,
# so more anomalous. Out-of-distribution examples are the positives of the ROC curve.

def bpd_ratio(bpd_in, bpd_out):
    """Table 4's RATIO: mean bits/dim out of distribution over mean bits/dim in distribution.

    mean(bpd on Fashion-MNIST) / mean(bpd on MNIST), for a model trained on MNIST; higher is
    better (e.g. the paper's F-NSF, LS 4: 23.42 / 1.21 = 19.36). The paper calls it a ratio of
    likelihoods, but it is a ratio of the mean bits/dim, i.e. of mean negative log-likelihoods.
    """
    mean_in = _as_float64(bpd_in, "bpd_in").mean().item()
    mean_out = _as_float64(bpd_out, "bpd_out").mean().item()
    if mean_in <= 0:
        raise ValueError(f"mean in-distribution bits/dim must be positive for a ratio, got {mean_in}")
    return mean_out / mean_in


def _two_score_sets(scores_in, scores_out):
    scores_in = _as_float64(scores_in, "scores_in")
    scores_out = _as_float64(scores_out, "scores_out")
    if scores_in.numel() == 0 or scores_out.numel() == 0:
        raise ValueError(
            f"need scores on both sets, got {scores_in.numel()} in- and {scores_out.numel()} out-of-distribution"
        )
    return scores_in, scores_out


def auroc(scores_in: torch.Tensor, scores_out: torch.Tensor) -> float:
    """Exact area under the ROC curve for telling ``scores_out`` (positives) from ``scores_in``.

    Higher scores mean "more anomalous" (bits/dim is such a score). The area is the
    Mann-Whitney statistic

        AUROC = P(s_out > s_in) + 1/2 P(s_out = s_in)

    over all (in, out) pairs, computed exactly from mid-ranks (tied values share the mean of
    their ranks), so ties count 1/2. 1 is perfect separation, 0.5 is chance.
    """
    scores_in, scores_out = _two_score_sets(scores_in, scores_out)
    n_in, n_out = scores_in.numel(), scores_out.numel()
    combined = torch.cat([scores_in, scores_out])
    values, inverse, counts = torch.unique(combined, return_inverse=True, return_counts=True)
    # Mid-rank of each distinct value (1-based): the ranks below it plus the mean of its own.
    below = torch.cumsum(counts, 0) - counts
    mid_rank = below.to(torch.float64) + (counts.to(torch.float64) + 1) / 2
    rank_sum_out = mid_rank[inverse[n_in:]].sum().item()
    u_out = rank_sum_out - n_out * (n_out + 1) / 2
    return u_out / (n_in * n_out)


def roc_curve(scores_in: torch.Tensor, scores_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ROC curve points for telling ``scores_out`` (positives) from ``scores_in``; higher = anomalous.

    Returns ``(fpr, tpr, thresholds)`` as float64 tensors. Point k flags every example with
    score >= thresholds[k]; the curve starts at (0, 0) (threshold +inf) and ends at (1, 1), with
    one point per distinct score, so tied scores give a straight diagonal segment. The
    trapezoidal area under these points equals :func:`auroc`.
    """
    scores_in, scores_out = _two_score_sets(scores_in, scores_out)
    thresholds = torch.unique(torch.cat([scores_in, scores_out])).flip(0)
    # how many scores are >= t, for each descending threshold t
    fp = scores_in.numel() - torch.searchsorted(scores_in.sort().values, thresholds, side="left")
    tp = scores_out.numel() - torch.searchsorted(scores_out.sort().values, thresholds, side="left")
    zero = torch.zeros(1, dtype=torch.float64)
    fpr = torch.cat([zero, fp.to(torch.float64) / scores_in.numel()])
    tpr = torch.cat([zero, tp.to(torch.float64) / scores_out.numel()])
    thresholds = torch.cat([torch.tensor([math.inf], dtype=torch.float64), thresholds])
    return fpr, tpr, thresholds


def anomaly_summary(bpd_in: torch.Tensor, bpd_out: torch.Tensor) -> dict:
    """Table 4 row from per-example bits/dim: means with 2-s.e. bars, their ratio and the AUROC.

    Returns a dict with ``bpd_in``/``bpd_out`` (mean, error) pairs, ``ratio``
    (:func:`bpd_ratio`, out over in) and ``auroc`` (:func:`auroc`, out-of-distribution positive).
    """
    return {
        "bpd_in": mean_and_error(bpd_in),
        "bpd_out": mean_and_error(bpd_out),
        "ratio": bpd_ratio(bpd_in, bpd_out),
        "auroc": auroc(bpd_in, bpd_out),
    }
