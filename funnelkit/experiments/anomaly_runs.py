"""The anomaly-detection models of Table 4 (paper Sec. 4 "Anomaly Detection", A.9): which models
(:data:`MODELS`, keyed by :func:`row_key`), their settings and presets, their data (MNIST at 8 bits
in distribution, the Fashion-MNIST test set out of it) and their scores; shared by Table 4
(:mod:`.table4`, which trains and judges them) and Table 8 (:mod:`.table8`, which counts their
parameters), which import them from here and never from each other.

The presets (``"paper"``, ``"quick"``, ``"classroom"``) and the fixes of the authors' protocol are
described in :mod:`funnelkit.experiments.table4`. Scores are per-example bits/dim (-log p(u) /
(784 ln 2), u dequantised with a fixed noise; for a VAE its single-sample ELBO, an upper bound on its
bits/dim); the ratio is mean bpd(F-MNIST) / mean bpd(MNIST) (:func:`funnelkit.metrics.bpd_ratio`),
its two-standard-error bar propagated from the two means (independent sets, first order).
"""

import math
from dataclasses import dataclass, field

from ..data.images import image_dataset
from ..metrics import anomaly_summary
from .results import data_record
from .runs import held_out_split, per_example_bpd

BITS = 8
SPLIT_SEED = 20_211_209
CLASSROOM_STEPS = 3_000  # see the classroom preset in funnelkit.experiments.table4's docstring
CLASSROOM_VAE_STEPS = 20_000
MODELS = (("vae", 4), ("vae", 16), ("f-nsf", 4), ("f-nsf", 16), ("f-mlp", 4), ("f-mlp", 16), ("nsf", None))


@dataclass(frozen=True)
class Table4Settings:
    """What one Table 4 run trains and scores; the defaults are the paper preset."""

    models: tuple = MODELS  # (name, latent size; None for NSF)
    model_preset: str = "paper"
    quick_subset: bool = False  # quick: the offline first 10k MNIST training images, split
    held_out: int = 1000  # quick: images of that subset held out as the in-distribution test
    split_seed: int = SPLIT_SEED  # quick: the seed of that cut (classroom: Table 2's, the digit metric's reference)
    steps: int = 200_000  # steps, batch and rate: the authors' AD_config.json (the paper gives none)
    vae_steps: int = None  # the VAEs' steps (None: ``steps``); their steps cost a fraction of a flow's
    batch_size: int = 512
    lr: float = 5e-4
    in_max: int = None  # score at most this many in-distribution test images (None: all)
    out_max: int = None  # and out-of-distribution ones
    validation_max: int = 1000
    eval_batch_size: int = 500
    download: bool = False
    model_overrides: dict = field(default_factory=dict)


PRESETS = {
    "paper": Table4Settings(),
    "quick": Table4Settings(model_preset="quick", quick_subset=True, steps=600, vae_steps=6000, batch_size=64,
                            lr=1e-3),
    # the classroom models (sized for a 2-core laptop CPU, funnelkit.models.anomaly) on Table 2's cut of the
    # offline 10k (seed 656_693_568: the held-out 1,000 are the kit's digit-metric reference, never trained on)
    "classroom": Table4Settings(model_preset="classroom", quick_subset=True, split_seed=656_693_568,
                                steps=CLASSROOM_STEPS, vae_steps=CLASSROOM_VAE_STEPS, batch_size=64, lr=2e-3),
}


def row_key(name, latent):
    """The key of one model's row: "f-nsf-4" (name and latent size), "nsf" (latent None)."""
    return name if latent is None else f"{name}-{latent}"


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

def load_data(settings, root=None):
    """``(train, validation, test_in, test_out, records, tag)`` as uint8 images; raises if a file is missing."""
    if settings.quick_subset:
        mnist = image_dataset("mnist", "train", root=root, download=settings.download, prefer_offline=True)
        train_index, test_index = held_out_split(len(mnist), settings.held_out, settings.split_seed)
        train, test_in = mnist.images[train_index], mnist.images[test_index]
        name = "MNIST first 10k of train (offline subset)" if mnist.is_stand_in else "MNIST train"
        in_records = [data_record(name, f"{mnist.source}; {len(train):,} for training and {len(test_in):,} held out "
                                  f"(seed {settings.split_seed}) as the in-distribution test", mnist.is_stand_in,
                                  role="training and in-distribution test")]
        tag = f"mnist-{'first10k' if mnist.is_stand_in else 'full'}-h{settings.held_out}"
        if settings.split_seed != SPLIT_SEED:
            tag += f"-cut{settings.split_seed}"
    else:
        mnist = image_dataset("mnist", "train", root=root, download=settings.download, allow_offline=False)
        mnist_test = image_dataset("mnist", "test", root=root, download=settings.download, allow_offline=False)
        train, test_in = mnist.images, mnist_test.images
        in_records = [data_record("MNIST train", mnist.source, mnist.is_stand_in, role="training"),
                      data_record("MNIST test", mnist_test.source, mnist_test.is_stand_in,
                                  role="in-distribution test")]
        tag = "mnist"
    fashion = image_dataset("fashion-mnist", "test", root=root, download=settings.download)
    test_out = fashion.images
    if settings.in_max is not None:
        test_in = test_in[: settings.in_max]
    if settings.out_max is not None:
        test_out = test_out[: settings.out_max]
    records = in_records + [data_record("Fashion-MNIST test", f"{fashion.source}; {len(test_out):,} images scored",
                                        fashion.is_stand_in, role="out of distribution")]
    validation = train[: settings.validation_max]
    return train, validation, test_in, test_out, records, tag



def score(model, test_in, test_out, settings, progress):
    bpd_in = per_example_bpd(model, test_in, BITS, settings.eval_batch_size, progress=progress, desc="MNIST bits/dim")
    bpd_out = per_example_bpd(model, test_out, BITS, settings.eval_batch_size, progress=progress,
                              desc="F-MNIST bits/dim")
    summary = anomaly_summary(bpd_in, bpd_out)
    (mean_in, error_in), (mean_out, error_out) = summary["bpd_in"], summary["bpd_out"]
    ratio = summary["ratio"]
    ratio_error = abs(ratio) * math.hypot(error_in / mean_in, error_out / mean_out)
    numbers = {"mnist": mean_in, "mnist_2se": error_in, "f_mnist": mean_out, "f_mnist_2se": error_out,
               "ratio": ratio, "ratio_2se": ratio_error, "auroc": summary["auroc"],
               "n_in": len(bpd_in), "n_out": len(bpd_out)}
    return numbers, {"bpd_in": bpd_in, "bpd_out": bpd_out}


__all__ = ["BITS", "CLASSROOM_STEPS", "CLASSROOM_VAE_STEPS", "MODELS", "PRESETS", "SPLIT_SEED", "Table4Settings",
           "load_data", "row_key", "score"]
