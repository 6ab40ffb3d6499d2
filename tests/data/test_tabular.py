"""The MAF tabular loaders on small files in the archive's exact raw formats, made here.

Each set goes through the real preprocessing and is checked for its dimension, its split sizes
(MAF's 10% rules), its statistics, and against an oracle: the same splits computed a second
way in this file with plain numpy (and, where pandas is installed, with MAF's own pandas
steps), following the documented steps. The GAS pickle is written the way Python 2 and an old
pandas wrote it (protocol 2, byte strings, ``numpy.core`` paths, a BlockManager state).
"""

import importlib
import os
import pickle
import pickletools
import struct
from collections import Counter

import numpy as np
import pytest

from funnelkit.data import cache as cache_module
from funnelkit.data.cache import DatasetCorruptError, DatasetNotFoundError, cache_dir
from funnelkit.data.maf import gas as gas_module
from funnelkit.data.maf import miniboone as miniboone_module
from funnelkit.data.maf.legacy_pickle import LegacyPickleError, read_legacy_dataframe
from funnelkit.data.tabular import TABULAR_DATASETS, processed_dir, tabular

SPLITS = ("train", "val", "test")
# The module itself (funnelkit.data.tabular, the attribute, is the function of the same name).
tabular_module = importlib.import_module("funnelkit.data.tabular")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FUNNELKIT_CACHE", str(tmp_path / "cache"))


def maf_sizes(n):
    """MAF's split sizes for n rows: test int(0.1 n), validation int(0.1 (n - test))."""
    n_test = int(0.1 * n)
    n_val = int(0.1 * (n - n_test))
    return n - n_test - n_val, n_val, n_test


def load_all(name, root):
    return tuple(tabular(name, split, root=root) for split in SPLITS)


def cached_files(root, name):
    folder = processed_dir(name, root)
    return sorted(p.name for p in folder.glob("*.npy")) if folder.exists() else []


# ---------------------------------------------------------------- POWER

def write_power(root, n=4000, seed=1):
    """N x 8 like the archive's: active/reactive power, voltage, intensity, sub-metering, time."""
    rng = np.random.default_rng(seed)
    data = np.column_stack([
        np.round(rng.gamma(2.0, 0.6, n), 3),          # global active power (kW)
        np.round(rng.gamma(1.5, 0.08, n), 3),         # global reactive power
        np.round(240 + 3 * rng.standard_normal(n), 2),  # voltage
        np.round(rng.gamma(2.0, 2.5, n), 1),          # global intensity
        rng.integers(0, 40, n).astype(float),         # sub-metering 1-3 (integers, Wh)
        rng.integers(0, 3, n).astype(float),
        rng.integers(0, 20, n).astype(float),
        np.round(rng.uniform(0, 24, n), 4),           # time of day
    ])
    (root / "power").mkdir(parents=True, exist_ok=True)
    np.save(root / "power" / "data.npy", data)
    return data


def power_oracle(raw, order=("voltage", "gap", "sm")):
    """POWER the second way: a permutation of indices, then the noise draws of the named order."""
    rs = np.random.RandomState(42)
    data = raw[rs.permutation(raw.shape[0])]
    n = data.shape[0]
    scale_and_width = {"voltage": (0.01, 1), "gap": (0.001, 1), "sm": (1.0, 3)}
    draws = {}
    for what in order:
        scale, width = scale_and_width[what]
        draws[what] = scale * rs.rand(n, width)
    kept = data[:, [0, 2, 4, 5, 6, 7]].copy()   # column 3 (intensity), then 1 (reactive) removed
    kept[:, 0:1] += draws["gap"]
    kept[:, 1:2] += draws["voltage"]
    kept[:, 2:5] += draws["sm"]
    n_train, n_val, _ = maf_sizes(n)
    train, val, test = kept[:n_train], kept[n_train:n_train + n_val], kept[n_train + n_val:]
    both = np.concatenate([train, val])
    mu, s = both.mean(axis=0), both.std(axis=0)
    return tuple(((x - mu) / s).astype(np.float32) for x in (train, val, test))


