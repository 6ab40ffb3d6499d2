"""Where the kit's own files live: shipped runs and default output folders."""

import os
from pathlib import Path

from .checkpoints import CHECKPOINT_NAME

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("FUNNELKIT_DATA", REPO_ROOT / "data"))
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
