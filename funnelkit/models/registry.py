"""Rebuild a model from the plain config dict that checkpoints store (no pickled classes)."""

from .plane import plane_model

BUILDERS = {"plane": plane_model}


def build(config):
    """The model described by ``config`` (``{"builder", "name", "preset", "overrides"}``)."""
    if not isinstance(config, dict) or config.get("builder") not in BUILDERS:
        builder = config.get("builder") if isinstance(config, dict) else config
        raise ValueError(f"unknown model builder {builder!r}; expected one of {', '.join(map(repr, BUILDERS))}")
    return BUILDERS[config["builder"]](config["name"], preset=config["preset"], **config.get("overrides", {}))
