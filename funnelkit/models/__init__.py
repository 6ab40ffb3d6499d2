"""Models: FunnelFlow, the VAE baseline, and the builders of every model in the paper.

Each name below is imported from its module on first use (PEP 562), so that importing one light
module of this package does not load the others (and torch with them).
"""

from .._on_use import on_use

#: Public names: (submodule, name there).
_NAMES = {
    "ANOMALY_MODELS": ("anomaly", "ANOMALY_MODELS"),
    "DensityModel": ("base", "DensityModel"),
    "FunnelFlow": ("funnel_flow", "FunnelFlow"),
    "IMAGE_DATASETS": ("image", "IMAGE_DATASETS"),
    "IMAGE_MODELS": ("image", "IMAGE_MODELS"),
    "LayerContribution": ("funnel_flow", "LayerContribution"),
    "PLANE_MODELS": ("plane", "MODEL_NAMES"),
    "PLANE_PRESETS": ("plane", "PRESETS"),
    "PlaneConfig": ("plane", "PlaneConfig"),
    "TABULAR_DATASETS": ("tabular", "TABULAR_DATASETS"),
    "TABULAR_MODELS": ("tabular", "TABULAR_MODELS"),
    "TabularConfig": ("tabular", "TabularConfig"),
    "VAE": ("vae", "VAE"),
    "anomaly_f_mlp": ("f_mlp", "anomaly_f_mlp"),
    "anomaly_model": ("anomaly", "anomaly_model"),
    "build": ("registry", "build"),
    "format_model_table": ("table", "format_model_table"),
    "image_model": ("image", "image_model"),
    "model_table": ("table", "model_table"),
    "plane_config": ("plane", "plane_config"),
    "plane_model": ("plane", "plane_model"),
    "print_model_table": ("table", "print_model_table"),
    "tabular_config": ("tabular", "tabular_config"),
    "tabular_f_mlp": ("f_mlp", "tabular_f_mlp"),
    "tabular_model": ("tabular", "tabular_model"),
}

__all__ = sorted(_NAMES)


__getattr__, __dir__ = on_use(__name__, _NAMES, globals())
