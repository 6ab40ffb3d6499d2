"""GAS, as MAF's ``datasets/gas.py`` preprocesses it (final dimension 8).

Raw file ``gas/ethylene_CO.pickle``: a pandas DataFrame, a random 25% of the rows of the UCI
"gas sensor array under dynamic gas mixtures" ethylene/CO recording, with columns ``Time``,
``Meth``, ``Eth`` and 16 sensor readings. It is read without pandas by
:mod:`funnelkit.data.maf.legacy_pickle`, which also reads the file as a pandas 1.3-3.x
re-pickles it and refuses, with a short message, a pickle that asks for more than its size
justifies. The steps, in MAF's order:

1. Drop the columns ``Meth``, ``Eth`` and ``Time``: 16 sensor columns are left.
2. Correlation filter: ``C`` the Pearson correlations of the columns (all rows), ``B`` the number
   of entries of each row of ``C`` above 0.98 (a column counts itself). While some ``B > 1``,
   drop the *first* such column in column order and compute ``C`` again.
3. Standardise with the column means and ddof-1 standard deviations of *all* rows, test rows
   included, as pandas computes them (this is before the split).
4. Split by row order, no shuffle (:func:`~funnelkit.data.maf.common.split_test_val_train`);
   float32.

The correlations are computed with numpy rather than pandas' own loop; the two can differ in
the last bits, which matters only for a pair correlated at exactly 0.98.
"""

import numpy as np

from ..cache import DatasetCorruptError
from .common import pandas_mean_std, split_test_val_train
from .legacy_pickle import LegacyPickleError, bounded, read_legacy_dataframe

DROPPED = ("Meth", "Eth", "Time")
THRESHOLD = 0.98
REMEDY = ("ethylene_CO.pickle in the MAF archive is a pickled pandas DataFrame with columns Time, "
          "Meth, Eth and 16 sensors; download the archive again.")


def pearson(data):
    """The Pearson correlation matrix of the columns of ``data`` (NaN for a constant column)."""
    centred = data - data.mean(axis=0)
    products = centred.T @ centred
    scale = np.sqrt(np.diag(products))
    with np.errstate(divide="ignore", invalid="ignore"):
        return products / np.outer(scale, scale)


def correlation_filter(data, names):
    """MAF's step 2: drop the first column correlated above 0.98 with another, until none is."""
    names = list(names)
    while True:
        counts = (pearson(data) > THRESHOLD).sum(axis=1)
        over = np.flatnonzero(counts > 1)
        if over.size == 0:
            return data, names
        data = np.delete(data, over[0], axis=1)
        del names[over[0]]


def preprocess(names, columns, source="gas/ethylene_CO.pickle"):
    """``(train, val, test)`` float32 from the frame's column names and columns."""
    missing = [name for name in DROPPED if name not in names]
    if missing:
        raise DatasetCorruptError(source, f"no column {missing} (columns: {bounded(names, 200)})",
                                  REMEDY)
    kept = [i for i, name in enumerate(names) if name not in DROPPED]
    if any(columns[i].dtype.kind not in "fiu" for i in kept):
        raise DatasetCorruptError(source, "the sensor columns are not all numeric", REMEDY)
    data = np.column_stack([columns[i].astype(np.float64) for i in kept])
    data, _ = correlation_filter(data, [names[i] for i in kept])
    mu, s = pandas_mean_std(data)
    if not np.all(s > 0):
        raise DatasetCorruptError(source, "a sensor column is constant", REMEDY)
    data = (data - mu) / s
    return tuple(x.astype(np.float32) for x in split_test_val_train(data, source))


def load(paths):
    """Read ``gas/ethylene_CO.pickle`` and preprocess it."""
    (path,) = paths
    try:
        names, columns = read_legacy_dataframe(path)
    except LegacyPickleError as error:
        raise DatasetCorruptError(path, str(error), REMEDY) from None
    return preprocess(names, columns, source=path)
