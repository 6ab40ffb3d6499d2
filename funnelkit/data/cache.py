"""The kit's cache folder, atomic writes into it, and the two errors a data file can raise.

The cache folder is ``$FUNNELKIT_CACHE`` when that variable is set, else
``~/.cache/funnelkit``. Loaders keep raw downloads and processed arrays below it (the MAF
tabular sets: ``maf/data/`` for the unpacked archive, ``maf/processed/`` for the splits).

Errors:

* :class:`DatasetNotFoundError` (a ``FileNotFoundError``): a file a loader needs is not
  there. Its message names the file, the place it was expected, where to download it and the
  manual steps, so a user without network access can fix it by hand.
* :class:`DatasetCorruptError` (a ``ValueError``): a file is there but is not what the loader
  expects (unreadable, wrong shape, wrong columns). Loaders raise it before they write anything
  to the cache.
"""

import os
from pathlib import Path

import numpy as np

from ..files import write_atomically
from ..paths import CACHE_ENV, cache_dir


class DatasetNotFoundError(FileNotFoundError):
    """A data file is missing. The message says which, where it belongs, and how to get it."""

    def __init__(self, file, expected_at, url, steps, dataset=None):
        self.file = str(file)
        self.expected_at = Path(expected_at)
        self.url = url
        self.steps = list(steps)
        self.dataset = dataset
        what = f"{dataset}: " if dataset else ""
        lines = [
            f"{what}data file not found: {self.file}",
            f"  expected at: {self.expected_at}",
            f"  download from: {url}",
            "  to install it by hand:",
        ]
        lines += [f"    {i}. {step}" for i, step in enumerate(self.steps, start=1)]
        message = "\n".join(lines)
        super().__init__(message)
        self.filename = str(self.expected_at)

    def __str__(self):  # FileNotFoundError would print "[Errno ...]" forms; keep the message whole
        return self.args[0]

    def __reduce__(self):  # picklable (multiprocessing data loaders), with its fields
        return type(self), (self.file, self.expected_at, self.url, self.steps, self.dataset)


class DatasetCorruptError(ValueError):
    """A data file exists but cannot be what the loader expects; nothing was cached from it."""

    def __init__(self, path, problem, remedy=None):
        self.path = Path(path)
        self.problem = problem
        message = f"{self.path}: {problem}"
        if remedy:
            message += f"\n  {remedy}"
        super().__init__(message)
        self.remedy = remedy

    def __reduce__(self):
        return type(self), (self.path, self.problem, self.remedy)


def save_npy_atomic(path, array):
    """Write ``array`` to ``path`` (a ``.npy`` file) through a temporary file and a rename.

    A reader never sees a half-written file, and an interrupted write leaves no ``.npy`` behind.
    """
    return write_atomically(path, lambda file: np.save(file, np.ascontiguousarray(array), allow_pickle=False))


def load_npy(path):
    """Load a ``.npy`` written by :func:`save_npy_atomic`; ``None`` when missing or unreadable."""
    try:
        return np.load(path, allow_pickle=False)
    except (FileNotFoundError, ValueError, EOFError, OSError):
        return None
