"""POWER, as MAF's ``datasets/power.py`` preprocesses it (final dimension 6).

Raw file ``power/data.npy``: the UCI "individual household electric power consumption" data,
N x 8 columns: global active power, global reactive power, voltage, global intensity,
sub-metering 1, 2, 3, time. The steps, in MAF's order (the order of the random draws fixes
every value):

1. ``rng = np.random.RandomState(42)``; ``rng.shuffle(data)`` shuffles the rows in place.
2. Delete column 3 (global intensity), then column 1 (global reactive power). Left: global
   active power, voltage, sub-metering 1-3, time.
3. Uniform noise from the same ``rng``, drawn in this order: voltage ``0.01 * rand(N, 1)``,
   then global active power ``0.001 * rand(N, 1)``, then sub-metering ``rand(N, 3)``; time
   gets zeros. The noise is stacked in column order and added.
4. Split by row order (:func:`~funnelkit.data.maf.common.split_test_val_train`).
5. Standardise with the numpy mean/std (ddof 0) of train and validation stacked; float32.

The legacy ``RandomState`` stream is frozen by numpy, so the splits are the same on every
numpy version; ``default_rng`` would give other values.
"""

import numpy as np

from .common import load_matrix_npy, split_test_val_train, standardise_numpy

RAW_COLUMNS = 8
SEED = 42
REMEDY = "POWER's data.npy in the MAF archive is an N x 8 float array; download the archive again."


def preprocess(data, source="power/data.npy"):
    """``(train, val, test)`` float32 from the raw N x 8 array (which is shuffled in place)."""
    rng = np.random.RandomState(SEED)
    rng.shuffle(data)
    n = data.shape[0]
    data = np.delete(data, 3, axis=1)
    data = np.delete(data, 1, axis=1)
    voltage_noise = 0.01 * rng.rand(n, 1)
    gap_noise = 0.001 * rng.rand(n, 1)
    sm_noise = rng.rand(n, 3)
    time_noise = np.zeros((n, 1))
    data = data + np.hstack((gap_noise, voltage_noise, sm_noise, time_noise))
    train, val, test = split_test_val_train(data, source)
    return tuple(x.astype(np.float32) for x in standardise_numpy(train, val, test))


def load(paths):
    """Read ``power/data.npy`` and preprocess it."""
    (path,) = paths
    data = load_matrix_npy(path, RAW_COLUMNS, remedy=REMEDY)
    return preprocess(data, source=path)
