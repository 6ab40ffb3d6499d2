"""Models: FunnelFlow and the builders of the paper's models."""

from .funnel_flow import FunnelFlow, LayerContribution
from .plane import MODEL_NAMES as PLANE_MODELS
from .plane import PRESETS as PLANE_PRESETS
from .plane import PlaneConfig, plane_config, plane_model
from .registry import build

__all__ = [
    "PLANE_MODELS",
    "PLANE_PRESETS",
    "FunnelFlow",
    "LayerContribution",
    "PlaneConfig",
    "build",
    "plane_config",
    "plane_model",
]