def test_power_matches_the_documented_steps(tmp_path):
    raw = write_power(tmp_path)
    train, val, test = load_all("power", tmp_path)
    assert (train.shape, val.shape, test.shape) == ((3240, 6), (360, 6), (400, 6))
    assert tuple(len(x) for x in (train, val, test)) == maf_sizes(4000)
    assert all(x.dtype == np.float32 for x in (train, val, test))
    both = np.concatenate([train, val]).astype(np.float64)
    np.testing.assert_allclose(both.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(both.std(axis=0), 1, atol=1e-5)
    for got, want in zip((train, val, test), power_oracle(raw)):
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-6)
    # The comparison catches a change in the order of the draws: any other order differs by
    # far more than the tolerance.
    for order in (("gap", "voltage", "sm"), ("sm", "voltage", "gap")):
        assert np.abs(train - power_oracle(raw, order=order)[0]).max() > 1e-3


def test_power_shuffle_is_the_seeded_legacy_stream(tmp_path):
    """Rows are those of RandomState(42).permutation: time (no noise) identifies each row."""
    raw = write_power(tmp_path, n=1000)
    train, val, test = load_all("power", tmp_path)
    out = np.concatenate([train, val, test]).astype(np.float64)
    n_train, n_val, _ = maf_sizes(1000)
    time = raw[:, 7][np.random.RandomState(42).permutation(1000)]
    ref = time[:n_train + n_val]
    np.testing.assert_allclose(out[:, 5], (time - ref.mean()) / ref.std(), atol=2e-6)


# ---------------------------------------------------------------- MINIBOONE

def write_miniboone(root, n=2000, seed=2):
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((n, 43)) * rng.uniform(0.5, 50, 43) + rng.uniform(-10, 10, 43)
    (root / "miniboone").mkdir(parents=True, exist_ok=True)
    np.save(root / "miniboone" / "data.npy", data)
    return data


