"""The kit's digit metric: FID, KID and IS on a small MNIST classifier's 128-wide features.

torch-fidelity computes the three numbers; this module only gives it a feature extractor,
:class:`DigitFeatureExtractor` (a :class:`torch_fidelity.FeatureExtractorBase` registered as
``"funnelkit-digits"``), which runs the kit's :class:`~funnelkit.digits.classifier.DigitClassifier`
on uint8 digits (N, 1, 28, 28) and returns its two layers:

* ``"128"``: the 128-wide feature layer, used for the Frechet distance (FID) and the kernel
  distance (KID, a cubic polynomial kernel, averaged over random subsets);
* ``"logits"``: the 10 class logits, used for the score IS = exp(E_x KL(p(y|x) || p(y))).

It is not Inception: numbers here are on the kit's own scale (real held-out digits against the
reference score about 5, uniform noise thousands; see ``benchmarks/results/digit_metric.md``),
comparable with each other and not with any published FID or IS. For Inception-v3 on images
with the weights at hand see :mod:`funnelkit.fidelity`.
"""

import torch

from ..fidelity import UInt8Images
from ..validation import check_int
from . import classifier as _classifier
from .classifier import CLASSES, FEATURE_DIM, check_digits, load_classifier
from .training import held_out_digits

EXTRACTOR_NAME = "funnelkit-digits"
METRIC_NAME = "the kit's digit metric (a small MNIST classifier's 128-wide features)"
METRICS = ("fid", "kid", "is")
FEATURES, LOGITS = str(FEATURE_DIM), "logits"
KID_SUBSET_MAX = 1000  # torch-fidelity's default subset size, the most this module takes by default
SEED = 2020  # torch-fidelity's default: the KID subsets and the IS shuffle


def _extractor_class():
    from torch_fidelity import FeatureExtractorBase

    class DigitFeatureExtractor(FeatureExtractorBase):
        """torch-fidelity's view of the kit's digit classifier: features ``"128"`` and ``"logits"``.

        Takes uint8 digits (B, 1, 28, 28) in 0..255. ``feature_extractor_weights_path`` (a
        keyword of :func:`torch_fidelity.calculate_metrics`) picks the classifier file; default
        the shipped ``data/digit-classifier.pt``.
        """

        def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
            super().__init__(name, features_list)
            self.classifier = load_classifier(feature_extractor_weights_path)

        @staticmethod
        def get_provided_features_list():
            return FEATURES, LOGITS

        @staticmethod
        def get_default_feature_layer_for_metric(metric):
            return {"isc": LOGITS, "fid": FEATURES, "kid": FEATURES, "prc": FEATURES}[metric]

        @staticmethod
        def can_be_compiled():
            return False

        @staticmethod
        def get_dummy_input_for_compile():
            return torch.zeros(1, 1, 28, 28, dtype=torch.uint8)

        def forward(self, x):
            features = self.classifier.features(x)
            layers = {FEATURES: features, LOGITS: self.classifier.logits(features)}
            return tuple(layers[name] for name in self.features_list)

    return DigitFeatureExtractor


_EXTRACTOR = None


def register():
    """Register the extractor with torch-fidelity as ``"funnelkit-digits"`` (once); return its class."""
    global _EXTRACTOR
    from torch_fidelity import register_feature_extractor
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    if _EXTRACTOR is None:
        _EXTRACTOR = FEATURE_EXTRACTORS_REGISTRY.get(EXTRACTOR_NAME) or _extractor_class()
    if EXTRACTOR_NAME not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(EXTRACTOR_NAME, _EXTRACTOR)
    return _EXTRACTOR


def check_metric_digits(images, name="images", check_range=True):
    """uint8 digits (N >= 2, 1, 28, 28) on the CPU, else a ValueError naming what was expected.

    With ``check_range``, a set whose every value is at most 31, not all on the 5-bit grid
    {0, 8, ..., 248}, is refused: those are b-bit values (x_b), not 8-bit pictures.
    """
    if torch.is_tensor(images) and images.is_floating_point():
        low, high = (float(images.min()), float(images.max())) if images.numel() else (0.0, 0.0)
        raise ValueError(f"{name} must be uint8 digits (N, 1, 28, 28) in 0..255, got {images.dtype} with values in "
                         f"[{low:g}, {high:g}]; convert dequantised b-bit model samples with "
                         "funnelkit.data.to_uint8_images(u, bits), pictures in [0, 1] with "
                         "(x * 255).round().to(torch.uint8)")
    images = check_digits(images, name).detach().cpu()
    if len(images) < 2:
        raise ValueError(f"{name} must hold at least 2 digits, got {len(images)}")
    if check_range and int(images.max()) <= 31 and bool((images % 8 != 0).any()):
        raise ValueError(f"{name} look like b-bit values (every value in 0..{int(images.max())}), not 8-bit "
                         "pictures in 0..255; convert them with funnelkit.data.to_uint8_images(x_b, bits) (or pass "
                         "check_range=False for truly dark 8-bit digits)")
    return images


