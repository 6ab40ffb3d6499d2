"""Where points go inside a 2-D flow, layer by layer: the positions behind "Watch a flow move".

A :class:`~funnelkit.models.FunnelFlow` lists its layers from data to latent. Generating runs them
backwards (paper Eq. 3): z ~ N(0, I), then each layer's inverse; a funnel's inverse first draws the
dropped coordinate x_- ~ p_phi(x_- | z) and then sets x_+ = F(z | x_-). Encoding runs them forwards:
a funnel maps x_+ to z = F^{-1}(x_+ | x_-) and drops x_-, which only enters log p through
log p_phi(x_- | z) (Eq. 6) and is not kept.

:func:`flow_path` records the points after every step, as positions in the plane. Where the funnel
has reduced the plane to its 1-D latent, the points sit on the line "dropped coordinate = 0", so
that on the way out the draw from p_phi moves them off the line along the dropped axis, and on the
way in dropping x_- moves them back onto it. :func:`round_trip` goes out and back with the same
points: they end where they started, because encoding a funnel's sample returns its z exactly.

Every step calls the model's own layers (``layer.inverse``, ``layer.forward``), so the last stage
of a generate path is ``model.sample`` with the same noise, and the last stage of an encode path
is ``model.encode``.
"""

import numbers
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..device import seeded
from ..layers.decoder_noise import scaled_decoder_noise
from ..layers.funnel import Funnel
from ..models.tempering import check_sampling_temperature, decoder_noise_for
from ..validation import check_positive_int

DIRECTIONS = ("generate", "encode")
LAYER_NAMES = {
    "MaskedPiecewiseRationalQuadraticAutoregressiveTransform": "RQ spline",
    "ReversePermutation": "reverse",
    "RandomPermutation": "permutation",
    "LULinear": "LU linear",
}
_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


@dataclass(frozen=True)
class PathStage:
    """The points after one step of a path.

    Attributes:
        label: a few words for a slider (``"draw x₁"``).
        caption: one sentence saying what this step did.
        values: ``(n, width)`` the flow's state: the 2-D points, or the 1-D latent.
        points: ``(n, 2)`` where the points are drawn; a 1-D state sits on the line where the
            dropped coordinate is 0.
        layer: the index in ``model.layers`` of the layer that made this stage (``None`` at the start).
    """

    label: str
    caption: str
    values: np.ndarray
    points: np.ndarray
    layer: int | None


@dataclass(frozen=True)
class FlowPath:
    """The stages of points travelling through a 2-D flow.

    Attributes:
        direction: ``"generate"``, ``"encode"`` or ``"round trip"``.
        stages: the :class:`PathStage` s in the order the points visit them.
        dropped: the index (0 or 1) of the coordinate the model's funnel drops, ``None`` for a model
            without a funnel (then every stage is 2-D).
    """

    direction: str
    stages: tuple
    dropped: int | None

    @property
    def data_points(self):
        """``(n, 2)``: the points in data space, the stage labelled ``"data"`` (the end of a generate
        path, the start of an encode path, the middle of a round trip)."""
        return next(stage.points for stage in self.stages if stage.label == "data")