def test_miniboone_split_by_order_and_standardised(tmp_path):
    raw = write_miniboone(tmp_path)
    train, val, test = load_all("MINIBOONE", tmp_path)
    assert (train.shape, val.shape, test.shape) == ((1620, 43), (180, 43), (200, 43))
    head = raw[:1800]
    mu, s = head.mean(axis=0), head.std(axis=0)
    np.testing.assert_allclose(train, (raw[:1620] - mu) / s, atol=2e-6)
    np.testing.assert_allclose(val, (raw[1620:1800] - mu) / s, atol=2e-6)
    np.testing.assert_allclose(test, (raw[1800:] - mu) / s, atol=2e-6)
    both = np.concatenate([train, val]).astype(np.float64)
    np.testing.assert_allclose(both.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(both.std(axis=0), 1, atol=1e-5)


# ---------------------------------------------------------------- BSDS300

def write_bsds300(root, sizes=(500, 60, 70), seed=3, keys=("train", "validation", "test")):
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(seed)
    arrays = {key: rng.uniform(-0.5, 0.5, (n, 63)) for key, n in zip(keys, sizes)}
    (root / "BSDS300").mkdir(parents=True, exist_ok=True)
    with h5py.File(root / "BSDS300" / "BSDS300.hdf5", "w") as f:
        for key, x in arrays.items():
            f.create_dataset(key, data=x)
    return arrays


def test_bsds300_is_read_as_stored(tmp_path):
    arrays = write_bsds300(tmp_path)
    train, val, test = load_all("bsds300", tmp_path)
    for got, key in zip((train, val, test), ("train", "validation", "test")):
        assert got.dtype == np.float32 and got.shape == arrays[key].shape
        np.testing.assert_array_equal(got, arrays[key].astype(np.float32))


def test_bsds300_without_a_split_is_corrupt(tmp_path):
    write_bsds300(tmp_path, sizes=(50, 10), keys=("train", "test"))
    with pytest.raises(DatasetCorruptError, match="validation"):
        tabular("bsds300", "train", root=tmp_path)
    assert cached_files(tmp_path, "bsds300") == []


# ---------------------------------------------------------------- HEPMASS

FEATURES = [f"f{i}" for i in range(27)]
REMOVED = {"f3", "f5", "f9", "f13", "f17", "f21"}   # by construction, see hepmass_features


def hepmass_features(rng, n, signal):
    """27 features; among the signal rows: f5 and the b-tag-like f9, f13, f17, f21 discrete,
    f3's smallest value 6 times (removed), f7's 5 times (kept), f11 capped at its top (its
    largest value repeats, its smallest does not: MAF's count keeps it)."""
    x = rng.standard_normal((n, 27))
    x[:, 5] = rng.integers(0, 4, n) * 0.8 - 1.1
    for j in (9, 13, 17, 21):
        x[:, j] = np.where(rng.random(n) < 0.6, -0.83, 1.2)
    x[:, 11] = np.minimum(x[:, 11], 0.4)
    sig = np.flatnonzero(signal)
    x[sig[10:16], 3] = -6.5       # 6 times the smallest value among the signal rows
    x[sig[20:25], 7] = -6.5       # 5 times: kept
    background = np.flatnonzero(~signal)
    x[background[:9], 7] = -9.0   # background rows go first: they must not count
    return np.round(x, 5)


def write_hepmass(root, n_train=2000, n_test=900, seed=4, test_extra_column=True):
    rng = np.random.default_rng(seed)
    (root / "hepmass").mkdir(parents=True, exist_ok=True)
    written = {}
    for name, n in (("1000_train.csv", n_train), ("1000_test.csv", n_test)):
        signal = rng.random(n) < 0.5
        rows = np.column_stack([signal.astype(float), hepmass_features(rng, n, signal)])
        names = ["# label"] + FEATURES
        if name == "1000_test.csv" and test_extra_column:
            rows = np.column_stack([rows, np.where(signal, 1000.0, rng.choice([500.0, 1500.0], n))])
            names = names + ["mass"]
        lines = [",".join(names)]
        for row in rows:
            label = "1" if row[0] == 1 else "0"
            lines.append(",".join([label] + [repr(float(v)) for v in row[1:]]))
        (root / "hepmass" / name).write_text("\n".join(lines) + "\n")
        written[name] = rows
    return written["1000_train.csv"], written["1000_test.csv"]


def maf_smallest_count(column):
    """MAF's count, written as MAF wrote it: the first count of the Counter sorted by value."""
    c = Counter(column.tolist())
    return [v for k, v in sorted(c.items())][0]


def hepmass_oracle(train_rows, test_rows):
    train = train_rows[train_rows[:, 0] == 1][:, 1:]
    test = test_rows[test_rows[:, 0] == 1][:, 1:-1]
    mu, s = train.mean(axis=0), train.std(axis=0, ddof=1)
    train, test = (train - mu) / s, (test - mu) / s
    keep = [j for j, name in enumerate(FEATURES) if name not in REMOVED]
    # the designed removals are exactly those of MAF's own count
    assert keep == [j for j in range(27) if maf_smallest_count(train[:, j]) <= 5]
    train, test = train[:, keep], test[:, keep]
    n_val = int(0.1 * len(train))
    return tuple(x.astype(np.float32) for x in (train[:-n_val], train[-n_val:], test))


def test_hepmass_matches_the_documented_steps(tmp_path):
    train_rows, test_rows = write_hepmass(tmp_path)
    train, val, test = load_all("hepmass", tmp_path)
    n_signal = int((train_rows[:, 0] == 1).sum())
    assert train.shape[1] == val.shape[1] == test.shape[1] == 21
    assert len(val) == int(0.1 * n_signal) and len(train) == n_signal - len(val)
    assert len(test) == int((test_rows[:, 0] == 1).sum())
    for got, want in zip((train, val, test), hepmass_oracle(train_rows, test_rows)):
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-6)
    both = np.concatenate([train, val]).astype(np.float64)   # train statistics before the cut
    np.testing.assert_allclose(both.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(both.std(axis=0, ddof=1), 1, atol=1e-5)


def test_hepmass_counts_the_smallest_value_not_the_largest_count():
    """f11 (top-capped) is kept and f3 (6 times its minimum) removed, as MAF's count decides."""
    from funnelkit.data.maf.hepmass import smallest_value_count
    column = np.array([0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, -1.0, 0.1])
    assert smallest_value_count(column) == maf_smallest_count(column) == 1
    column = np.array([-2.0] * 6 + [0.5, 3.0])
    assert smallest_value_count(column) == maf_smallest_count(column) == 6


def test_hepmass_agrees_with_mafs_pandas_steps(tmp_path):
    pd = pytest.importorskip("pandas")
    write_hepmass(tmp_path)
    path = tmp_path / "hepmass"
    data_train = pd.read_csv(path / "1000_train.csv", index_col=False)
    data_test = pd.read_csv(path / "1000_test.csv", index_col=False)
    data_train = data_train[data_train[data_train.columns[0]] == 1]
    data_train = data_train.drop(data_train.columns[0], axis=1)
    data_test = data_test[data_test[data_test.columns[0]] == 1]
    data_test = data_test.drop(data_test.columns[0], axis=1)
    data_test = data_test.drop(data_test.columns[-1], axis=1)
    mu, s = data_train.mean(), data_train.std()
    data_train, data_test = ((data_train - mu) / s).values, ((data_test - mu) / s).values
    drop = [i for i, f in enumerate(data_train.T) if maf_smallest_count(f) > 5]
    keep = [i for i in range(data_train.shape[1]) if i not in drop]
    data_train, data_test = data_train[:, keep], data_test[:, keep]
    n_val = int(len(data_train) * 0.1)
    want = (data_train[:-n_val], data_train[-n_val:], data_test)
    for got, expected in zip(load_all("hepmass", tmp_path), want):
        np.testing.assert_allclose(got, expected.astype(np.float32), rtol=0, atol=2e-6)


def test_hepmass_test_file_without_the_extra_column_is_corrupt(tmp_path):
    write_hepmass(tmp_path, test_extra_column=False)
    with pytest.raises(DatasetCorruptError, match="1000_test.csv.*by name"):
        tabular("hepmass", "test", root=tmp_path)
    assert cached_files(tmp_path, "hepmass") == []


def test_hepmass_non_numeric_field_is_corrupt(tmp_path):
    write_hepmass(tmp_path)
    path = tmp_path / "hepmass" / "1000_train.csv"
    lines = path.read_text().splitlines()
    lines[5] = lines[5].replace(",", ",abc,", 1)
    path.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DatasetCorruptError, match="1000_train.csv"):
        tabular("hepmass", "train", root=tmp_path)


