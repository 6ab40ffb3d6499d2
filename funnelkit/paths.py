"""Where the kit's own files live: shipped runs and default output folders. Imports nothing heavy (the
dashboard reads these before torch is loaded)."""

import os
from pathlib import Path

#: The checkpoint file of a run folder (:mod:`funnelkit.checkpoints` writes it).
CHECKPOINT_NAME = "checkpoint.pt"

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("FUNNELKIT_DATA", REPO_ROOT / "data"))
#: The variable that moves the cache folder (:func:`cache_dir`).
CACHE_ENV = "FUNNELKIT_CACHE"
#: The shipped run folders, ``data/runs/<group>/<run>`` (:mod:`funnelkit.experiments.shipped`).
SHIPPED_RUNS = DATA_DIR / "runs"


def shown(path):
    """A path as a reader should see it: relative to the kit's folder when inside it (outputs are
    shared; the place of this checkout means nothing elsewhere), else as it is."""
    path = Path(path)
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def shown_in_text(text):
    """``text`` with the paths inside the kit's folder written relative to it (see :func:`shown`)."""
    return text.replace(f"{REPO_ROOT}{os.sep}", "")


def shipped_checkpoint(experiment, model, preset):
    """The ``checkpoint.pt`` of the shipped run of ``model`` in ``data/runs/<experiment>-<preset>/<model>``
    (it may not exist): ``shipped_checkpoint("four-circles", "f-nsf", "quick")``."""
    return SHIPPED_RUNS / f"{experiment}-{preset}" / model / CHECKPOINT_NAME



def cache_dir():
    """The cache folder: ``$FUNNELKIT_CACHE`` if set (and not empty), else ``~/.cache/funnelkit``.

    The folder is not created here; writers create what they need.
    """
    value = os.environ.get(CACHE_ENV, "").strip()
    if value:
        return Path(value).expanduser()
    return Path.home() / ".cache" / "funnelkit"
