"""A funnel flow taken apart: Eq. 6 layer by layer, the data after each layer, and a 2-D -> 1-D funnel
seen from inside. All three read :meth:`FunnelFlow.contributions` (Sec. 2, Eq. 6: a funnel layer's
contribution is log|det dz/dx_+| + log p_phi(x_- | z); a bijection's is its log|det J|), so what they show
adds up to the model's ``log_prob``; the dashboard and the notebooks draw them.

    rows, summed, log_prob = eq6_table(model, x)   # summed == log_prob (the mean over x, two ways)
    stages = layer_stages(model, x)                # the data after each layer
    inside = funnel_inside(model, x, resolution=80)  # z against the dropped coordinate, and p_phi
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..layers.funnel import Funnel
from .funnel_flow import FunnelFlow

#: Short names of the layers of the paper's plane models, as the dashboard's tables show them.
SHORT_NAMES = {
    "MaskedPiecewiseRationalQuadraticAutoregressiveTransform": "RQ spline",
    "ReversePermutation": "reverse",
    "LULinear": "LU linear",
    "Funnel": "funnel",
}


def short_name(name: str) -> str:
    """A layer's class name as a table shows it (``"RQ spline"``, ``"funnel"``, ...)."""
    return SHORT_NAMES.get(name, name)


@dataclass
class Stage:
    """The data after one layer of a flow (Sec. 2: a funnel layer's output is narrower than its input):
    ``points`` is ``(n, width)``."""

    title: str
    points: np.ndarray
    log_p_dropped: float | None = None  # mean log p_phi(x_- | z) of a funnel layer


@dataclass
class FunnelInside:
    """A funnel layer from the inside: its input's dropped coordinate x_- against its output z.

    ``log_p[i, j] = log p_phi(x_minus_axis[i] | z_axis[j])``, the learned decoder of Eq. 6.
    """

    layer_index: int
    z: np.ndarray  # (n,) the funnel's output for the data
    x_minus: np.ndarray  # (n,) the dropped coordinate of the funnel's input
    z_axis: np.ndarray
    x_minus_axis: np.ndarray
    log_p: np.ndarray


def _to_model(model: FunnelFlow, x) -> torch.Tensor:
    return torch.as_tensor(x).to(device=model.device, dtype=model.dtype)


def _as_model_input(model: FunnelFlow, x) -> torch.Tensor:
    """``x`` as a batch of the model's data: its device and dtype, shape ``(n, *data_shape)``."""
    return _to_model(model, x).reshape(-1, *model.data_shape)


@torch.no_grad()
def eq6_table(model: FunnelFlow, x) -> tuple[list[dict], float, float]:
    """Eq. 6 in numbers, averaged over points ``x``: one row per layer, then the base N(0, I).

    Returns ``(rows, summed, log_prob)``: the ``contribution`` column adds up to ``summed``, which equals
    the mean of ``model.log_prob(x)`` (``log_prob``, computed directly: the same number two ways).
    """
    model.eval()
    x = _as_model_input(model, x)
    layers, base = model.contributions(x)
    rows = [
        {
            "layer": f"{i}. {short_name(c.name)}",
            "dims": f"{c.features_in}→{c.features_out}",
            "log|det J|": c.logabsdet.mean().item(),
            "log p_φ(x₋|z)": c.log_p_dropped.mean().item(),
            "contribution": (c.logabsdet + c.log_p_dropped).mean().item(),
        }
        for i, c in enumerate(layers, start=1)
    ]
    rows.append({"layer": "base: log N(z; 0, I)", "dims": f"{model.latent_dim}", "log|det J|": 0.0,
                 "log p_φ(x₋|z)": 0.0, "contribution": base.mean().item()})
    summed = base + sum(c.logabsdet + c.log_p_dropped for c in layers)
    return rows, summed.mean().item(), model.log_prob(x).mean().item()


@torch.no_grad()
def layer_stages(model: FunnelFlow, x) -> list[Stage]:
    """The data ``x`` (``(n, D)``) and its image after each layer of ``model``, titled by layer and width;
    a funnel layer's stage carries the mean log p_phi(x_- | z) of the points it dropped."""
    model.eval()
    layers, _ = model.contributions(_as_model_input(model, x))
    out = [Stage("data x", torch.as_tensor(x).cpu().numpy())]
    for i, layer in enumerate(layers, start=1):
        title = f"{i}. {short_name(layer.name)} ({layer.features_in}→{layer.features_out})"
        dropped = layer.log_p_dropped.mean().item() if layer.features_out < layer.features_in else None
        out.append(Stage(title, layer.outputs.cpu().double().numpy(), dropped))
    return out


def _padded_axis(values, resolution, pad=0.15):
    low, high = values.min().item(), values.max().item()
    width = max(high - low, 1e-3)
    return torch.linspace(low - pad * width, high + pad * width, resolution, dtype=torch.float64)


@torch.no_grad()
def funnel_inside(model: FunnelFlow, x, resolution: int = 80) -> FunnelInside | None:
    """The first funnel layer of ``model`` seen from inside on data ``x``: each point's z against the
    coordinate x_- the layer drops, over the decoder's density log p_phi(x_- | z) on a
    ``resolution`` x ``resolution`` grid. ``None`` when the model has no funnel, or its first one is
    not a 2-D -> 1-D funnel (the picture is drawn for those)."""
    model.eval()
    index = next((i for i, layer in enumerate(model.layers) if isinstance(layer, Funnel)), None)
    if index is None:
        return None
    funnel = model.layers[index]
    if funnel.n_drop != 1 or funnel.features_out != 1:
        return None
    x = _as_model_input(model, x)
    layers, _ = model.contributions(x)
    x_minus, _ = funnel.splitter.split(layers[index - 1].outputs if index else x)
    z = layers[index].outputs
    x_minus, z = x_minus[:, 0].cpu().double(), z[:, 0].cpu().double()
    z_axis = _padded_axis(z, resolution)
    m_axis = _padded_axis(x_minus, resolution)
    mm, zz = torch.meshgrid(m_axis, z_axis, indexing="ij")
    log_p = funnel.decoder.log_prob(_to_model(model, mm.reshape(-1, 1)), context=_to_model(model, zz.reshape(-1, 1)))
    log_p = log_p.cpu().double().reshape(resolution, resolution)
    return FunnelInside(index, z.numpy(), x_minus.numpy(), z_axis.numpy(), m_axis.numpy(), log_p.numpy())


__all__ = ["FunnelInside", "SHORT_NAMES", "Stage", "eq6_table", "funnel_inside", "layer_stages", "short_name"]