def flow_path(model, n=400, seed=0, direction="generate", points=None, temperature=1.0, temper="base"):
    """The positions of ``n`` points after each layer of a 2-D ``model``, generating or encoding.

    Args:
        model: a :class:`~funnelkit.models.FunnelFlow` on 2-D data without context (the plane
            models: ``"f-nsf"``, a funnel to 1-D, and ``"nsf"``).
        n: how many points travel (ignored when ``points`` are given).
        seed: seeds torch's generator inside the call (its state outside is kept), so
            ``flow_path(model, n, seed)`` and ``model.sample(n)`` after ``torch.manual_seed(seed)``
            draw the same noise and give the same points.
        direction: ``"generate"`` (from N(0, I) to data, Eq. 3) or ``"encode"`` (from data to the latent).
        points: ``(n, 2)`` points to encode; by default (``None``) the encode path starts from the
            model's own samples for ``seed``, so that it retraces the generate path backwards.
        temperature, temper: as :meth:`FunnelFlow.sample` (the generate path, and the default
            points of the encode path).

    Returns:
        a :class:`FlowPath`.
    """
    _check_plane_model(model)
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; expected one of {', '.join(map(repr, DIRECTIONS))}")
    n = check_positive_int(n, "n")
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    temperature = check_sampling_temperature(temperature)
    decoder_scale = decoder_noise_for(temper, temperature)
    with _evaluating(model), torch.no_grad():
        if direction == "generate" or points is None:
            with seeded(int(seed), model.device), scaled_decoder_noise(decoder_scale):
                generated = _generate(model, n, temperature)
            if direction == "generate":
                return FlowPath("generate", tuple(generated), _dropped_index(model))
            points = generated[-1].values
        return FlowPath("encode", tuple(_encode(model, _points(points, model))), _dropped_index(model))


def round_trip(model, n=400, seed=0, temperature=1.0, temper="base"):
    """Out from N(0, I) to the data and back with the same points: the generate path of ``seed``,
    then the encode path of its samples (their data stage shown once). On a funnel's way back the
    dropped coordinate drawn on the way out is ignored, and the points return to their z."""
    out = flow_path(model, n, seed, "generate", temperature=temperature, temper=temper)
    back = flow_path(model, n, seed, "encode", points=out.stages[-1].values)
    home = back.stages[-1]
    home = replace(home, caption=home.caption + ": back at the noise z each point started from")
    return FlowPath("round trip", out.stages + back.stages[1:-1] + (home,), out.dropped)


# -- the two directions -----------------------------------------------------------------------------
def _generate(model, n, temperature):
    """z ~ N(0, T^2 I), then each layer's inverse from the last layer to the first (``model.sample``)."""
    funnel = _plane_funnel(model)
    state = model._distribution.sample(n) * temperature  # the draw model.sample makes, in the same order
    start = "z ~ N(0, 1): the 1-D latent" if funnel is not None else "z ~ N(0, I): the base noise"
    stages = [_stage("noise z", start + _on_the_line(funnel, state), state, funnel, None)]
    layers = model.layers
    for index in reversed(range(len(layers))):
        layer = layers[index]
        before = state
        state, _ = layer.inverse(state)  # a funnel draws x_- ~ p_phi(x_- | z) inside, as in model.sample
        if isinstance(layer, Funnel):
            x_minus, _ = layer.splitter.split(state)
            dropped, kept = _coordinate(layer, "dropped"), _coordinate(layer, "kept")
            stages.append(_stage(f"draw {dropped}", f"Funnel, way out: the dropped coordinate {dropped} is drawn from "
                                 f"p_φ({dropped} | z); z stays", layer.splitter.merge(x_minus, before), funnel, index))
            stages.append(_stage(f"F: {kept}", f"Funnel, way out: the kept coordinate {kept} = F(z | {dropped})",
                                 state, funnel, index))
        else:
            name = _layer_name(layer)
            stages.append(_stage(f"{name}⁻¹", f"{name}, run backwards", state, funnel, index))
    last = stages[-1]
    stages[-1] = _stage("data", last.caption + ": these are the model's samples", state, funnel, last.layer)
    return stages


def _encode(model, x):
    """Each layer forwards from the first to the last (``model.encode``)."""
    funnel = _plane_funnel(model)
    stages = [_stage("data", "x: the points in the data plane", x, funnel, None)]
    state = x
    for index, layer in enumerate(model.layers):
        before = state
        state, _ = layer(state)
        if isinstance(layer, Funnel):
            x_minus, _ = layer.splitter.split(before)
            dropped, kept = _coordinate(layer, "dropped"), _coordinate(layer, "kept")
            caption = f"Funnel, way in: the kept coordinate {kept} becomes z = F⁻¹({kept} | {dropped})"
            stages.append(_stage("F⁻¹: z", caption, layer.splitter.merge(x_minus, state), funnel, index))
            stages.append(_stage(f"drop {dropped}", f"Funnel, way in: {dropped} is dropped (p_φ({dropped} | z) only "
                                 "scores it, Eq. 6); z is the 1-D latent" + _on_the_line(funnel, state),
                                 state, funnel, index))
        else:
            name = _layer_name(layer)
            stages.append(_stage(name, name, state, funnel, index))
    return stages


