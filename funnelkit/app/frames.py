"""What the Train tab draws, as plain numpy (:class:`Pictures`, :class:`Opening`), and the opening frame of a
shipped model kept on disk, so that a server just started draws its first page before torch is loaded.

:func:`funnelkit.app.live.opening_view` makes an :class:`Opening` from the shipped checkpoint (torch, the
model, a density grid: two seconds in a fresh process, most of it importing torch); :func:`write_opening`
keeps it in the cache folder (``$FUNNELKIT_CACHE``, else ``~/.cache/funnelkit``), and :func:`read_opening`
gives it back with numpy alone. The file's name is a hash of everything the frame depends on (the
checkpoint's path, size and time, the settings, the device chosen, the picture's size, the versions of
funnelkit, torch and nflows, and the source of the code that draws it), so a changed model or kit makes a
new frame instead of showing a stale one. Nothing here imports torch.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from ..files import write_atomically
from ..paths import cache_dir

FORMAT = 1
#: The code that draws an opening frame: a change to any of these files makes new frames.
DRAWN_BY = ("app/live.py", "app/frames.py", "grid.py", "models/plane.py", "models/plane_sizes.py",
            "data/toys.py", "data/four_circles.py", "device.py")
_PACKAGE = Path(__file__).resolve().parents[1]
_ARRAYS = ("axis", "log_density", "samples", "data", "losses", "steps")


RECENT_STEPS = 20  # the steps behind the loss a page shows as a number


def recent_loss(losses) -> float | None:
    """The mean loss of the last :data:`RECENT_STEPS` steps (nats), or ``None`` before the first step: the
    "loss" number of the Train tab and of a room, whatever holds the history (a list or an array)."""
    tail = np.asarray(losses[-RECENT_STEPS:], dtype=np.float64)
    return float(tail.mean()) if tail.size else None


@dataclass
class Pictures:
    """What the Train tab draws, as numpy arrays (computed at ``step``)."""

    step: int
    axis: np.ndarray  # (R,) cell centres of the grid, on both axes
    log_density: np.ndarray  # (R, R): log p(x1_j, x2_i) at row i, column j
    samples: np.ndarray  # (n, 2) model samples
    data: np.ndarray  # (m, 2) data points


@dataclass(frozen=True)
class Opening:
    """What the Train tab shows of a shipped model before its session's run exists: made from the
    checkpoint without a Trainer, so a page can draw it first and build the run after."""

    iteration: int
    losses: list  # the training loss per step, as in ``trainer.history["loss"]``
    steps: list
    source: str
    parameters: int
    pictures: Pictures
    reference: float | None  # the true density's loss, as :meth:`funnelkit.app.live.LiveRun.reference_nll`
    key: tuple  # what identifies this opening across sessions: checkpoint path and time, device, seed (live.opening_view)
    lr: float  # the rate Play goes on at (:func:`funnelkit.app.live.continue_lr`)

    @property
    def last_loss(self):
        return recent_loss(self.losses)

    @property
    def device(self) -> str:
        return self.key[2]


@functools.cache
def installed_versions() -> dict:
    """The installed versions of funnelkit, torch and nflows (from the packages' metadata: no torch import;
    read once per process)."""
    found = {}
    for package in ("funnelkit", "torch", "nflows"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


@functools.cache
def _code_hash():
    digest = hashlib.sha256()
    for name in DRAWN_BY:
        digest.update((_PACKAGE / name).read_bytes())
    return digest.hexdigest()


def frame_path(settings, device_choice: str, resolution: int, n_samples: int) -> Path | None:
    """Where the opening frame of ``settings`` (a :class:`funnelkit.app.live_settings.LiveSettings`) is
    kept, or ``None`` when the settings have no shipped model."""
    checkpoint = settings.pretrained_path()
    if checkpoint is None:
        return None
    stat = checkpoint.stat()
    what = {"format": FORMAT, "checkpoint": [str(checkpoint), stat.st_size, stat.st_mtime_ns],
            "settings": settings.to_dict(), "device": device_choice, "resolution": resolution,
            "samples": n_samples, "versions": installed_versions(), "code": _code_hash()}
    name = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:24]
    return cache_dir() / "dashboard" / f"opening-{name}.npz"


def write_opening(opening: Opening, settings, device_choice: str, resolution: int, n_samples: int) -> Path | None:
    """Keep ``opening`` on disk for :func:`read_opening`; returns the file (``None`` without a shipped model)."""
    path = frame_path(settings, device_choice, resolution, n_samples)
    if path is None:
        return None
    p = opening.pictures
    arrays = {"axis": p.axis, "log_density": p.log_density, "samples": p.samples, "data": p.data,
              "losses": np.asarray(opening.losses, dtype=np.float64), "steps": np.asarray(opening.steps)}
    scalars = {k: v for k, v in asdict(opening).items() if k not in ("pictures", "losses", "steps")}
    scalars["picture_step"] = p.step
    write_atomically(path, lambda file: np.savez(file, scalars=np.asarray(json.dumps(scalars)), **arrays))
    return path


def read_opening(settings, device_choice: str, resolution: int, n_samples: int) -> Opening | None:
    """The opening frame kept by :func:`write_opening` for exactly these settings, device choice, picture
    size, checkpoint and code; ``None`` when there is none (or it cannot be read: it is made again)."""
    try:
        path = frame_path(settings, device_choice, resolution, n_samples)
    except OSError:
        return None
    if path is None or not path.is_file():
        return None
    return _read(path, path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _read(path, mtime_ns):
    try:
        with np.load(path, allow_pickle=False) as stored:
            scalars = json.loads(str(stored["scalars"]))
            arrays = {name: stored[name] for name in _ARRAYS}
    except (OSError, ValueError, KeyError):
        return None
    pictures = Pictures(scalars.pop("picture_step"), arrays["axis"], arrays["log_density"], arrays["samples"],
                        arrays["data"])
    scalars["key"] = tuple(scalars["key"])
    return Opening(losses=arrays["losses"].tolist(), steps=arrays["steps"].tolist(), pictures=pictures, **scalars)


__all__ = ["Opening", "Pictures", "RECENT_STEPS", "recent_loss", "frame_path", "installed_versions", "read_opening", "write_opening"]
