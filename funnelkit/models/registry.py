"""Rebuild a model from the plain config dict that checkpoints store (no pickled classes).

A config is ``{"builder": ..., <the builder's arguments>, "overrides": {...}}`` (other keys
only describe the run); for example
``{"builder": "plane", "name": "f-nsf", "preset": "quick", "overrides": {}}``.
"""

import importlib
import inspect

BUILDERS = {
    "plane": ("funnelkit.models.plane", "plane_model"),
    "tabular": ("funnelkit.models.tabular", "tabular_model"),
    "tabular_f_mlp": ("funnelkit.models.f_mlp", "tabular_f_mlp"),
    "anomaly_f_mlp": ("funnelkit.models.f_mlp", "anomaly_f_mlp"),
    "image": ("funnelkit.models.image", "image_model"),
    "anomaly": ("funnelkit.models.anomaly", "anomaly_model"),
}


def build(config):
    """The model described by ``config``."""
    if not isinstance(config, dict) or config.get("builder") not in BUILDERS:
        builder = config.get("builder") if isinstance(config, dict) else config
        raise ValueError(f"unknown model builder {builder!r}; expected one of {', '.join(map(repr, BUILDERS))}")
    module, function = BUILDERS[config["builder"]]
    builder = getattr(importlib.import_module(module), function)
    named = inspect.signature(builder).parameters  # other keys (e.g. "data") only describe the run
    arguments = {k: v for k, v in config.items() if k in named and k != "overrides"}
    return builder(**arguments, **config.get("overrides", {}))
