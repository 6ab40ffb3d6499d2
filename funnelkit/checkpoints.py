"""Checkpoints: plain ``torch.save`` of ``{state_dict, config, metrics, versions, trainer}``.

Files are written atomically (a temporary file in the same folder, then a rename), so an
interrupted write never leaves a half file, and read with ``weights_only=True``: no pickled
classes, only tensors and plain Python values. Weights that hold NaN or infinity are refused
both ways: not saved, and not loaded (a damaged file). A model is rebuilt from its ``config`` by
:func:`funnelkit.models.build`.
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from . import __version__
from .device import pick_device
from .files import write_atomically
from .models import build
from .models.base import DensityModel
from .paths import CHECKPOINT_NAME

FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read or does not hold a funnelkit model."""


def versions():
    from importlib.metadata import version

    return {
        "funnelkit": _funnelkit_version(),
        "torch": str(torch.__version__),
        "nflows": version("nflows"),  # nflows has no __version__
        "python": platform.python_version(),
    }


def _funnelkit_version():
    return __version__


def resolve(path):
    """A checkpoint file, or the ``checkpoint.pt`` of a run folder."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}: expected a checkpoint file or a run folder holding "
            f"{CHECKPOINT_NAME} (made by `funnelkit train ... --out DIR`)"
        )
    return path


def save_checkpoint(path, model, metrics=None, trainer=None):
    """Write ``model`` (and optionally metrics and trainer state) to ``path`` atomically."""
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"refusing to save a model whose {name} holds NaN or infinity")
    payload = {
        "format": FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": dict(model.config),
        "dtype": str(model.dtype).removeprefix("torch."),
        "metrics": dict(metrics or {}),
        "versions": versions(),
        "trainer": trainer,
    }
    return write_atomically(path, lambda file: torch.save(payload, file))


#: Settings a model's config record may name by a name from before the kit's one vocabulary (the
#: README's "Vocabulary"), per builder, and today's name: old checkpoints and run folders keep the
#: names they were written with and load under today's (:func:`current_config`).
RENAMED_SETTINGS = {
    "tabular": {"training_steps": "steps", "learning_rate": "lr", "vae_learning_rate": "vae_lr"},
    "image": {"latent_size": "latent_dim"},
}


def current_config(config):
    """A model's config record with today's names: the one place that translates the old names of
    :data:`RENAMED_SETTINGS` (read from a checkpoint by :func:`read_checkpoint`, from a
    ``metrics.json`` by :func:`funnelkit.runs.translate_legacy`). A current record is returned as it is."""
    renamed = RENAMED_SETTINGS.get(config.get("builder"), {}) if isinstance(config, dict) else {}
    overrides = config.get("overrides") if renamed else None
    if not isinstance(overrides, dict) or not renamed.keys() & overrides.keys():
        return config
    return {**config, "overrides": {renamed.get(name, name): value for name, value in overrides.items()}}


def read_checkpoint(path):
    """The payload of a checkpoint file or run folder, checked; raises :class:`CheckpointError`."""
    path = resolve(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"{path} is not a readable funnelkit checkpoint ({type(error).__name__}: {error})") from None
    if not isinstance(payload, dict) or not {"state_dict", "config"} <= payload.keys():
        raise CheckpointError(f"{path} is not a funnelkit checkpoint: expected keys state_dict and config")
    check_finite(payload["state_dict"], path)
    return {**payload, "config": current_config(payload["config"])}


def check_finite(state_dict, path):
    """Raise :class:`CheckpointError` when a floating tensor of ``state_dict`` holds NaN or infinity.

    :func:`save_checkpoint` never writes such weights, so a file that holds them was damaged or
    made elsewhere; loading it would give a model whose every log-likelihood is NaN.
    """
    if not isinstance(state_dict, dict):
        raise CheckpointError(f"{path} is not a funnelkit checkpoint: its state_dict is a "
                              f"{type(state_dict).__name__}, not a dict of tensors")
    bad = []
    for name, tensor in state_dict.items():
        if not isinstance(tensor, torch.Tensor) or not (tensor.is_floating_point() or tensor.is_complex()):
            continue
        # A finite sum proves every value finite (NaN and infinity propagate) at a twentieth of the
        # time of isfinite on this CPU; an overflowing sum falls through to the exact count.
        if tensor.numel() and not torch.isfinite(tensor.sum()):
            count = tensor.numel() - int(torch.isfinite(tensor).sum())
            if count:
                bad.append((name, count, tensor.numel()))
    if bad:
        name, count, total = bad[0]
        others = f" (and {len(bad) - 1} more tensor(s))" if len(bad) > 1 else ""
        raise CheckpointError(
            f"{path} holds non-finite weights: {name} has {count:,} NaN or infinite value(s) of {total:,}{others}; "
            f"the file is damaged: train again, or use an earlier checkpoint")


def load(path: str | Path, device: str | torch.device = "cpu") -> DensityModel:
    """The model of a checkpoint file or run folder, in eval mode, ready to use.

    ``device``: auto, cpu, cuda, cuda:N, mps or a torch.device, checked by
    :func:`funnelkit.device.pick_device` before the file is read."""
    device = pick_device(device)
    payload = read_checkpoint(path)
    model = build(payload["config"]).to(getattr(torch, payload.get("dtype", "float32")))
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        raise CheckpointError(f"{resolve(path)} does not match its model config: {error}") from None
    model.metrics = payload.get("metrics", {})
    return model.to(device).eval()