# ---------------------------------------------------------------- GAS: an old pandas pickle

class Global:
    """A module-level name, written with the GLOBAL opcode as Python 2 wrote it."""

    def __init__(self, module, name):
        self.module, self.name = module, name


class Py2Str(bytes):
    """A Python 2 ``str``: written with SHORT_BINSTRING / BINSTRING."""


class Call:
    """``func(*args)`` (REDUCE), then ``__setstate__(state)`` (BUILD) if a state is given."""

    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, args, state


class New:
    """``cls.__new__(cls)`` (NEWOBJ, protocol 2's way for new-style objects), then BUILD."""

    def __init__(self, cls, state):
        self.cls, self.state = cls, state


class Py2Pickler(pickle._Pickler):
    dispatch = pickle._Pickler.dispatch.copy()

    def save_global_name(self, obj):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("ascii"))
        self.memoize(obj)

    def save_py2_str(self, obj):
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + bytes(obj))
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + bytes(obj))
        self.memoize(obj)

    def save_call(self, obj):
        self.save(obj.func)
        self.save(obj.args)
        self.write(pickle.REDUCE)
        self.memoize(obj)
        if obj.state is not None:
            self.save(obj.state)
            self.write(pickle.BUILD)

    def save_new(self, obj):
        self.save(obj.cls)
        self.save(())
        self.write(pickle.NEWOBJ)
        self.memoize(obj)
        self.save(obj.state)
        self.write(pickle.BUILD)

    dispatch[Global] = save_global_name
    dispatch[Py2Str] = save_py2_str
    dispatch[Call] = save_call
    dispatch[New] = save_new


def s2(text):
    return Py2Str(text.encode("latin1"))


def py2_dtype(code, order, flags=0):
    return Call(Global("numpy", "dtype"), (s2(code), 0, 1),
                state=(3, s2(order), None, None, None, -1, -1, flags))


