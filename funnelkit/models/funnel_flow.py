"""FunnelFlow: an nflows ``Flow`` whose layers may reduce the dimension (paper Sec. 2).

log p(x) = log N(z_L; 0, I) + sum_l V_l, where V_l is log|det J_l| for a bijective layer and
Eq. 6, log|det dz/dx_+| + log p_phi(x_- | z), for a funnel layer. Data may be vectors
``(batch, D)`` or images ``(batch, C, H, W)``; the latent may keep a shape too, and
:meth:`FunnelFlow.encode` flattens it to ``(batch, latent_dim)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from nflows.flows.base import Flow
from nflows.transforms.base import CompositeTransform

from .._compat import StandardNormal
from ..layers.base import FunnelLayer
from ..layers.decoder_noise import scaled_decoder_noise
from ..validation import check_batch, check_positive_int
from .base import DensityModel
from .tempering import check_sampling_temperature, decoder_noise_for


@dataclass
class LayerContribution:
    """One layer's share of log p(x), its V of Eq. 6: ``logabsdet + log_p_dropped`` (zero for a bijection)."""

    name: str
    features_in: int
    features_out: int
    outputs: torch.Tensor
    logabsdet: torch.Tensor
    log_p_dropped: torch.Tensor


class FunnelFlow(Flow, DensityModel):
    """A normalizing flow built from nflows transforms and funnel layers, with a N(0, I) base (Sec. 2).

    log p(x) = log N(z_L; 0, I) + sum_l V_l, with V_l a bijection's log|det J| or a funnel layer's
    Eq. 6 (:class:`~funnelkit.layers.FunnelLayer`).

    Args:
        layers: nflows transforms, applied in order from data to latent.
        data_shape: the width of x (an int) or its shape without the batch axis, e.g. (C, H, W).
        context_features: width of an optional context passed to every layer (0: none).
        config: a plain dict from which :func:`funnelkit.models.build` rebuilds this model
            (stored in checkpoints).
    """

    def __init__(self, layers: list, data_shape: int | tuple[int, ...], context_features: int = 0,
                 config: dict | None = None):
        layers = list(layers)
        shapes = _trace_shapes(layers, _as_shape(data_shape), context_features)
        super().__init__(CompositeTransform(layers), StandardNormal(list(shapes[-1])))
        self.to(_layers_dtype(layers))  # the base's buffers in the layers' dtype, not the default one
        self.data_shape = shapes[0]
        self.data_dim = math.prod(shapes[0])
        self.latent_shape = shapes[-1]
        self.latent_dim = math.prod(shapes[-1])
        self.layer_widths = [math.prod(shape) for shape in shapes]
        self.context_features = context_features
        self.config = dict(config or {})

    # -- properties -------------------------------------------------------------------------
    @property
    def layers(self):
        return list(self._transform._transforms)

    def _probe(self):
        return self._distribution._dtype_probe  # the base's buffer: right even with no parameters

    @property
    def exact(self) -> bool:
        """True when log_prob is an exact log density: every funnel layer in it (a
        :class:`~funnelkit.layers.FunnelLayer`, at any depth) is exact; the other layers are bijections."""
        return all(module.exact for module in self.modules() if isinstance(module, FunnelLayer))

    # -- checked public edges ---------------------------------------------------------------
    def _check(self, x, context):
        check_batch(x, self.data_shape, self.dtype)
        if self.context_features:
            check_batch(context, self.context_features, self.dtype, name="context")
            if context.shape[0] != x.shape[0]:
                raise ValueError(f"context has {context.shape[0]} rows, x has {x.shape[0]}")
        elif context is not None:
            raise ValueError("this model takes no context, but one was given")

    def log_prob(self, inputs: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x), shape ``(batch,)``: exact when :attr:`exact` is True, else a bound."""
        self._check(inputs, context)
        return self._log_prob(inputs, context)

    def encode(self, inputs: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """The latent z of x, flattened to shape ``(batch, latent_dim)``."""
        self._check(inputs, context)
        return self.transform_to_noise(inputs, context).reshape(inputs.shape[0], self.latent_dim)

    def _noise(self, num_samples, temperature, context, temper):
        """Base noise for ``num_samples`` draws (checked: an ``int`` from here on) at ``temperature``,
        and the scale of the decoders' noise for ``temper``."""
        num_samples = check_positive_int(num_samples, "num_samples")
        temperature = check_sampling_temperature(temperature)
        decoder_scale = decoder_noise_for(temper, temperature)
        if self.context_features and context is None:
            raise ValueError("this model needs a context to sample")
        if context is not None:
            if not self.context_features:
                raise ValueError("this model takes no context, but one was given")
            check_batch(context, self.context_features, self.dtype, name="context")
        noise = self._distribution.sample(num_samples, context=context) * temperature
        if context is not None:
            noise = noise.reshape(-1, *self.latent_shape)
            context = context.repeat_interleave(num_samples, dim=0)
        return noise, context, num_samples, decoder_scale

    def _unflatten(self, tensor, num_samples, context):
        return tensor if context is None else tensor.reshape(-1, num_samples, *tensor.shape[1:])

    def sample(self, num_samples: int, context: torch.Tensor | None = None, temperature: float = 1.0,
               temper: str = "base") -> torch.Tensor:
        """Draw samples; ``temperature`` T >= 0 scales the base noise, z ~ N(0, T^2 I) (paper Fig. 4).

        ``temper`` (:mod:`funnelkit.models.tempering`) says what else T scales: ``"base"`` (the
        default, as the paper's code) nothing, each funnel's p_phi samples at temperature 1;
        ``"all"`` the noise of each funnel's decoder p_phi(x_- | z) too; ``"mean"`` none of the
        decoders' noise: they give their means. With a context of B rows the result has shape
        (B, num_samples, D).
        """
        noise, context, num_samples, decoder_scale = self._noise(num_samples, temperature, context, temper)
        with scaled_decoder_noise(decoder_scale):
            samples, _ = self._transform.inverse(noise, context=context)
        return self._unflatten(samples, num_samples, context)

    def sample_and_log_prob(self, num_samples: int, context: torch.Tensor | None = None, temperature: float = 1.0,
                            temper: str = "base") -> tuple[torch.Tensor, torch.Tensor]:
        """Samples (as :meth:`sample`) and their exact log p(x) under the model, at any temperature and temper."""
        noise, context, num_samples, decoder_scale = self._noise(num_samples, temperature, context, temper)
        with scaled_decoder_noise(decoder_scale):
            samples, inverse_logabsdet = self._transform.inverse(noise, context=context)
        log_prob = self._distribution.log_prob(noise) - inverse_logabsdet
        return self._unflatten(samples, num_samples, context), self._unflatten(log_prob, num_samples, context)

    def contributions(self, inputs: torch.Tensor,
                      context: torch.Tensor | None = None) -> tuple[list[LayerContribution], torch.Tensor]:
        """Per layer: its output, log|det J| and log p_phi(x_- | z) (zero for bijections).

        Returns ``(layers, base_log_prob)``, where ``layers`` is a list of
        :class:`LayerContribution`, so that
        ``base_log_prob + sum(c.logabsdet + c.log_p_dropped) == log_prob(inputs)``.
        """
        self._check(inputs, context)
        out, x = [], inputs
        for layer in self.layers:
            if isinstance(layer, FunnelLayer):  # Eq. 6 in its two terms
                z, logabsdet, log_p_dropped = layer.contributions(x, context)
            else:  # a bijection: log|det J| only
                z, logabsdet = layer(x, context=context)
                log_p_dropped = torch.zeros_like(logabsdet)
            out.append(LayerContribution(type(layer).__name__, math.prod(x.shape[1:]), math.prod(z.shape[1:]),
                                         z, logabsdet, log_p_dropped))
            x = z
        return out, self._distribution.log_prob(x)


