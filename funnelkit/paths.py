"""Where the kit's own files live: shipped checkpoints and default output folders."""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("FUNNELKIT_DATA", REPO_ROOT / "data"))
SHIPPED_CHECKPOINTS = DATA_DIR / "checkpoints"


def shipped_checkpoint(experiment, model, preset):
    """The path of a checkpoint shipped in ``data/checkpoints`` (it may not exist)."""
    return SHIPPED_CHECKPOINTS / f"{experiment}-{model}-{preset}.pt"
