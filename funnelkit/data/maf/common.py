"""The steps the MAF loaders share: the split by row order and the two standardisations.

* Split (every set but BSDS300): MAF never draws a random split. The last ``int(0.1 * N)``
  rows are held out (the test set, or HEPMASS's validation set); for the validation set the rule
  is applied again to what is left, ``int(0.1 * N_left)``.
* Standardisation with numpy (POWER, MINIBOONE): mean and ``std`` (ddof 0) of the train and
  validation rows stacked, ``np.vstack((train, val)).mean(axis=0)``, applied to all splits.
* Standardisation as pandas computes it (GAS, HEPMASS): ``DataFrame.mean()`` and
  ``DataFrame.std()`` (ddof 1), each column reduced on its own.
"""

import numpy as np

from ..cache import DatasetCorruptError


def split_tail(data, source):
    """``(head, tail)``: ``tail`` is the last ``int(0.1 * len(data))`` rows, as MAF cuts them.

    MAF writes ``data[-n:]``, which for ``n == 0`` would take every row; a file that short is
    not an archive file, and :class:`DatasetCorruptError` says so.
    """
    n_tail = int(0.1 * data.shape[0])
    if n_tail < 1:
        raise DatasetCorruptError(
            source, f"only {data.shape[0]} rows reach this split; MAF holds out the last 10% "
            "of the rows, which needs at least 10")
    return data[:-n_tail], data[-n_tail:]


def split_test_val_train(data, source):
    """MAF's ``(train, val, test)``: test the last 10%, validation the last 10% of the rest."""
    rest, test = split_tail(data, source)
    train, val = split_tail(rest, source)
    return train, val, test


def standardise_numpy(train, val, test):
    """MAF's POWER/MINIBOONE rule: numpy mean/std (ddof 0) of ``vstack(train, val)``."""
    both = np.vstack((train, val))
    mu = both.mean(axis=0)
    s = both.std(axis=0)
    return (train - mu) / s, (val - mu) / s, (test - mu) / s


def pandas_mean_std(data):
    """Column means and ddof-1 standard deviations as ``DataFrame.mean()/.std()`` give them.

    pandas stores a float frame column by column and reduces each contiguous column with
    numpy's sum: ``mean = sum(x) / n``, ``var = sum((mean - x)**2) / (n - 1)``. Working on the
    transposed, contiguous copy keeps that order of summation (numpy's pairwise sum).
    """
    columns = np.ascontiguousarray(np.asarray(data, dtype=np.float64).T)
    n = columns.shape[1]
    mean = columns.sum(axis=1) / n
    var = ((mean[:, None] - columns) ** 2).sum(axis=1) / (n - 1)
    return mean, np.sqrt(var)


def load_matrix_npy(path, n_columns, remedy):
    """A raw ``.npy`` matrix of the archive (POWER, MINIBOONE): 2-D, numeric, ``n_columns`` wide.

    Anything else (not a ``.npy``, truncated, pickled objects, wrong shape) raises
    :class:`DatasetCorruptError`.
    """
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as error:
        raise DatasetCorruptError(path, f"not a readable .npy array ({error})", remedy) from None
    if data.ndim != 2 or data.shape[1] != n_columns or data.dtype.kind not in "fiu":
        raise DatasetCorruptError(
            path, f"expected a numeric array of shape (N, {n_columns}), found {data.dtype} "
            f"{data.shape}", remedy)
    return data