def _as_shape(data_shape):
    shape = (data_shape,) if isinstance(data_shape, int) else tuple(data_shape)
    if not shape or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape):
        raise ValueError(f"data_shape must be a positive int or a tuple of them, got {data_shape!r}")
    return shape


def _layers_dtype(layers):
    """The layers' floating dtype (float32 layers under a float64 default, or the reverse), else the default."""
    return next((p.dtype for layer in layers for p in layer.parameters() if p.is_floating_point()),
                torch.get_default_dtype())


def _trace_shapes(layers, data_shape, context_features):
    """Push a dummy batch through the layers and return the shape (without batch) after each one."""
    if not layers:
        raise ValueError("a FunnelFlow needs at least one layer")
    shapes = [data_shape]
    dtype = _layers_dtype(layers)
    x = torch.zeros(2, *data_shape, dtype=dtype)
    context = torch.zeros(2, context_features, dtype=dtype) if context_features else None
    modes = [layer.training for layer in layers]
    with torch.no_grad():
        for i, layer in enumerate(layers):
            expected = getattr(layer, "input_shape", None) or getattr(layer, "features_in", None)
            expected = _as_shape(expected) if expected is not None else None
            if expected is not None and expected != tuple(x.shape[1:]):
                raise ValueError(
                    f"layer {i} ({type(layer).__name__}) expects inputs of shape {_show(expected)}, "
                    f"but the layers before it give {_show(x.shape[1:])}"
                )
            layer.eval()  # no data-dependent initialisation (ActNorm) from a dummy batch
            try:
                x, _ = layer(x, context=context)
            except Exception as error:  # name the layer whose shapes disagree
                raise ValueError(
                    f"layer {i} ({type(layer).__name__}) rejected an input of shape {_show(x.shape[1:])}: {error}"
                ) from error
            finally:
                layer.train(modes[i])
            shapes.append(tuple(x.shape[1:]))
    return shapes


def _show(shape):
    shape = tuple(shape)
    return str(shape[0]) if len(shape) == 1 else str(shape)
