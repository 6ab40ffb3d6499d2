"""Read the idx format of MNIST and Fashion-MNIST (plain or gzip-compressed).

An idx file is a big-endian header, then the raw values in C order:

* 2 zero bytes, one type byte (``0x08`` = unsigned byte, the only type MNIST uses), one byte
  with the number of dimensions ``n``;
* ``n`` big-endian uint32 sizes;
* the ``prod(sizes)`` values.

So an image file starts with the magic number ``0x00000803`` (3 dimensions: N, rows, columns;
a 16-byte header) and a label file with ``0x00000801`` (1 dimension; an 8-byte header).
"""

import gzip
import struct
from pathlib import Path

import numpy as np

from .cache import DatasetCorruptError

_UBYTE = 0x08


def read_idx(path):
    """The uint8 array stored in the idx file ``path`` (``.gz`` files are decompressed).

    Raises :class:`~funnelkit.data.cache.DatasetCorruptError` when the header is not an idx
    header of unsigned bytes or the payload has the wrong length.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as error:  # gzip.BadGzipFile is an OSError
        raise DatasetCorruptError(path, f"cannot read the file ({error})") from error
    if len(raw) < 4:
        raise DatasetCorruptError(path, "too short for an idx header")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != _UBYTE or ndim == 0:
        magic = struct.unpack(">I", raw[:4])[0]
        raise DatasetCorruptError(path, f"not an idx file of unsigned bytes (magic 0x{magic:08x}; "
                                        "expected 0x00000801 for labels or 0x00000803 for images)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetCorruptError(path, "the idx header is cut short")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != expected:
        raise DatasetCorruptError(path, f"header promises {expected} values of shape {shape}, "
                                        f"the file holds {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


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
