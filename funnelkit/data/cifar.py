"""Read CIFAR-10's python batches into a CHW uint8 array, without PIL (like NSF's CIFAR10Fast).

The archive ``cifar-10-python.tar.gz`` unpacks to ``cifar-10-batches-py/`` with
``data_batch_1`` ... ``data_batch_5`` (train, 10,000 images each) and ``test_batch``. Each is a
pickled dict (written by Python 2; read with ``encoding="latin1"``): ``data`` is a 10000 x 3072
uint8 array, per row 1024 red values, then green, then blue, each a row-major 32 x 32 image;
``labels`` a list of ints 0-9.

The pickles are read with an unpickler that only builds dicts, lists, strings and numpy
arrays, so a tampered file cannot run code. Files are checked against torchvision's md5 sums
unless the caller turns that off (tests do, on batches they made).
"""

import codecs
import hashlib
import pickle
from pathlib import Path

import numpy as np

from .cache import DatasetCorruptError

BASE_FOLDER = "cifar-10-batches-py"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
BATCHES = {
    "train": (("data_batch_1", "c99cafc152244af753f735de768cd75f"),
              ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
              ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
              ("data_batch_4", "634d18415352ddfa80567beed471001a"),
              ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb")),
    "test": (("test_batch", "40351d587109b95175f43aff81a1287e"),),
}

_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if (module, name) == ("_codecs", "encode"):  # how Python 3 pickles bytes at protocol 2
            return codecs.encode
        raise pickle.UnpicklingError(f"a CIFAR batch holds no {module}.{name}")


def md5(path, chunk=1 << 20):
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _key(entry, name):
    for key in (name, name.encode()):
        if key in entry:
            return entry[key]
    raise KeyError(name)


def read_batch(path):
    """``(images, labels)`` of one batch: uint8 (N, 3, 32, 32) and int64 (N,)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            entry = _ArrayUnpickler(f, encoding="latin1").load()
        data = np.asarray(_key(entry, "data"))
        labels = np.asarray(_key(entry, "labels"), dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError,
            AttributeError) as error:
        raise DatasetCorruptError(path, f"not a CIFAR-10 batch ({type(error).__name__}: {error})"
                                  ) from error
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DatasetCorruptError(path, f"'data' should be uint8 N x 3072, is {data.dtype} "
                                        f"{data.shape}")
    in_range = labels.size == 0 or 0 <= labels.min() <= labels.max() < 10
    if labels.shape != (data.shape[0],) or not in_range:
        raise DatasetCorruptError(path, "'labels' should be N ints in 0..9")
    return data.reshape(-1, 3, 32, 32), labels


def batch_paths(folder, split):
    """The batch files of ``split`` ("train" or "test") under ``folder`` with their md5 sums."""
    return [(Path(folder) / name, digest) for name, digest in BATCHES[split]]


def read_split(folder, split, check_md5=True):
    """All batches of ``split`` under ``folder`` (the ``cifar-10-batches-py`` folder)."""
    images, labels = [], []
    for path, digest in batch_paths(folder, split):
        if check_md5 and md5(path) != digest:
            raise DatasetCorruptError(path, f"md5 is not torchvision's {digest}",
                                      "delete the folder and download the archive again")
        x, y = read_batch(path)
        images.append(x)
        labels.append(y)
    return np.concatenate(images), np.concatenate(labels)