def py2_array(a):
    """An ndarray as numpy under Python 2 pickled it (``numpy.core.multiarray._reconstruct``)."""
    a = np.ascontiguousarray(a)
    if a.dtype == object:
        dtype = py2_dtype("O8", "|", 63)
        data = [s2(x) if isinstance(x, str) else x for x in a.ravel()]
    else:
        dtype, data = py2_dtype(a.dtype.str[1:], "<"), Py2Str(a.tobytes())
    return Call(Global("numpy.core.multiarray", "_reconstruct"),
                (Global("numpy", "ndarray"), (0,), s2("b")),
                state=(1, a.shape, dtype, False, data))


def py2_index(values, cls, module):
    return Call(Global(module, "_new_Index"), (Global(module, cls),
                                               {s2("data"): py2_array(values), s2("name"): None}))


def write_legacy_frame(path, names, columns, layout="pandas-0.20"):
    """Pickle a DataFrame as ``DataFrame.to_pickle`` did: Python 2, protocol 2, pandas < 2.

    ``pandas-0.20``: a float block (Time and the sensors, placed by an integer array), an int
    block (Meth, Eth, placed by a slice) and an Int64Index of sampled rows.
    ``pandas-0.19``: one consolidated float block placed by a slice, a RangeIndex, the
    ``pandas.indexes`` module paths and the manager under ``_mgr`` as later pandas names it.
    """
    n = len(columns[0])
    if layout == "pandas-0.20":
        index_module, internals = "pandas.core.indexes.base", "pandas.core.internals"
        data_key = "_data"
        int_cols = [i for i, name in enumerate(names) if name in ("Meth", "Eth")]
        float_cols = [i for i in range(len(names)) if i not in int_cols]
        assert int_cols == list(range(int_cols[0], int_cols[-1] + 1))
        blocks = [(np.array([columns[i] for i in float_cols], dtype=np.float64),
                   py2_array(np.array(float_cols, dtype=np.int64))),
                  (np.array([columns[i] for i in int_cols], dtype=np.int64),
                   Call(Global("__builtin__", "slice"), (int_cols[0], int_cols[-1] + 1, 1)))]
        rows = py2_index(np.random.default_rng(0).permutation(4 * n)[:n].astype(np.int64),
                         "Int64Index", "pandas.core.indexes.numeric")
        block_items = [[names[i] for i in float_cols], [names[i] for i in int_cols]]
    else:
        index_module, internals, data_key = "pandas.indexes.base", "pandas.core.internals", "_mgr"
        blocks = [(np.array(columns, dtype=np.float64),
                   Call(Global("__builtin__", "slice"), (0, len(names), 1)))]
        rows = Call(Global("pandas.indexes.base", "_new_Index"),
                    (Global("pandas.indexes.range", "RangeIndex"),
                     {s2("name"): None, s2("start"): 0, s2("stop"): n, s2("step"): 1}))
        block_items = [list(names)]
    axes = [py2_index(np.array(names, dtype=object), "Index", index_module), rows]
    values = [py2_array(v) for v, _ in blocks]
    items = [py2_index(np.array(b, dtype=object), "Index", index_module) for b in block_items]
    extra = {s2("0.14.1"): {s2("axes"): axes, s2("blocks"): [
        {s2("values"): v, s2("mgr_locs"): locs} for v, (_, locs) in zip(values, blocks)]}}
    manager = New(Global(internals, "BlockManager"), (axes, values, items, extra))
    frame = New(Global("pandas.core.frame", "DataFrame"),
                {s2(data_key): manager, s2("_typ"): s2("dataframe"), s2("_metadata"): []})
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        Py2Pickler(f, protocol=2).dump(frame)


def gas_sensors(n, seed):
    """16 sensor columns, kept by MAF's filter in the order given by GAS_KEPT.

    A chain y-x-z (x~y and y~z above 0.98, x~z below) with y first: dropping y, then
    recomputing, keeps x and z. A triple of mutual copies keeps its last. Five pairs keep
    their second. So 8 columns are left, as in the archive's GAS.
    """
    rng = np.random.default_rng(seed)

    def near(base, noise=0.03):
        return base + noise * rng.standard_normal(n)

    u, w = rng.standard_normal((2, n))
    theta = np.deg2rad(16.0)
    chain = {"y": np.cos(theta / 2) * u + np.sin(theta / 2) * w, "x": u,
             "z": np.cos(theta) * u + np.sin(theta) * w}
    t = rng.standard_normal(n)
    triple = {"t1": near(t), "t2": near(t), "t3": near(t)}
    pairs = {}
    for k in range(5):
        b = rng.standard_normal(n)
        pairs[f"p{k}a"], pairs[f"p{k}b"] = near(b), near(b)
    order = ["y", "x", "z", "p0a", "p0b", "t1", "p1a", "t2", "p1b", "t3",
             "p2a", "p2b", "p3a", "p3b", "p4a", "p4b"]
    pool = {**chain, **triple, **pairs}
    scale = rng.uniform(1, 500, 16)
    shift = rng.uniform(0, 3000, 16)
    return order, [np.round(shift[i] + scale[i] * pool[name], 4) for i, name in enumerate(order)]


