"""Bits/dim conventions (reference A.9) and the anomaly scores of Table 4."""

import itertools
import math

import pytest
import torch

from funnelkit import metrics


# --- bits per dimension -----------------------------------------------------------------

@pytest.mark.parametrize("bits", [1, 5, 8])
def test_uniform_density_has_b_bits_per_dim_on_both_scales(bits):
    d = 12
    # uniform on [0, 2**b)^D has density 2**(-b D) on the unit-bin scale ...
    log_p_u = torch.full((3,), -d * bits * math.log(2), dtype=torch.float64)
    assert torch.allclose(metrics.bits_per_dim(log_p_u, d, bits), torch.full((3,), float(bits), dtype=torch.float64))
    # ... and density 1 on y = u / 2**b in [0, 1)^D; the offset is b, not 8
    log_q_y = torch.zeros(3, dtype=torch.float64)
    assert torch.allclose(metrics.bits_per_dim_unit_interval(log_q_y, d, bits), torch.full((3,), float(bits), dtype=torch.float64))


@pytest.mark.parametrize("bits", [5, 8])
def test_unit_bin_and_unit_interval_forms_agree(bits):
    """The same Gaussian model written on both scales gives the same bits/dim (and Glow's form)."""
    d, n = 6, 50
    generator = torch.Generator().manual_seed(3)
    y = torch.rand(n, d, generator=generator, dtype=torch.float64)
    u = y * 2**bits
    loc, scale = 0.4, 0.2
    log_q_y = torch.distributions.Normal(loc, scale).log_prob(y).sum(1)
    # an independent computation of the same density on the unit-bin scale
    log_p_u = torch.distributions.Normal(loc * 2**bits, scale * 2**bits).log_prob(u).sum(1)
    bpd_u = metrics.bits_per_dim(log_p_u, d)
    bpd_y = metrics.bits_per_dim_unit_interval(log_q_y, d, bits)
    assert torch.allclose(bpd_u, bpd_y, atol=1e-10)
    # Glow: objective = log q(y) - D log(n_bins), bits = -objective / (D ln 2)
    glow = -(log_q_y - d * math.log(2**bits)) / (d * math.log(2))
    assert torch.allclose(glow, bpd_u, atol=1e-10)
    # the common bug: +8 on 5-bit data is off by exactly 8 - b
    buggy = -log_q_y / (d * math.log(2)) + 8
    assert torch.allclose(buggy - bpd_y, torch.full((n,), 8.0 - bits, dtype=torch.float64))


def test_bits_per_dim_with_error_uses_two_standard_errors():
    d = 4
    log_p = torch.tensor([-10.0, -12.0, -9.0, -15.0], dtype=torch.float64)
    bpd = -log_p / (d * math.log(2))
    mean, err = metrics.bits_per_dim_with_error(log_p, d)
    assert mean == pytest.approx(bpd.mean().item())
    assert err == pytest.approx(2 * bpd.std().item() / 2)  # 2 std / sqrt(4)


def test_bits_per_dim_rejects_bad_input():
    with pytest.raises(ValueError, match="num_dims"):
        metrics.bits_per_dim([1.0], 0)
    with pytest.raises(ValueError, match="NaN"):
        metrics.bits_per_dim([float("nan")], 3)
    with pytest.raises(ValueError, match="num_bits"):
        metrics.bits_per_dim_unit_interval([1.0], 3, 0)


class _FixedModel:
    """Stands in for an image model: log p(x) = -sum(x)."""
    device = torch.device("cpu")
    dtype = torch.float64

    def log_prob(self, x):
        return -x.flatten(1).sum(1)


def test_per_example_bits_per_dim_uses_all_pixels():
    x = torch.rand(7, 1, 2, 3, dtype=torch.float64)
    bpd = metrics.per_example_bits_per_dim(_FixedModel(), x, batch_size=3)
    assert torch.allclose(bpd, x.flatten(1).sum(1) / (6 * math.log(2)))


# --- anomaly scores ---------------------------------------------------------------------

# Table 4 of the paper: (MNIST bpd, F-MNIST bpd, RATIO), which fixes the ratio as out / in
TABLE_4 = [(7.30, 10.40, 1.42), (6.95, 12.66, 1.82), (1.21, 23.42, 19.36), (1.28, 11.32, 8.84),
           (2.86, 30.98, 10.83), (2.84, 28.59, 10.07), (1.10, 4.80, 4.36)]


@pytest.mark.parametrize("mnist, fmnist, ratio", TABLE_4)
def test_bpd_ratio_is_out_over_in_as_in_table_4(mnist, fmnist, ratio):
    assert metrics.bpd_ratio([mnist, mnist], [fmnist]) == pytest.approx(ratio, abs=0.006)


def _brute_force_auroc(scores_in, scores_out):
    wins = sum(1.0 if o > i else 0.5 if o == i else 0.0 for i, o in itertools.product(scores_in, scores_out))
    return wins / (len(scores_in) * len(scores_out))


def test_auroc_known_cases():
    assert metrics.auroc([1.0, 2.0, 3.0], [4.0, 5.0]) == 1.0
    assert metrics.auroc([4.0, 5.0], [1.0, 2.0, 3.0]) == 0.0
    assert metrics.auroc([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 0.5
    assert metrics.auroc([2.0, 2.0, 2.0], [2.0, 2.0]) == 0.5
    # by hand: out 2 beats in 1, ties in 2 (1/2), loses to 3; out 4 beats all three -> 4.5 / 6
    assert metrics.auroc([1.0, 2.0, 3.0], [2.0, 4.0]) == pytest.approx(0.75)


def test_auroc_matches_pair_counting_with_many_ties():
    generator = torch.Generator().manual_seed(0)
    scores_in = torch.randint(0, 6, (40,), generator=generator).double()
    scores_out = torch.randint(2, 9, (31,), generator=generator).double()
    expected = _brute_force_auroc(scores_in.tolist(), scores_out.tolist())
    assert metrics.auroc(scores_in, scores_out) == pytest.approx(expected, abs=1e-12)
    # only the order matters
    assert metrics.auroc(torch.exp(scores_in), torch.exp(scores_out)) == pytest.approx(expected, abs=1e-12)


def test_roc_curve_runs_from_0_to_1_and_its_area_is_the_auroc():
    generator = torch.Generator().manual_seed(1)
    scores_in = torch.randint(0, 10, (25,), generator=generator).double()
    scores_out = torch.randn(30, generator=generator, dtype=torch.float64) * 3 + 6
    fpr, tpr, thresholds = metrics.roc_curve(scores_in, scores_out)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert thresholds[0] == math.inf and (thresholds[1:].diff() < 0).all()
    assert (fpr.diff() >= 0).all() and (tpr.diff() >= 0).all()
    area = torch.trapezoid(tpr, fpr).item()
    assert area == pytest.approx(metrics.auroc(scores_in, scores_out), abs=1e-12)
    assert area == pytest.approx(_brute_force_auroc(scores_in.tolist(), scores_out.tolist()), abs=1e-12)


def test_anomaly_summary_and_errors():
    summary = metrics.anomaly_summary([1.0, 1.2, 1.4], [20.0, 25.0])
    assert summary["ratio"] == pytest.approx(22.5 / 1.2)
    assert summary["auroc"] == 1.0
    assert summary["bpd_in"][0] == pytest.approx(1.2)
    with pytest.raises(ValueError, match="both sets"):
        metrics.auroc([], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        metrics.auroc([1.0, float("nan")], [1.0])
