"""BSDS300, as MAF's ``datasets/bsds300.py`` reads it (dimension 63; no preprocessing).

Raw file ``BSDS300/BSDS300.hdf5`` with three datasets ``train``, ``validation`` and ``test``,
each N x 63: 8 x 8 monochrome patches of the Berkeley segmentation images, dequantised and
scaled to [0, 1], with each patch's mean removed and its bottom-right pixel dropped (it is
minus the sum of the other 63). MAF splits nothing and normalises nothing here: the loader reads
each dataset as it is and casts it to float32. Reading HDF5 needs ``h5py``.
"""

import numpy as np

from ..cache import DatasetCorruptError

DIM = 63
KEYS = {"train": "train", "val": "validation", "test": "test"}
REMEDY = ("BSDS300.hdf5 in the MAF archive holds datasets train, validation and test, each "
          "N x 63; download the archive again.")


def _h5py():
    try:
        import h5py  # only BSDS300's file needs h5py: the other tabular sets load without it
    except ImportError:
        raise ImportError("reading BSDS300/BSDS300.hdf5 needs h5py: pip install 'h5py>=3.8'") \
            from None
    return h5py


def load(paths):
    """``(train, val, test)`` float32, read as they are from the HDF5 file."""
    (path,) = paths
    h5py = _h5py()
    try:
        with h5py.File(path, "r") as f:
            missing = [key for key in KEYS.values() if key not in f]
            if missing:
                raise DatasetCorruptError(path, f"no dataset {missing} in the HDF5 file "
                                          f"(found {sorted(f.keys())})", REMEDY)
            splits = tuple(np.array(f[KEYS[split]]) for split in ("train", "val", "test"))
    except OSError as error:
        raise DatasetCorruptError(path, f"not a readable HDF5 file ({error})", REMEDY) from None
    for key, x in zip(KEYS.values(), splits):
        if x.ndim != 2 or x.shape[1] != DIM or x.dtype.kind not in "fiu":
            raise DatasetCorruptError(path, f"dataset {key!r} should be numeric N x {DIM}, "
                                      f"found {x.dtype} {x.shape}", REMEDY)
    return tuple(x.astype(np.float32) for x in splits)