def _check_metrics(metrics):
    names = tuple(metrics) if isinstance(metrics, (tuple, list)) else None
    if not names or not all(isinstance(m, str) for m in names) or not set(names) <= set(METRICS):
        raise ValueError(f"metrics must be a non-empty tuple of some of {', '.join(map(repr, METRICS))}, "
                         f"got {metrics!r}")
    return tuple(dict.fromkeys(names))


_REFERENCE = None


def default_reference():
    """The 1,000 held-out real digits (uint8), loaded once: the metric's default reference."""
    global _REFERENCE
    if _REFERENCE is None:
        _REFERENCE = held_out_digits()
    return _REFERENCE


def digit_metrics(images_uint8, reference_uint8=None, *, metrics=METRICS, kid_subset_size=None, kid_subsets=100,
                  is_splits=10, classifier_path=None, batch_size=500, device="cpu", seed=SEED, check_range=True):
    """FID, KID and IS of uint8 digits (N, 1, 28, 28) with the kit's digit classifier, via torch-fidelity.

    ``reference_uint8`` (default: the 1,000 held-out real MNIST digits, which neither the
    classifier nor the image models trained on) is what FID and KID compare with. 5-bit model
    samples are converted by the caller with ``funnelkit.data.to_uint8_images(u, 5)``.

    Returns ``{"fid", "kid", "kid_std", "is", "is_std", "n", "n_reference", "kid_subset_size",
    "metric"}``; a metric not asked for in ``metrics`` is None. KID averages ``kid_subsets``
    random subsets of ``kid_subset_size`` digits of each set (default: half the smaller set, at
    most 1,000, so the subsets differ and ``kid_std`` means something); KID is unbiased, so two
    sets of the same digits score about 0 and may score a little below; IS splits the digits into
    ``is_splits`` parts. FID is biased upwards on small sets: compare numbers made with the same
    number of digits.
    """
    metrics = _check_metrics(metrics)
    images = check_metric_digits(images_uint8, "images", check_range)
    binary = "fid" in metrics or "kid" in metrics
    reference = None
    if binary:
        reference = default_reference() if reference_uint8 is None else \
            check_metric_digits(reference_uint8, "reference", check_range)
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if "kid" in metrics:
        smaller = min(len(images), len(reference))
        if kid_subset_size is None:
            kid_subset_size = max(2, min(KID_SUBSET_MAX, smaller // 2))
        kid_subset_size = check_int(kid_subset_size, "kid_subset_size", low=2)
        if kid_subset_size > smaller:
            raise ValueError(f"KID's subset size {kid_subset_size} needs at least that many digits in each set, got "
                             f"{len(images)} images and {len(reference)} reference digits; pass more digits or "
                             f"kid_subset_size=<= {smaller}")
    if "is" in metrics and not (isinstance(is_splits, int) and 1 <= is_splits <= len(images)):
        raise ValueError(f"IS needs is_splits between 1 and the number of images ({len(images)}), got {is_splits!r}")
    path = _classifier.CLASSIFIER_PATH if classifier_path is None else classifier_path
    load_classifier(path)  # a missing or broken file: our one-line error, before torch-fidelity starts

    import torch_fidelity  # heavy (about a second): loaded only when a metric is computed

    register()
    scores = torch_fidelity.calculate_metrics(
        input1=UInt8Images(images), input2=UInt8Images(reference) if binary else None,
        fid="fid" in metrics, kid="kid" in metrics, isc="is" in metrics,
        feature_extractor=EXTRACTOR_NAME, feature_extractor_weights_path=str(path),
        kid_subset_size=kid_subset_size or 2, kid_subsets=kid_subsets, isc_splits=is_splits,
        batch_size=batch_size, cuda=device == "cuda", rng_seed=seed,
        cache=False, save_cpu_ram=True, datasets_download=False, verbose=False,
    )
    return {
        "fid": scores.get("frechet_inception_distance"),
        "kid": scores.get("kernel_inception_distance_mean"),
        "kid_std": scores.get("kernel_inception_distance_std"),
        "is": scores.get("inception_score_mean"),
        "is_std": scores.get("inception_score_std"),
        "n": len(images),
        "n_reference": len(reference) if binary else None,
        "kid_subset_size": kid_subset_size if "kid" in metrics else None,
        "metric": METRIC_NAME,
    }


NOT_APPLICABLE = "not computed: the kit's digit metric is for MNIST digits"


def digit_metric_applies(dataset, images):
    """Whether the digit metric fits a result's data: MNIST (``dataset`` "mnist") digits (N, 1, 28, 28)."""
    return dataset == "mnist" and tuple(images.shape[1:]) == (1, 28, 28)


def digit_scores(samples, reference=None):
    """The numbers of :func:`digit_metrics` for a result's table (IS split in at most 10 parts;
    no range check: a model's samples may be truly dark)."""
    scores = digit_metrics(samples, reference, is_splits=min(10, len(samples)), check_range=False)
    return {k: scores[k] for k in ("fid", "kid", "kid_std", "is", "is_std", "n", "n_reference", "kid_subset_size")}


__all__ = ["CLASSES", "EXTRACTOR_NAME", "METRIC_NAME", "NOT_APPLICABLE", "check_metric_digits", "default_reference",
           "digit_metric_applies", "digit_metrics", "digit_scores", "register"]
