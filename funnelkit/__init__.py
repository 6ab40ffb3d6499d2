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

import importlib

__version__ = "0.1.0"

#: Public names and the submodule that defines each.
_NAMES = {
    "CheckpointError": "checkpoints",
    "load": "checkpoints",
    "save_checkpoint": "checkpoints",
    "pick_device": "device",
    "seed_everything": "device",
    "TrainConfig": "train",
    "Trainer": "train",
    "trained": "experiments.shipped",
    "TrainingDiverged": "train",
}
_SUBPACKAGES = ("data", "experiments", "fidelity", "grid", "layers", "metrics", "models", "viz")

__all__ = sorted([*_NAMES, *_SUBPACKAGES])


def __getattr__(name):
    """``fk.<name>``: a public name from its submodule, or any submodule of funnelkit, imported now."""
    if name in _NAMES:
        value = getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    elif not name.startswith("__"):
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise  # the submodule exists but one of its own imports is missing
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_NAMES, *_SUBPACKAGES])
