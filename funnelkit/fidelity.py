"""Sample quality for images: Frechet Inception Distance (FID) and Inception Score (IS), Table 3.

Two layers:

* the formulas, on features you already have: :func:`feature_statistics`,
  :func:`frechet_distance`, :func:`frechet_distance_of_features` and :func:`inception_score`.
  They need only numpy/torch and are tested on cases with known answers.
* the user path, :func:`fid_and_inception_score`, which runs uint8 images through
  torch-fidelity's Inception-v3 (the TF ``inception-2015-12-05`` graph converted to PyTorch:
  2048-d pool features for FID, 1008 logits for IS).

funnelkit never downloads the Inception weights. Pass the local file as
``feature_extractor_weights_path``; see :data:`INCEPTION_WEIGHTS_FILE` and
:data:`INCEPTION_WEIGHTS_URL`.

Numbers are implementation-specific: the paper's FID used the TF TTUR code on JPEG dumps and its
IS used torchvision weights (reference A.10), so values from here are comparable with each other,
not digit for digit with Table 3.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + INCEPTION_WEIGHTS_FILE
)


class InceptionWeightsMissing(FileNotFoundError):
    """The Inception-v3 weights file for FID/IS was not given or is not there."""


# --------------------------------------------------------------------------------------------
# Formulas
# --------------------------------------------------------------------------------------------

def feature_statistics(features):
    """Mean and covariance (unbiased, N - 1) of features of shape (N, d), as float64 numpy."""
    features = np.asarray(torch.as_tensor(features).detach().cpu(), dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"features must have shape (N >= 2, d), got {features.shape}")
    if not np.isfinite(features).all():
        raise ValueError("features contain NaN or infinity")
    return features.mean(axis=0), np.atleast_2d(np.cov(features, rowvar=False))


def _psd_sqrt(matrix):
    """Symmetric square root of a symmetric positive semi-definite matrix (round-off negatives -> 0)."""
    matrix = (matrix + matrix.T) / 2
    eigenvalues, eigenvectors = np.linalg.eigh(matrix)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2):

        ||mu1 - mu2||^2 + Tr(sigma1) + Tr(sigma2) - 2 Tr((sigma1^(1/2) sigma2 sigma1^(1/2))^(1/2)).

    The trace term equals Tr((sigma1 sigma2)^(1/2)); this form only takes square roots of
    symmetric PSD matrices, so it stays real for the rank-deficient covariances of small sets.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(
            f"expected means of shape ({d},) and covariances ({d}, {d}), got {mu1.shape}, "
            f"{sigma1.shape}, {mu2.shape}, {sigma2.shape}"
        )
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)


def frechet_distance_of_features(features1, features2):
    """:func:`frechet_distance` between Gaussians fitted to two feature sets of shape (N, d)."""
    return frechet_distance(*feature_statistics(features1), *feature_statistics(features2))


def inception_score(probs=None, *, logits=None, splits=10):
    """Inception Score exp(E_x KL(p(y|x) || p(y))) from class probabilities or logits of shape (N, K).

    Give exactly one of ``probs`` (rows sum to 1) or ``logits`` (softmaxed here). The N rows are
    cut into ``splits`` contiguous chunks (no shuffling); p(y) is the mean of a chunk's rows and
    the score is computed per chunk. Returns ``(mean, std)`` over the chunks (std with 1/splits,
    as the usual implementations do). It lies in [1, K]: 1 when every row is the same, K when
    rows are one-hot and the classes are used equally.
    """
    if (probs is None) == (logits is None):
        raise ValueError("give exactly one of probs or logits")
    if logits is not None:
        probs = torch.as_tensor(logits, dtype=torch.float64).softmax(dim=1)
    probs = torch.as_tensor(probs, dtype=torch.float64)
    if probs.dim() != 2:
        raise ValueError(f"expected shape (N, K), got {tuple(probs.shape)}")
    if torch.isnan(probs).any() or (probs < 0).any() or not torch.allclose(
        probs.sum(1), torch.ones(len(probs), dtype=torch.float64), atol=1e-6
    ):
        raise ValueError("probs must be non-negative, free of NaN, with rows summing to 1")
    n = probs.shape[0]
    if not 1 <= splits <= n:
        raise ValueError(f"splits must be between 1 and N = {n}, got {splits}")
    scores = []
    for i in range(splits):
        chunk = probs[i * n // splits:(i + 1) * n // splits]
        marginal = chunk.mean(0, keepdim=True)
        # KL(p(y|x) || p(y)) with 0 log 0 = 0
        kl = (torch.special.xlogy(chunk, chunk) - torch.special.xlogy(chunk, marginal)).sum(1)
        scores.append(math.exp(kl.mean().item()))
    return float(np.mean(scores)), float(np.std(scores))


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------

def dequantised_to_uint8(u, num_bits):
    """b-bit dequantised values u in [0, 2**b) to uint8 pixels: floor(u) * 256 / 2**b (NSF's decoding).

    5-bit pixels land on {0, 8, ..., 248}; 8-bit values are just floored. Clamped to [0, 255].
    """
    if isinstance(num_bits, bool) or num_bits not in range(1, 9):
        raise ValueError(f"num_bits must be an integer in 1..8, got {num_bits!r}")
    u = torch.as_tensor(u)
    return (torch.floor(u.to(torch.float64)) * (256 // 2**num_bits)).clamp(0, 255).to(torch.uint8)


def check_images(images, name="images"):
    """Check a uint8 tensor of shape (N, 3, H, W) with N >= 2 and return it on the CPU."""
    if not torch.is_tensor(images) or images.dtype != torch.uint8:
        raise ValueError(
            f"{name} must be a uint8 tensor of shape (N, 3, H, W), got "
            f"{getattr(images, 'dtype', type(images).__name__)}; convert dequantised b-bit values "
            "with funnelkit.fidelity.dequantised_to_uint8(u, num_bits)"
        )
    if images.dim() != 4 or images.shape[1] != 3 or images.shape[0] < 2:
        raise ValueError(f"{name} must have shape (N >= 2, 3, H, W), got {tuple(images.shape)}")
    return images.detach().cpu()


class UInt8Images(torch.utils.data.Dataset):
    """uint8 images as the Dataset input torch-fidelity reads, one (C, H, W) tensor per item."""

    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index]


def check_weights_path(feature_extractor_weights_path):
    """Return the weights file as a Path, or raise :class:`InceptionWeightsMissing` saying what to get."""
    how = (
        f"FID and IS need torch-fidelity's Inception-v3 weights, the file {INCEPTION_WEIGHTS_FILE} "
        "(about 91 MB, converted from TensorFlow's inception-2015-12-05, Apache-2.0). funnelkit never "
        f"downloads it: fetch it once from {INCEPTION_WEIGHTS_URL} and pass its path as "
        "feature_extractor_weights_path=..."
    )
    if feature_extractor_weights_path is None:
        raise InceptionWeightsMissing(f"no feature_extractor_weights_path was given. {how}")
    path = Path(feature_extractor_weights_path).expanduser()
    if not path.is_file():
        raise InceptionWeightsMissing(f"no weights file at {path}. {how}")
    return path


def fid_and_inception_score(
    generated: torch.Tensor,
    reference: torch.Tensor | None = None,
    *,
    feature_extractor_weights_path: str | Path,
    isc_splits: int = 10,
    batch_size: int = 64,
    device: str | torch.device | None = None,
) -> dict:
    """FID between ``generated`` and ``reference`` images and the IS of ``generated``, via torch-fidelity.

    ``generated`` and ``reference`` are uint8 tensors of shape (N, 3, H, W) (torch-fidelity
    resizes to 299x299 itself). Without ``reference`` only the IS is computed.
    ``feature_extractor_weights_path`` is the local file :data:`INCEPTION_WEIGHTS_FILE`; nothing
    is downloaded and nothing is cached on disk. ``device``: "cuda" or "cpu" (default: cuda if
    available).

    Returns a dict with ``inception_score`` and ``inception_score_std`` and, with a reference,
    ``fid``. The paper used 10,000 samples and the CIFAR-10 test set; FID on a few hundred
    images is strongly biased upwards.
    """
    path = check_weights_path(feature_extractor_weights_path)
    generated = check_images(generated, "generated")
    if reference is not None:
        reference = check_images(reference, "reference")
    try:
        import torch_fidelity  # heavy (about a second): loaded only when FID or IS is computed
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("FID and IS need torch-fidelity: pip install 'torch-fidelity==0.4.0'") from error
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cuda", "cpu"):
        raise ValueError(f"device must be 'cuda' or 'cpu', got {device!r}")
    result = torch_fidelity.calculate_metrics(
        input1=UInt8Images(generated),
        input2=None if reference is None else UInt8Images(reference),
        isc=True,
        fid=reference is not None,
        isc_splits=isc_splits,
        feature_extractor="inception-v3-compat",
        feature_extractor_weights_path=str(path),
        batch_size=batch_size,
        cuda=device == "cuda",
        cache=False,
        save_cpu_ram=True,  # no DataLoader worker processes
        datasets_download=False,
        verbose=False,
    )
    out = {
        "inception_score": result["inception_score_mean"],
        "inception_score_std": result["inception_score_std"],
    }
    if reference is not None:
        out["fid"] = result["frechet_inception_distance"]
    return out
