"""HEPMASS, as MAF's ``datasets/hepmass.py`` preprocesses it (final dimension 21).

Raw files ``hepmass/1000_train.csv`` and ``hepmass/1000_test.csv`` (MAF's cut of the UCI
HEPMASS "1000" set): a header line, then one event per line, the class label first. The steps,
in MAF's order:

1. Keep the signal events (label == 1) of both files and drop the label column. Drop the last
   column of the test file as well (MAF: "Because the data set is messed up!").
2. Standardise both files with the train file's column means and ddof-1 standard deviations, as
   pandas computes them. The train file still holds the future validation rows here. pandas
   matches the test file's columns to the train statistics by name, so MAF's code only works
   when, after step 1, both files have the same column names: the test file carries one column
   more than the train file, at its end. The loader checks this; where the names differ (pandas
   would have filled the unmatched columns with NaN) it raises
   :class:`~funnelkit.data.cache.DatasetCorruptError`.
3. Remove the "features with too many re-occurring values", by MAF's count, quirk included:
   MAF sorts the ``Counter`` of a train column by value and takes the first count, i.e. the
   number of times the column's *smallest* value occurs, not the largest count. A column whose
   smallest value occurs more than 5 times is removed, from train and test alike.
4. Validation: the last ``int(0.1 * N)`` train rows; no shuffle. Test: all of the filtered
   test file. float32.

The CSV files are read with numpy, without pandas. numpy rounds each decimal to the nearest
double, where pandas' own parser can be one unit in the last place off; after the float32 cast
that difference is almost always gone.
"""

import numpy as np

from ..cache import DatasetCorruptError
from .common import pandas_mean_std, split_tail

REPEAT_LIMIT = 5
REMEDY = ("1000_train.csv and 1000_test.csv of the MAF archive are comma-separated with a "
          "header line and the class label first; download the archive again.")


def read_csv(path):
    """``(names, values)`` of a HEPMASS CSV: the header's names and a float64 matrix.

    Like ``pandas.read_csv(..., index_col=False)``, fields past the header's count on a line are
    ignored and empty fields read as NaN; a short line, a non-numeric field or no data raises
    ``DatasetCorruptError``.
    """
    try:
        with open(path, encoding="utf-8", newline="") as f:
            header = f.readline()
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetCorruptError(path, f"cannot read the header line ({error})", REMEDY) \
            from None
    names = header.rstrip("\r\n").split(",")
    if len(names) < 3:
        raise DatasetCorruptError(path, f"the header line {header[:80]!r} names fewer than 3 "
                                  "columns", REMEDY)
    options = dict(delimiter=",", skiprows=1, comments=None, dtype=np.float64,
                   usecols=range(len(names)), ndmin=2, encoding="utf-8")
    try:
        values = np.loadtxt(path, **options)
    except ValueError:
        try:  # slower: empty fields, which pandas reads as NaN
            values = np.loadtxt(path, converters=_float_or_nan, **options)
        except (ValueError, UnicodeDecodeError) as error:
            raise DatasetCorruptError(path, f"not a numeric CSV with {len(names)} columns "
                                      f"({error})", REMEDY) from None
    except UnicodeDecodeError as error:
        raise DatasetCorruptError(path, f"not a text CSV ({error})", REMEDY) from None
    if values.shape[0] == 0:
        raise DatasetCorruptError(path, "no data rows after the header", REMEDY)
    return names, values


def _float_or_nan(field):
    return float(field) if field.strip() else float("nan")


def smallest_value_count(column):
    """How often a column's smallest value occurs: MAF's ``sorted(Counter(col).items())[0][1]``."""
    return int(np.count_nonzero(column == column.min()))


def preprocess(train_csv, test_csv, sources=("hepmass/1000_train.csv", "hepmass/1000_test.csv")):
    """``(train, val, test)`` float32 from the two files' ``(names, values)``."""
    (train_names, train), (test_names, test) = train_csv, test_csv
    train_source, test_source = sources
    train = train[train[:, 0] == 1][:, 1:]
    train_names = train_names[1:]
    test = test[test[:, 0] == 1][:, 1:]
    test_names = test_names[1:]
    test, test_names = test[:, :-1], test_names[:-1]  # MAF: "the data set is messed up"
    if test_names != train_names:
        raise DatasetCorruptError(
            test_source, "after dropping the label and the last column its columns are "
            f"{test_names}, the train file's are {train_names}: MAF's pandas code matches them by "
            "name and would fill the unmatched ones with NaN", REMEDY)
    if train.shape[0] == 0:
        raise DatasetCorruptError(train_source, "no signal rows (label 1)", REMEDY)
    for data, source in ((train, train_source), (test, test_source)):
        if not np.all(np.isfinite(data)):
            raise DatasetCorruptError(source, "empty or non-finite values in the signal rows",
                                      REMEDY)
    mu, s = pandas_mean_std(train)
    if not np.all(s > 0):
        bad = [train_names[j] for j in np.flatnonzero(~(s > 0))]
        raise DatasetCorruptError(train_source, f"columns {bad} are constant over the signal "
                                  "rows; MAF's standardisation would divide by zero", REMEDY)
    train = (train - mu) / s
    test = (test - mu) / s
    keep = [j for j in range(train.shape[1]) if smallest_value_count(train[:, j]) <= REPEAT_LIMIT]
    train, test = train[:, keep], test[:, keep]
    train, val = split_tail(train, train_source)
    return train.astype(np.float32), val.astype(np.float32), test.astype(np.float32)


def load(paths):
    """Read both CSV files and preprocess them."""
    train_path, test_path = paths
    return preprocess(read_csv(train_path), read_csv(test_path), sources=(train_path, test_path))
