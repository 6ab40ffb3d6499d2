"""The table of every model the kit builds: name, parameters, data and latent size, and whether
its log_prob is an exact log density or only a bound (the VAE's ELBO).

    >>> import funnelkit as fk
    >>> print(fk.models.format_model_table(fk.models.model_table(families=("plane",))))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..validation import check_choice

FAMILIES = ("plane", "tabular", "image", "anomaly")


@dataclass(frozen=True)
class ModelRow:
    """One model of the paper (A.5, A.6, A.8, A.9): its size, data and latent widths, exact or bound."""

    family: str
    name: str
    setting: str  # dataset, bits or latent size
    parameters: int
    data_dim: int
    latent_dim: int
    likelihood: str  # "exact" or "bound"


def _specs(family):
    """``(name, setting, builder thunk)`` for every model of a family."""
    if family == "plane":
        from .plane import MODEL_NAMES, plane_model  # each family's builders (and nflows) load only when listed

        return [(name, "four circles", lambda p, n=name: plane_model(n, preset=p)) for name in MODEL_NAMES]
    if family == "tabular":
        from .tabular import TABULAR_DATASETS, TABULAR_MODELS, tabular_model

        return [
            (name, dataset, lambda p, n=name, d=dataset: tabular_model(n, d, preset=p))
            for dataset in TABULAR_DATASETS
            for name in TABULAR_MODELS
        ]
    if family == "image":
        from .image import IMAGE_DATASETS, IMAGE_MODELS, image_model

        specs = []
        for dataset in IMAGE_DATASETS:
            # the 1 x 28 x 28 models are the same at both depths; list them once
            depths = (5, 8) if dataset in ("cifar10", "imagenet64") else (8,)
            for bits in depths:
                setting = f"{dataset}, {bits}-bit" if len(depths) > 1 else f"{dataset}, 5- or 8-bit"
                specs += [(name, setting, lambda p, n=name, d=dataset, b=bits: image_model(n, d, bits=b, preset=p))
                          for name in IMAGE_MODELS]
        return specs
    from .anomaly import ANOMALY_MODELS, anomaly_model

    specs = []
    for name in ANOMALY_MODELS:
        for latent in (4, 16) if name != "nsf" else (None,):
            setting = "MNIST" if latent is None else f"MNIST, latent {latent}"
            specs.append((name, setting, lambda p, n=name, s=latent: anomaly_model(n, latent_size=s or 16, preset=p)))
    return specs


def model_table(preset: str = "paper", families: tuple[str, ...] = FAMILIES) -> list[ModelRow]:
    """Build every model of ``families`` with ``preset`` and describe it (a list of :class:`ModelRow`)."""
    check_choice(preset, ("paper", "quick"), "preset")
    rows = []
    for family in families:
        check_choice(family, FAMILIES, "model family")
        for name, setting, build in _specs(family):
            model = build(preset)
            rows.append(ModelRow(
                family, name, setting, model.num_parameters(), math.prod(model.data_shape), model.latent_dim,
                "exact" if model.exact else "bound",
            ))
    return rows


def format_model_table(rows: list[ModelRow]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| family | model | data | parameters | data dim | latent dim | log_prob |",
        "| --- | --- | --- | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        likelihood = "exact" if row.likelihood == "exact" else "bound (ELBO or lower bound)"
        lines.append(
            f"| {row.family} | {row.name} | {row.setting} | {row.parameters:,} | {row.data_dim:,} "
            f"| {row.latent_dim:,} | {likelihood} |"
        )
    return "\n".join(lines) + "\n"


def print_model_table(preset: str = "paper", families: tuple[str, ...] = FAMILIES) -> None:
    """Print the table of every model (building the paper's image models takes some seconds)."""
    print(format_model_table(model_table(preset, families)))
