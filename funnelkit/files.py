"""Atomic file writes: a temporary file in the same folder, then a rename.

A reader never sees a half-written file, and an interrupted write leaves nothing behind.
"""

import os
import tempfile
from pathlib import Path


def write_atomically(path, write):
    """Call ``write(binary_file)`` on a temporary file, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