GAS_KEPT = ["x", "z", "p0b", "p1b", "t3", "p2b", "p3b", "p4b"]


def write_gas(root, n=3000, seed=5, layout="pandas-0.20", sensors=None):
    rng = np.random.default_rng(seed + 1)
    order, columns = sensors or gas_sensors(n, seed)
    names = ["Time", "Meth", "Eth"] + order
    columns = [np.round(rng.uniform(0, 40000, n), 2),
               rng.integers(0, 600, n), rng.integers(0, 20, n)] + columns
    write_legacy_frame(root / "gas" / "ethylene_CO.pickle", names, columns, layout)
    return order, columns[3:]


def gas_oracle(order, sensors):
    data = np.column_stack([sensors[order.index(name)] for name in GAS_KEPT])
    data = (data - data.mean(axis=0)) / data.std(axis=0, ddof=1)
    n_train, n_val, _ = maf_sizes(len(data))
    return tuple(x.astype(np.float32) for x in
                 (data[:n_train], data[n_train:n_train + n_val], data[n_train + n_val:]))


def test_gas_fixture_is_a_python2_pandas_pickle(tmp_path):
    write_gas(tmp_path, n=40)
    ops = list(pickletools.genops((tmp_path / "gas" / "ethylene_CO.pickle").read_bytes()))
    names = {op.name for op, _, _ in ops}
    assert ops[0][0].name == "PROTO" and ops[0][1] == 2
    assert {"GLOBAL", "NEWOBJ", "BINSTRING", "SHORT_BINSTRING"} <= names
    assert not names & {"BINUNICODE", "SHORT_BINUNICODE", "STACK_GLOBAL"}
    globals_ = {arg for op, arg, _ in ops if op.name == "GLOBAL"}
    assert {"pandas.core.frame DataFrame", "numpy.core.multiarray _reconstruct"} <= globals_


@pytest.mark.parametrize("layout", ["pandas-0.20", "pandas-0.19"])
def test_legacy_pickle_reader_rebuilds_the_frame(tmp_path, layout):
    order, sensors = write_gas(tmp_path, n=50, layout=layout)
    names, columns = read_legacy_dataframe(tmp_path / "gas" / "ethylene_CO.pickle")
    assert names == ["Time", "Meth", "Eth"] + order
    for name, column in zip(order, sensors):
        np.testing.assert_array_equal(columns[names.index(name)], column)
    assert columns[1].dtype.kind == ("i" if layout == "pandas-0.20" else "f")


