"""How much noise the decoders p_phi draw with, set for the duration of one sampling call.

Sampling a funnel has two sources of randomness: the base noise z ~ N(0, T^2 I), which the
model scales itself, and the noise each funnel's decoder p_phi(x_- | z) draws for the dropped
coordinates. The paper tempers only the first. :func:`scaled_decoder_noise` scales the second:
inside ``with scaled_decoder_noise(s):`` every decoder of funnelkit (``GaussianDecoder``,
``TileGaussianDecoder``, the base of a ``flow_decoder``) draws ``s * eps`` instead of ``eps``
(eps ~ N(0, I)); ``s = 0`` gives the noise-free decoder (a Gaussian's mean). Outside, the scale
is 1 and decoders sample as always.

The scale is a ``contextvars.ContextVar``: it is per thread (two dashboard sessions sampling the
same shared model at once never see each other's scale) and restored when the block ends, even
on an error. Decoders still return the exact log density of what they drew, so a tempered
``sample_and_log_prob`` stays the model's exact log p of its samples.
"""

import contextvars
import math
import numbers
from contextlib import contextmanager

_SCALE = contextvars.ContextVar("funnelkit_decoder_noise_scale", default=1.0)


def decoder_noise_scale():
    """The scale decoders multiply their standard normal noise by now (1.0 outside any block)."""
    return _SCALE.get()


@contextmanager
def scaled_decoder_noise(scale):
    """Within the block, every funnelkit decoder draws ``scale * eps``; ``scale`` a finite number >= 0."""
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not math.isfinite(scale) or scale < 0:
        raise ValueError(f"the decoder noise scale must be a finite number >= 0, got {scale!r}")
    token = _SCALE.set(float(scale))
    try:
        yield
    finally:
        _SCALE.reset(token)


__all__ = ["decoder_noise_scale", "scaled_decoder_noise"]
