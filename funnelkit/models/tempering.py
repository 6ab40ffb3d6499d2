"""Temperature modes of sampling (paper Fig. 4 and beyond): which noise a temperature T scales.

A funnel sample has two sources of randomness: the base noise z ~ N(0, I) pushed through the
layers, and, in each funnel layer, the noise its decoder p_phi(x_- | z) draws for the dropped
coordinates x_- (a VAE: the noise of its decoder p(x | z)). ``temper`` says which T scales:

* ``"base"`` (the default, the paper and its code): z ~ N(0, T^2 I); every decoder samples at
  temperature 1.
* ``"all"``: z ~ N(0, T^2 I) and every decoder draws ``T * eps`` as well (mean + T sigma eps for a
  Gaussian); at T = 1 this is ``"base"``; at T = 0 it is one deterministic picture.
* ``"mean"``: z ~ N(0, T^2 I) and every decoder returns its noise-free output (a Gaussian's mean),
  so all the variety comes from z: the decoder means of each sample.

T is a finite number >= 0 in every mode (T = 0 with ``"base"``: z = 0, the variety of a funnel's
samples is then its decoders' alone). log p of ``sample_and_log_prob`` stays the model's exact
log density of the returned samples in every mode (the tempered samples are simply other points).
"""

import math
import numbers

import torch

TEMPER_MODES = ("base", "all", "mean")


def check_temper(temper):
    """``temper`` if it is one of :data:`TEMPER_MODES`; a ValueError naming the choices otherwise."""
    if not isinstance(temper, str) or temper not in TEMPER_MODES:
        raise ValueError(f"unknown temper {temper!r}; expected one of {', '.join(map(repr, TEMPER_MODES))} "
                         "(base: the paper's, only the base noise; all: the decoders' noise too; "
                         "mean: the decoders' noise-free means)")
    return temper


def check_sampling_temperature(temperature):
    """``temperature`` as a float if it is a finite real number >= 0 (numpy and one-value tensors too)."""
    if isinstance(temperature, torch.Tensor) and temperature.numel() == 1:
        temperature = temperature.item()
    if (isinstance(temperature, bool) or not isinstance(temperature, numbers.Real)
            or not math.isfinite(temperature) or temperature < 0):
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
    return float(temperature)


def decoder_noise_for(temper, temperature):
    """The scale of the decoders' noise for ``temper`` at ``temperature``: 1, T or 0."""
    return {"base": 1.0, "all": temperature, "mean": 0.0}[check_temper(temper)]


__all__ = ["TEMPER_MODES", "check_sampling_temperature", "check_temper", "decoder_noise_for"]
