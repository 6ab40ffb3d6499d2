"""The kit's digit metric under a sample grid: the FID of a model's samples against held-out real
digits (:func:`funnelkit.digits.digit_metrics`), with what real digits score on the same scale.

FID is biased upwards on small sets, so every number here is made with the same number of
samples, :data:`METRIC_SAMPLES`, and the real-digit figure beside it too: ``n`` real training
digits (never the held-out reference), reduced to the model's bit depth like its samples.
"""

import functools
from dataclasses import dataclass

import torch

from ...validation import check_positive_int
from .names import DATA_SHAPES
from .sampling import check_sample_request, model_bits, sample_images

METRIC_SAMPLES = 500  # about 1 s on a CPU for a quick model; real digits score about 9 at this size
DIGIT_DATASETS = ("mnist",)  # the digit classifier knows MNIST digits; Fashion-MNIST is not digits
_REAL_SEED = 0  # which real training digits make the real-digit figure


@dataclass(frozen=True)
class DigitQuality:
    """The digit FID of ``n`` samples and of ``n`` real training digits (the same bit depth)."""

    fid: float
    n: int
    real_fid: float
    bits: int

    @property
    def line(self):
        """One line for under a grid: the number, and what it is."""
        return (f"digit FID {self.fid:,.0f} (the kit's MNIST classifier, {self.n:,} samples; "
                f"real digits score about {self.real_fid:,.0f}; lower is better)")


def measures_digits(run):
    """True when the kit's digit metric applies to ``run`` (an MNIST model: 1 x 28 x 28 digits)."""
    return run.dataset in DIGIT_DATASETS and DATA_SHAPES.get(run.dataset) == (1, 28, 28)


def not_measured_line(run):
    """Why a run has no digit metric line."""
    return f"No digit FID: the kit's digit metric is for MNIST digits, and this model draws {run.dataset}."


@functools.lru_cache(maxsize=8)
def real_digit_fid(n=METRIC_SAMPLES, bits=8):
    """The digit FID of ``n`` real training digits (a fixed seeded choice among the 9,000 the image
    models train on), reduced to ``bits`` as a model's samples are, against the held-out reference."""
    from ...digits import digit_metrics, mnist_digits_split

    n = check_positive_int(n, "the number of digits")
    train = mnist_digits_split()[0]
    if n > len(train):
        raise ValueError(f"the real-digit figure takes at most {len(train):,} digits, got {n:,}")
    chosen = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(_REAL_SEED))[:n]]
    step = 256 // 2 ** check_positive_int(bits, "bits")
    return float(digit_metrics((chosen // step) * step, metrics=("fid",), check_range=False)["fid"])


def digit_quality(model, temperature=1.0, temper="base", seed=0, n=METRIC_SAMPLES):
    """The digit FID of ``n`` seeded samples of an MNIST model (the grid's draw: same seed, temperature
    and temper), with the real-digit figure at the same ``n`` and bit depth, as :class:`DigitQuality`."""
    from ...digits import digit_metrics

    n, temperature, seed = check_sample_request(n, temperature, seed, high=None)
    if n < 2:
        raise ValueError(f"the digit FID needs at least 2 samples, got {n}")
    shape = tuple(getattr(model, "data_shape", ()))
    if shape != (1, 28, 28):
        raise ValueError(f"the digit metric measures MNIST digits (1, 28, 28), got a model of shape {shape}")
    images = sample_images(model, n, temperature, seed, temper)
    bits = model_bits(model)
    fid = float(digit_metrics(images, metrics=("fid",), check_range=False)["fid"])  # 8-bit pictures
    return DigitQuality(fid, n, real_digit_fid(n, bits), bits)


__all__ = ["DIGIT_DATASETS", "DigitQuality", "METRIC_SAMPLES", "digit_quality", "measures_digits",
           "not_measured_line", "real_digit_fid"]
