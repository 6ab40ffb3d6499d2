"""The kit's digit metric: FID, KID and IS on a small MNIST classifier's 128-wide features.

    import funnelkit as fk
    from funnelkit.digits import digit_metrics
    u = model.sample(1000, temperature=0.75)                 # a 5-bit MNIST model's samples
    digit_metrics(fk.data.to_uint8_images(u, 5))             # {"fid": ..., "kid": ..., "is": ..., "n": 1000, ...}

* :mod:`~funnelkit.digits.classifier`: the classifier (three convolutions, a 128-wide feature
  layer, 10 logits) and its shipped weights ``data/digit-classifier.pt``;
* :mod:`~funnelkit.digits.training`: how those weights are made (``funnelkit digits train``) on
  the 9,000 training digits of the image results, the 1,000 held out kept apart;
* :mod:`~funnelkit.digits.metric`: the torch-fidelity feature extractor ``"funnelkit-digits"`` and
  :func:`digit_metrics`.

Named "the kit's digit metric", never Inception: its numbers are on its own scale.
torch-fidelity is imported only when a metric is computed.
"""

from .classifier import (CLASSIFIER_PATH, TRAIN_COMMAND, ClassifierFileError, ClassifierMissing, DigitClassifier,
                         load_classifier)
from .training import ClassifierSettings, held_out_digits, mnist_digits_split, train_classifier

_FROM_METRIC = ("EXTRACTOR_NAME", "METRIC_NAME", "NOT_APPLICABLE", "default_reference", "digit_metric_applies",
                "digit_metrics", "digit_scores", "register")


def __getattr__(name):  # the metric's names load torch-fidelity: only on first use
    if name in _FROM_METRIC:
        from . import metric

        return getattr(metric, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CLASSIFIER_PATH", "ClassifierFileError", "ClassifierMissing", "ClassifierSettings", "DigitClassifier",
           "TRAIN_COMMAND", "held_out_digits", "load_classifier", "mnist_digits_split", "train_classifier",
           *_FROM_METRIC]
