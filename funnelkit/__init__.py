"""funnelkit: a teaching and exploration kit for funnels (Klein et al., "Funnels: Exact maximum
likelihood with dimensionality reduction").

    import funnelkit as fk
    x = fk.data.four_circles(1000, seed=0)
    model = fk.models.plane_model("f-nsf", preset="quick")
    model.log_prob(x)
"""

__version__ = "0.1.0"

from . import data, experiments, fidelity, grid, layers, metrics, models, viz  # noqa: E402
from .checkpoints import CheckpointError, load, save_checkpoint  # noqa: E402
from .device import pick_device, seed_everything  # noqa: E402
from .train import TrainConfig, Trainer, TrainingDiverged  # noqa: E402

__all__ = [
    "CheckpointError",
    "TrainConfig",
    "Trainer",
    "TrainingDiverged",
    "data",
    "experiments",
    "fidelity",
    "grid",
    "layers",
    "load",
    "metrics",
    "models",
    "pick_device",
    "save_checkpoint",
    "seed_everything",
    "viz",
]
