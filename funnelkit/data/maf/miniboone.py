"""MINIBOONE, as MAF's ``datasets/miniboone.py`` preprocesses it (final dimension 43).

Raw file ``miniboone/data.npy``: N x 43, already cleaned by MAF's authors (their comments: the
UCI MiniBooNE text file, outlier rows with column 0 below -100 dropped, and the columns whose
smallest value occurs more than 5 times dropped). The loader then only:

1. splits by row order, no shuffle (:func:`~funnelkit.data.maf.common.split_test_val_train`);
2. standardises with the numpy mean/std (ddof 0) of train and validation stacked; float32.
"""

import numpy as np

from .common import load_matrix_npy, split_test_val_train, standardise_numpy

RAW_COLUMNS = 43
REMEDY = ("MINIBOONE's data.npy in the MAF archive is an N x 43 float array; download the "
          "archive again.")


def preprocess(data, source="miniboone/data.npy"):
    """``(train, val, test)`` float32 from the raw N x 43 array."""
    train, val, test = split_test_val_train(data, source)
    return tuple(x.astype(np.float32) for x in standardise_numpy(train, val, test))


def load(paths):
    """Read ``miniboone/data.npy`` and preprocess it."""
    (path,) = paths
    return preprocess(load_matrix_npy(path, RAW_COLUMNS, remedy=REMEDY), source=path)