@pytest.mark.parametrize("layout", ["pandas-0.20", "pandas-0.19"])
def test_gas_matches_the_documented_steps(tmp_path, layout):
    order, sensors = write_gas(tmp_path, layout=layout)
    train, val, test = load_all("gas", tmp_path)
    assert (train.shape, val.shape, test.shape) == ((2430, 8), (270, 8), (300, 8))
    for got, want in zip((train, val, test), gas_oracle(order, sensors)):
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-6)
    everything = np.concatenate([train, val, test]).astype(np.float64)  # all rows standardised
    np.testing.assert_allclose(everything.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(everything.std(axis=0, ddof=1), 1, atol=1e-5)
    assert abs(np.concatenate([train, val]).mean(axis=0)).max() > 1e-4  # not train statistics


def test_gas_filter_recomputes_after_each_drop():
    order, sensors = gas_sensors(3000, seed=5)
    _, kept = gas_module.correlation_filter(np.column_stack(sensors), order)
    assert kept == GAS_KEPT


def test_gas_agrees_with_mafs_pandas_steps(tmp_path):
    pd = pytest.importorskip("pandas")
    order, sensors = write_gas(tmp_path)
    data = pd.DataFrame(dict(zip(order, sensors)))
    while True:
        b = (data.corr() > 0.98).values.sum(axis=1)
        if not np.any(b > 1):
            break
        data = data.drop(data.columns[np.where(b > 1)[0][0]], axis=1)
    assert list(data.columns) == GAS_KEPT
    data = ((data - data.mean()) / data.std()).values
    n_test = int(0.1 * data.shape[0])
    rest, test = data[:-n_test], data[-n_test:]
    n_val = int(0.1 * rest.shape[0])
    want = (rest[:-n_val], rest[-n_val:], test)
    for got, expected in zip(load_all("gas", tmp_path), want):
        np.testing.assert_allclose(got, expected.astype(np.float32), rtol=0, atol=2e-6)


def test_gas_with_too_many_columns_left_is_corrupt(tmp_path):
    rng = np.random.default_rng(0)
    independent = ([f"s{i}" for i in range(16)], list(rng.standard_normal((16, 300))))
    write_gas(tmp_path, n=300, sensors=independent)
    with pytest.raises(DatasetCorruptError, match="8 columns"):
        tabular("gas", "train", root=tmp_path)
    assert cached_files(tmp_path, "gas") == []


def test_gas_without_meth_is_corrupt(tmp_path):
    order, sensors = gas_sensors(100, seed=5)
    names = ["Time", "Methane", "Eth"] + order
    columns = [np.arange(100.0), np.zeros(100), np.zeros(100)] + sensors
    write_legacy_frame(tmp_path / "gas" / "ethylene_CO.pickle", names, columns, "pandas-0.19")
    with pytest.raises(DatasetCorruptError, match="Meth"):
        tabular("gas", "train", root=tmp_path)


class _Sneaky:
    def __reduce__(self):
        return (os.getcwd, ())


@pytest.mark.parametrize("content", [b"not a pickle at all", pickle.dumps(_Sneaky(), protocol=2),
                                     pickle.dumps({"a": 1}, protocol=2)])
def test_gas_bad_pickles_are_corrupt_and_run_nothing(tmp_path, content):
    (tmp_path / "gas").mkdir()
    (tmp_path / "gas" / "ethylene_CO.pickle").write_bytes(content)
    with pytest.raises(DatasetCorruptError, match="ethylene_CO.pickle") as info:
        tabular("gas", "val", root=tmp_path)
    if b"getcwd" in content:
        assert "refusing" in str(info.value)
    assert cached_files(tmp_path, "gas") == []
    with pytest.raises(LegacyPickleError):
        read_legacy_dataframe(tmp_path / "gas" / "ethylene_CO.pickle")


# ---------------------------------------------------------------- names, splits, missing files

@pytest.mark.parametrize("name", ["POWER", "power", "Power"])
def test_names_in_any_case(tmp_path, name):
    write_power(tmp_path, n=200)
    assert tabular(name, "test", root=tmp_path).shape == (20, 6)


@pytest.mark.parametrize("bad", ["cifar10", "", None, 3])
def test_unknown_name_lists_the_choices(bad):
    with pytest.raises(ValueError) as info:
        tabular(bad, "train")
    for choice in ("POWER", "GAS", "HEPMASS", "MINIBOONE", "BSDS300"):
        assert choice in str(info.value)


@pytest.mark.parametrize("bad", ["validation", "Train", "all", None])
def test_unknown_split_lists_the_choices(bad):
    with pytest.raises(ValueError) as info:
        tabular("power", bad)
    assert all(choice in str(info.value) for choice in SPLITS)


@pytest.mark.parametrize("name", list(TABULAR_DATASETS))
def test_missing_file_names_file_place_address_and_steps(tmp_path, name):
    root = tmp_path / "empty"
    relpath = TABULAR_DATASETS[name].files[0]
    with pytest.raises(DatasetNotFoundError) as info:
        tabular(name, "train", root=root)
    assert isinstance(info.value, FileNotFoundError)
    message = str(info.value)
    for part in (relpath, str(root / relpath), "zenodo.org/record/1161203/files/data.tar.gz",
                 "tar -xzf", "root="):
        assert part in message, part


def test_missing_hepmass_test_file_is_named(tmp_path):
    write_hepmass(tmp_path)
    (tmp_path / "hepmass" / "1000_test.csv").unlink()
    with pytest.raises(DatasetNotFoundError, match="1000_test.csv"):
        tabular("hepmass", "train", root=tmp_path)


def test_default_root_is_in_the_cache(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        tabular("miniboone", "train")
    assert str(tmp_path / "cache" / "maf" / "data" / "miniboone" / "data.npy") in str(info.value)


def test_cache_dir_from_the_environment(monkeypatch, tmp_path):
    assert cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("FUNNELKIT_CACHE")
    assert cache_dir() == cache_module.Path.home() / ".cache" / "funnelkit"


def test_missing_file_error_pickles():
    error = DatasetNotFoundError("power/data.npy", "/x/power/data.npy", "https://example", ["a"])
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error) and isinstance(again, FileNotFoundError)


# ---------------------------------------------------------------- cache and corrupt files

def test_second_call_reads_the_cache(tmp_path, monkeypatch):
    write_miniboone(tmp_path)
    first = load_all("miniboone", tmp_path)
    assert cached_files(tmp_path, "miniboone") == ["test.npy", "train.npy", "val.npy"]

    def refuse(paths):
        raise AssertionError("preprocessed again instead of reading the cache")

    monkeypatch.setattr(miniboone_module, "load", refuse)
    (tmp_path / "miniboone" / "data.npy").unlink()  # the cache no longer needs the raw file
    second = load_all("miniboone", tmp_path)
    for a, b in zip(first, second):
        assert b.dtype == np.float32
        np.testing.assert_array_equal(a, b)


def test_cache_is_kept_apart_per_root(tmp_path):
    write_miniboone(tmp_path / "a", seed=1)
    write_miniboone(tmp_path / "b", seed=2)
    a = tabular("miniboone", "test", root=tmp_path / "a")
    b = tabular("miniboone", "test", root=tmp_path / "b")
    assert processed_dir("miniboone", tmp_path / "a") != processed_dir("miniboone", tmp_path / "b")
    assert not np.array_equal(a, b)


def test_unreadable_cache_file_is_rebuilt(tmp_path):
    write_miniboone(tmp_path)
    first = tabular("miniboone", "val", root=tmp_path)
    (processed_dir("miniboone", tmp_path) / "val.npy").write_bytes(b"broken")
    np.testing.assert_array_equal(tabular("miniboone", "val", root=tmp_path), first)


@pytest.mark.parametrize("content", ["wrong-shape", "garbage", "objects"])
def test_corrupt_npy_is_reported_and_not_cached(tmp_path, content):
    (tmp_path / "power").mkdir()
    path = tmp_path / "power" / "data.npy"
    if content == "wrong-shape":
        np.save(path, np.zeros((100, 7)))
    elif content == "garbage":
        path.write_bytes(b"\x93NUMPY this is not an array")
    else:
        np.save(path, np.array([{"a": 1}] * 3, dtype=object), allow_pickle=True)
    with pytest.raises(DatasetCorruptError, match="data.npy"):
        tabular("power", "train", root=tmp_path)
    assert cached_files(tmp_path, "power") == []


def test_too_few_rows_is_corrupt(tmp_path):
    write_miniboone(tmp_path, n=9)
    with pytest.raises(DatasetCorruptError, match="rows"):
        tabular("miniboone", "train", root=tmp_path)


def test_nan_output_is_corrupt(tmp_path):
    raw = write_miniboone(tmp_path, n=100)
    raw[3, 4] = np.nan
    np.save(tmp_path / "miniboone" / "data.npy", raw)
    with pytest.raises(DatasetCorruptError, match="non-finite"):
        tabular("miniboone", "train", root=tmp_path)
    assert cached_files(tmp_path, "miniboone") == []


def test_cache_write_failure_still_returns_the_data(tmp_path, monkeypatch):
    write_miniboone(tmp_path, n=100)

    def fail(path, array):
        raise PermissionError("read-only")

    monkeypatch.setattr(tabular_module, "save_npy_atomic", fail)
    with pytest.warns(RuntimeWarning, match="could not cache"):
        x = tabular("miniboone", "train", root=tmp_path)
    assert x.shape == (81, 43)
