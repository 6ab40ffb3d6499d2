"""Read the idx format of MNIST and Fashion-MNIST (plain or gzip-compressed), checking every part.

An idx file is a big-endian header, then the raw values in C order:

* 2 zero bytes, one type byte (``0x08`` = unsigned byte, the only type MNIST uses), one byte
  with the number of dimensions ``n``;
* ``n`` big-endian uint32 sizes;
* the ``prod(sizes)`` values.

So an image file starts with the magic number ``0x00000803`` (3 dimensions: N, rows, columns;
a 16-byte header) and a label file with ``0x00000801`` (1 dimension; an 8-byte header).

:func:`read_idx` checks the magic number against the kind of file asked for, and the sizes
against the file's length *before* it reads the values (a plain file's length is known; a
gzip file is read in pieces and may not yield more than its header promised).
:func:`read_idx_set` reads an images file and its labels file and checks that they pair up:
the same count, the expected image size of the dataset, labels below the number of classes.
Every error is a :class:`~funnelkit.data.cache.DatasetCorruptError` (a ``ValueError``) whose
message starts with the file's path; nothing is written anywhere.
"""

import gzip
import os
import struct
from pathlib import Path

import numpy as np

from .cache import DatasetCorruptError

_UBYTE = 0x08
MAGIC = {"images": 0x00000803, "labels": 0x00000801}
_KIND_OF_MAGIC = {magic: kind for kind, magic in MAGIC.items()}
_CHUNK = 1 << 22
_GZIP_MAX_RATIO = 1032  # deflate cannot expand data by more than about 1032:1


def _open(path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _header(f, path, expect):
    """``(shape, header length)`` from the start of an idx file, checked against ``expect``."""
    head = f.read(4)
    if len(head) < 4:
        raise DatasetCorruptError(path, f"only {len(head)} bytes, too short for an idx header")
    zero, dtype, ndim = struct.unpack(">HBB", head)
    magic = struct.unpack(">I", head)[0]
    if zero != 0 or dtype != _UBYTE or ndim == 0:
        raise DatasetCorruptError(path, f"not an idx file of unsigned bytes (magic 0x{magic:08x}; "
                                        "expected 0x00000801 for labels or 0x00000803 for images)")
    if expect is not None and magic != MAGIC[expect]:
        found = _KIND_OF_MAGIC.get(magic, f"{ndim}-dimensional data")
        found = f"{found} file" if magic in _KIND_OF_MAGIC else found
        raise DatasetCorruptError(path, f"expected an idx {expect} file (magic 0x{MAGIC[expect]:08x}), "
                                        f"found magic 0x{magic:08x} (a {found}); are the images "
                                        "and labels files swapped?")
    sizes = f.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise DatasetCorruptError(path, f"the idx header of {ndim} dimensions is cut short")
    return struct.unpack(f">{ndim}I", sizes), 4 + 4 * ndim


def read_idx(path, expect=None):
    """The uint8 array stored in the idx file ``path`` (``.gz`` files are decompressed).

    ``expect`` is ``None`` (any idx file of unsigned bytes), ``"images"`` (magic 0x00000803) or
    ``"labels"`` (magic 0x00000801). Raises :class:`~funnelkit.data.cache.DatasetCorruptError`
    naming ``path`` when the header is not that, or the values are fewer or more than the
    header's sizes; the sizes are checked against the file's length before the values are read.
    """
    path = Path(path)
    if expect not in (None, *MAGIC):
        raise ValueError(f"expect must be None, 'images' or 'labels', got {expect!r}")
    try:
        file_size = os.stat(path).st_size
        with _open(path) as f:
            shape, header = _header(f, path, expect)
            expected = int(np.prod(shape, dtype=object))
            limit = file_size * _GZIP_MAX_RATIO if path.suffix == ".gz" else file_size - header
            if expected > limit or (path.suffix != ".gz" and expected != limit):
                raise DatasetCorruptError(
                    path, f"header promises {expected} values of shape {shape}, the "
                          f"{file_size}-byte file holds " + (
                              f"at most {limit}" if path.suffix == ".gz" else f"{limit}"))
            if path.suffix == ".gz":  # read in pieces: never more than the stream really yields
                values = bytearray()
                while len(values) < expected:
                    piece = f.read(min(_CHUNK, expected - len(values)))
                    if not piece:
                        break
                    values += piece
                got = len(values)
            else:  # the length is checked above: read straight into the array
                values = np.empty(expected, dtype=np.uint8)
                got = f.readinto(memoryview(values)) if expected else 0
            extra = f.read(1)
    except (OSError, EOFError) as error:  # gzip.BadGzipFile is an OSError
        raise DatasetCorruptError(path, f"cannot read the file ({type(error).__name__}: "
                                        f"{str(error)[:200]})") from None
    if got != expected or extra:
        held = f"{got}" if not extra else f"more than {expected}"
        raise DatasetCorruptError(path, f"header promises {expected} values of shape {shape}, "
                                        f"the file holds {held}")
    return np.frombuffer(values, dtype=np.uint8).reshape(shape)


def read_idx_set(images_path, labels_path, image_shape=(28, 28), n_classes=10, dataset="MNIST",
                 remedy=None):
    """``(images, labels)``: uint8 (N, H, W) and uint8 (N,) from an images and a labels idx file.

    Checks, each failure a :class:`~funnelkit.data.cache.DatasetCorruptError` naming the file:
    the magic numbers (so swapped files are caught), ``(H, W) == image_shape``, at least one
    image, the same N in both files, and every label below ``n_classes``.
    """
    images = read_idx(images_path, expect="images")
    if images.shape[1:] != tuple(image_shape):
        raise DatasetCorruptError(images_path, f"holds images of {images.shape[1]}x"
                                               f"{images.shape[2]}; {dataset} images are "
                                               f"{image_shape[0]}x{image_shape[1]}", remedy)
    if images.shape[0] == 0:
        raise DatasetCorruptError(images_path, "holds no images", remedy)
    labels = read_idx(labels_path, expect="labels")
    if labels.shape[0] != images.shape[0]:
        raise DatasetCorruptError(labels_path, f"holds {labels.shape[0]} labels, but its images "
                                               f"file {Path(images_path).name} holds "
                                               f"{images.shape[0]} images", remedy)
    if labels.size and labels.max() >= n_classes:
        first = int(np.argmax(labels >= n_classes))
        raise DatasetCorruptError(labels_path, f"label {int(labels[first])} at position {first}; "
                                               f"{dataset} labels are 0..{n_classes - 1}", remedy)
    return images, labels


def write_idx(path, array):
    """Write a uint8 array as an idx file (gzip-compressed when ``path`` ends in ``.gz``).

    The inverse of :func:`read_idx`; tests use it to make files in the exact format.
    """
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8 or array.ndim == 0:
        raise ValueError(f"expected a uint8 array with at least one dimension, got "
                         f"{array.dtype} of shape {array.shape}")
    data = struct.pack(">HBB", 0, _UBYTE, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data += array.tobytes()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(data)
    return path
