"""Atomic file writes: a temporary file in the same folder, flushed to disk, then a rename.

A reader never sees a half-written file. The temporary is removed on every exit Python can catch:
an exception, Ctrl-C (``KeyboardInterrupt``), and SIGTERM once the command line has turned it into
``SystemExit`` (:func:`funnelkit.cli.main`). A ``kill -9`` cannot be caught; the temporary is named
after its process (``.NAME.PID-<random>.tmp``), so the next :func:`funnelkit.locks.folder_lock` of
the folder knows that its writer is gone and removes it.

A write that the disk refuses (read-only, full, over quota, no permission) raises an ``OSError`` of
that errno naming ``path`` itself, not the temporary: the command line prints it as one line.
"""

import errno
import io
import os
import tempfile
from pathlib import Path

# What a disk says when it will not take a file: read-only, full, over quota, too big, not allowed.
DISK_ERRNOS = frozenset(getattr(errno, name) for name in ("EROFS", "ENOSPC", "EDQUOT", "EFBIG", "EACCES", "EPERM")
                        if hasattr(errno, name))


def write_atomically(path, write):
    """Call ``write(binary_file)`` on a temporary file, then rename it to ``path``."""
    path = Path(path)
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp",
                                                 dir=path.parent)
        raw = _RecordingFileIO(descriptor, "wb")
        try:
            with io.BufferedWriter(raw) as file:
                write(file)
                file.flush()
                os.fsync(file.fileno())  # a full disk may only say so here; and no empty file after a crash
        except Exception as error:
            if raw.error is not None and raw.error is not error:
                raise raw.error  # the disk's error, which a writer (torch.save) turned into its own
            if getattr(error, "errno", None) is None and _full(path.parent):  # numpy's tofile: a short write
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from error
            raise
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(temporary, path)
    except OSError as error:
        if error.errno in DISK_ERRNOS and _about(error.filename, path):
            # the temporary's name (or none, for a failed write) means nothing to the user: name the file
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
    return path


class _RecordingFileIO(io.FileIO):
    """A file that remembers the ``OSError`` of a failed write, for writers that replace it by theirs."""

    error = None

    def write(self, data):
        try:
            return super().write(data)
        except OSError as error:
            self.error = error
            raise


def _full(folder):
    """Whether the disk holding ``folder`` has no block left to give."""
    try:
        return os.statvfs(folder).f_bavail == 0
    except (OSError, AttributeError):  # no statvfs (Windows): cannot tell
        return False


def _about(filename, path):
    """Whether an error's file is part of writing ``path``: none, its temporary, or a folder above it."""
    if filename is None:
        return True
    filename = Path(os.fsdecode(filename))
    if filename.parent == path.parent and filename.name.startswith(f".{path.name}."):
        return True
    return filename == path or filename in path.parents


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
