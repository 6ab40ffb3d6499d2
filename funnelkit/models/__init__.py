"""Models: FunnelFlow, the VAE baseline, and the builders of every model in the paper."""

from .anomaly import ANOMALY_MODELS, anomaly_model
from .base import DensityModel
from .f_mlp import anomaly_f_mlp, tabular_f_mlp
from .funnel_flow import FunnelFlow, LayerContribution
from .image import IMAGE_DATASETS, IMAGE_MODELS, image_model
from .plane import MODEL_NAMES as PLANE_MODELS
from .plane import PRESETS as PLANE_PRESETS
from .plane import PlaneConfig, plane_config, plane_model
from .registry import build
from .table import format_model_table, model_table, print_model_table
from .tabular import TABULAR_DATASETS, TABULAR_MODELS, TabularConfig, tabular_config, tabular_model
from .vae import VAE

__all__ = [
    "ANOMALY_MODELS",
    "IMAGE_DATASETS",
    "IMAGE_MODELS",
    "PLANE_MODELS",
    "PLANE_PRESETS",
    "TABULAR_DATASETS",
    "TABULAR_MODELS",
    "VAE",
    "DensityModel",
    "FunnelFlow",
    "LayerContribution",
    "PlaneConfig",
    "TabularConfig",
    "anomaly_f_mlp",
    "anomaly_model",
    "build",
    "format_model_table",
    "image_model",
    "model_table",
    "plane_config",
    "plane_model",
    "print_model_table",
    "tabular_config",
    "tabular_f_mlp",
    "tabular_model",
]
