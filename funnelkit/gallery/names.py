"""What the gallery calls image models and data sets, and the order it lists runs in.

Shared by :mod:`.runs`, :mod:`.sampling` and :mod:`.compare`; imports nothing of theirs.
"""

IMAGE_BUILDERS = {"image": "images", "anomaly": "anomaly"}  # config builder -> experiment
MODEL_ORDER = ("f-nsf", "nsf", "vae", "f-mlp")
MODEL_NAMES = {"f-nsf": "F-NSF", "nsf": "NSF", "vae": "VAE", "f-mlp": "F-MLP"}
DATASET_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10", "imagenet64": "ImageNet64"}
DATA_SHAPES = {"mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28), "cifar10": (3, 32, 32), "imagenet64": (3, 64, 64)}


def run_order(run):
    """The sort key of a run: your runs first, then data set, bit depth, folder, model, latent size, key."""
    datasets = list(DATASET_NAMES)
    return (run.source != "your runs", datasets.index(run.dataset) if run.dataset in datasets else 99, run.bits,
            run.group, MODEL_ORDER.index(run.model) if run.model in MODEL_ORDER else 99, run.latent_dim, run.key)


__all__ = ["DATASET_NAMES", "DATA_SHAPES", "IMAGE_BUILDERS", "MODEL_NAMES", "MODEL_ORDER", "run_order"]
