"""Sampling an image model: a seeded grid of ``n`` samples at a temperature, as PNG bytes.

By default (``temper="base"``, the paper's code, Fig. 4) the temperature scales only the base
noise, z ~ N(0, T^2 I); each funnel's decoder p_phi and the VAE's decoder sample at T = 1.
``temper="all"`` scales the decoders' noise by T too, ``"mean"`` draws the decoders' noise-free
means (:mod:`funnelkit.models.tempering`).
"""

import io
import math
import numbers
import threading

import torch

from ...experiments.image_runs import samples_uint8
from ...experiments.paper_numbers import FIG4_TEMPERATURES
from ...experiments.results import image_grid
from ...models.tempering import TEMPER_MODES, check_sampling_temperature, check_temper
from ...validation import check_positive_int
from .names import IMAGE_BUILDERS

PRESET_TEMPERATURES = tuple(FIG4_TEMPERATURES)  # 0.5, 0.75, 1.0
LIMITS = {"temperature": (0.0, 1.5), "samples": (1, 256), "sample_seed": (0, 2**31 - 1)}
#: What the temperature scales, as the dashboard names it (keys: funnelkit.models.tempering.TEMPER_MODES).
TEMPER_LABELS = {"base": "the base only (the paper)", "all": "base and decoders", "mean": "decoder means"}
#: What a student should see, and why: where the randomness of a funnel sample comes from.
RANDOMNESS = ("A funnel sample has two sources of randomness: the base noise z, which T tempers (z ~ N(0, T²I)), "
              "and the noise each funnel's decoder p_φ(x₋ | z) draws for the coordinates that funnel dropped. "
              "The paper tempers only z, so a funnel's samples keep their decoder noise as T falls: at T = 0 "
              "they still differ, pixel speckle from the decoders, while an NSF's collapse to one picture. "
              "'Base and decoders' scales the decoder noise by T as well; 'decoder means' removes it, so each "
              "sample is the decoders' mean for its z and all its variety comes from z. Where the means look "
              "alike or blank, the model keeps its detail in the decoder noise, not in z (the shipped quick "
              "F-NSF does: benchmarks/results/temper.md). A VAE's decoder noise behaves the same way.")
_SAMPLING = threading.Lock()  # the seeded draw uses torch's global generator: one draw at a time


def check_sample_request(n, temperature, seed, high=LIMITS["samples"][1]):
    """``(n, temperature, seed)`` checked: a ValueError naming what was expected otherwise
    (``high``: the most samples, None for no limit)."""
    low = LIMITS["samples"][0]
    n = check_positive_int(n, "the number of samples")
    if high is not None and n > high:
        raise ValueError(f"the number of samples must be from {low} to {high}, got {n}")
    temperature = check_sampling_temperature(temperature)
    low, high = LIMITS["sample_seed"]
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not low <= seed <= high:
        raise ValueError(f"the seed must be a whole number from {low} to {high}, got {seed!r}")
    seed = int(seed)
    return n, float(temperature), seed


def model_bits(model):
    """The bit depth an image model was trained at (an anomaly model: 8)."""
    config = getattr(model, "config", {}) or {}
    if config.get("builder") not in IMAGE_BUILDERS:
        raise ValueError(f"expected an image model (builder 'image' or 'anomaly'), got builder {config.get('builder')!r}")
    return int(config.get("bits", 8))


def sample_grid(model, n, temperature=1.0, seed=0, bits=None, nrow=None, temper="base"):
    """``n`` samples of an image model at ``temperature``, seeded, tiled into one uint8 (C, H, W) picture.

    ``temper="base"`` (default, the paper's): only the base noise is tempered (z ~ N(0, T^2 I));
    funnel decoders and the VAE's decoder sample at T = 1. ``"all"``: their noise is scaled by T
    too; ``"mean"``: they give their means. Pixels are floor(u) * 2^(8 - bits), as Table 2's
    Fig. 3. The same ``seed`` gives the same grid on the same device; torch's global random
    state is left as it was. ``nrow`` images per row (default: a square, ceil(sqrt(n))).
    """
    n, temperature, seed = check_sample_request(n, temperature, seed)
    temper = check_temper(temper)
    bits = model_bits(model) if bits is None else check_positive_int(bits, "bits")
    nrow = math.ceil(math.sqrt(n)) if nrow is None else check_positive_int(nrow, "nrow")
    with _SAMPLING:  # samples_uint8 seeds a fork of torch's global generator: one draw at a time
        images = samples_uint8(model, n, bits, temperature=temperature, seed=seed, temper=temper)
    return image_grid(images, nrow=nrow)


def sample_images(model, n, temperature=1.0, seed=0, temper="base"):
    """The ``n`` seeded samples of :func:`sample_grid` as 8-bit uint8 images (n, C, H, W), not tiled
    (the grid's draw for the same ``n``; no upper limit on ``n``)."""
    n, temperature, seed = check_sample_request(n, temperature, seed, high=None)
    temper = check_temper(temper)
    with _SAMPLING:
        return samples_uint8(model, n, model_bits(model), temperature=temperature, seed=seed, temper=temper)


def upscale(grid, factor):
    """A (C, H, W) picture with every pixel repeated ``factor`` times each way (crisp when enlarged)."""
    factor = check_positive_int(factor, "factor")
    return grid.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)


def display_factor(grid, width=480):
    """The whole factor that brings a picture closest to ``width`` pixels wide, at least 1."""
    return max(1, round(width / grid.shape[-1]))


def png_bytes(grid, scale=1):
    """A uint8 (C, H, W) picture (C 1 or 3) as PNG bytes, pixels repeated ``scale`` times."""
    from PIL import Image

    if not isinstance(grid, torch.Tensor) or grid.dtype != torch.uint8 or grid.dim() != 3 or grid.shape[0] not in (1, 3):
        raise ValueError(f"expected a uint8 picture of shape (1 or 3, H, W), got "
                         f"{getattr(grid, 'dtype', type(grid).__name__)} {tuple(getattr(grid, 'shape', ()))}")
    grid = upscale(grid.detach().cpu(), scale)
    array = grid[0].numpy() if grid.shape[0] == 1 else grid.permute(1, 2, 0).contiguous().numpy()
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def file_name(run, settings):
    """A download name that says what the picture is."""
    temper = "" if settings.temper == "base" else f"-{settings.temper}"
    return (f"{run.model}-{run.dataset}{run.bits}-latent{run.latent_dim}-T{settings.temperature:g}{temper}"
            f"-n{settings.samples}-seed{settings.sample_seed}.png")


__all__ = ["LIMITS", "PRESET_TEMPERATURES", "RANDOMNESS", "TEMPER_LABELS", "TEMPER_MODES", "check_sample_request",
           "display_factor", "file_name", "model_bits", "png_bytes", "sample_grid", "sample_images", "upscale"]