# -- helpers ----------------------------------------------------------------------------------------
def _stage(label, caption, state, funnel, layer):
    values = state.detach().cpu().double()
    if not torch.isfinite(values).all():
        raise FloatingPointError(f"the points are NaN or infinite after {caption!r}: the model has broken down")
    return PathStage(label, caption, values.numpy(), _in_the_plane(values, funnel).numpy(), layer)


def _in_the_plane(values, funnel):
    """2-D values as they are; a 1-D latent on the line where the funnel's dropped coordinate is 0."""
    if values.shape[1] == 2:
        return values
    return funnel.splitter.to(values.device).merge(torch.zeros_like(values), values)


def _on_the_line(funnel, state):
    if funnel is None or state.shape[1] == 2:
        return ""
    return f", drawn on the line {_coordinate(funnel, 'dropped')} = 0"


def _coordinate(funnel, which):
    """The name of the funnel's dropped (x₁) or kept (x₂) coordinate, numbered from 1 as in the paper."""
    index = int((funnel.splitter.dropped if which == "dropped" else funnel.splitter.kept)[0])
    return f"x{str(index + 1).translate(_SUBSCRIPTS)}"


def _layer_name(layer):
    return LAYER_NAMES.get(type(layer).__name__, type(layer).__name__)


def _plane_funnel(model):
    """The model's funnel from 2-D to 1-D, or ``None`` (a dimension-preserving flow)."""
    funnels = [layer for layer in model.layers if isinstance(layer, Funnel)]
    return funnels[0] if funnels else None


def _dropped_index(model):
    funnel = _plane_funnel(model)
    return None if funnel is None else int(funnel.splitter.dropped[0])


def _check_plane_model(model):
    layers = getattr(model, "layers", None)
    if layers is None or getattr(model, "data_dim", None) != 2 or not hasattr(model, "_distribution"):
        on = f" on {model.data_dim}-D data" if hasattr(model, "data_dim") else ""
        raise ValueError("flow_path draws a FunnelFlow on 2-D data (funnelkit.models.plane_model); "
                         f"got {type(model).__name__}{on}")
    if getattr(model, "context_features", 0):
        raise ValueError("flow_path draws models without a context; this one takes a context")
    funnels = [layer for layer in layers if isinstance(layer, Funnel)]
    if len(funnels) > 1 or any(f.features_in != 2 or f.features_out != 1 for f in funnels):
        raise ValueError("flow_path draws at most one funnel, from 2-D to 1-D (the plane F-NSF); "
                         f"this model has {len(funnels)} funnel(s)")
    bad = [type(layer).__name__ for layer in layers
           if not isinstance(layer, Funnel) and getattr(layer, "bijective", True) is False]
    if bad:
        raise ValueError(f"flow_path draws bijections and funnels; this model also has {', '.join(bad)}")


def _points(points, model):
    if hasattr(points, "detach"):
        points = points.detach()
    points = torch.as_tensor(np.asarray(points) if not torch.is_tensor(points) else points)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must have shape (n, 2), got {tuple(points.shape)}")
    if points.shape[0] < 1:
        raise ValueError("points must hold at least one point")
    return points.to(device=model.device, dtype=model.dtype)


@contextmanager
def _evaluating(model):
    """The model in eval mode inside the block; each module's mode before is restored after it."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, mode in modes:
            module.training = mode




__all__ = ["DIRECTIONS", "FlowPath", "PathStage", "flow_path", "round_trip"]
