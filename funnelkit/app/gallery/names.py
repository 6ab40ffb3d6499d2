"""What the gallery calls image models and data sets, and the order it lists runs in.

Shared by :mod:`.runs`, :mod:`.sampling` and :mod:`.compare`; imports nothing of theirs. The data
sets' names and shapes are the kit's own tables (:data:`funnelkit.data.images.DATASET_NAMES`,
:data:`funnelkit.models.image.IMAGE_SHAPES`), not copies.
"""

from ...data.images import DATASET_NAMES
from ...models.image import IMAGE_SHAPES

IMAGE_BUILDERS = {"image": "images", "anomaly": "anomaly"}  # config builder -> experiment
MODEL_ORDER = ("f-nsf", "nsf", "vae", "f-mlp")
MODEL_NAMES = {"f-nsf": "F-NSF", "nsf": "NSF", "vae": "VAE", "f-mlp": "F-MLP"}
DATA_SHAPES = {name: IMAGE_SHAPES[name] for name in DATASET_NAMES}  # (C, H, W), listed in DATASET_NAMES' order


def run_order(run):
    """The sort key of a run: your runs first, then data set, bit depth, folder, model, latent size, key."""
    datasets = list(DATASET_NAMES)
    return (run.source != "your runs", datasets.index(run.dataset) if run.dataset in datasets else 99, run.bits,
            run.group, MODEL_ORDER.index(run.model) if run.model in MODEL_ORDER else 99, run.latent_dim, run.key)


__all__ = ["DATASET_NAMES", "DATA_SHAPES", "IMAGE_BUILDERS", "MODEL_NAMES", "MODEL_ORDER", "run_order"]
