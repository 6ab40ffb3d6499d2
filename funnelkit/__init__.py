"""funnelkit: a teaching and exploration kit for funnels (Klein et al., "Funnels: Exact maximum
likelihood with dimensionality reduction").

    import funnelkit as fk
    x = fk.data.four_circles(1000, seed=0)
    model = fk.models.plane_model("f-nsf", preset="quick")
    model.log_prob(x)

The subpackages (``fk.data``, ``fk.models``, ``fk.layers``, ...) and the names below are imported
on first use (PEP 562 module ``__getattr__``), so ``import funnelkit`` is quick and a program pays
only for what it touches: the dashboard's first page needs neither the experiments nor matplotlib's
figures nor torch-fidelity.
"""

from ._on_use import on_use

__version__ = "0.1.0"

#: Public names and the submodule that defines each.
_NAMES = {
    "CheckpointError": ("checkpoints", "CheckpointError"),
    "load": ("checkpoints", "load"),
    "save_checkpoint": ("checkpoints", "save_checkpoint"),
    "pick_device": ("device", "pick_device"),
    "seed_everything": ("device", "seed_everything"),
    "TrainConfig": ("train", "TrainConfig"),
    "Trainer": ("train", "Trainer"),
    "trained": ("experiments.shipped", "trained"),
    "TrainingDiverged": ("train", "TrainingDiverged"),
}
_SUBPACKAGES = ("data", "experiments", "fidelity", "grid", "layers", "metrics", "models", "viz")

__all__ = sorted([*_NAMES, *_SUBPACKAGES])


__getattr__, __dir__ = on_use(__name__, _NAMES, globals(), _SUBPACKAGES)
