"""The GAS reader against hostile pickles, and against pickles that real pandas versions write.

Hostile files are a few bytes that ask the unpickler for gigabytes (a ``bytearray(2e9)`` call,
opcodes that declare 2 GB, a memo slot 2**31, an object array of 10**9 items) or for an
exponentially long repr; each is refused before the allocation, with a message of at most a few
hundred characters, measured with ``tracemalloc``. The pandas layouts are read from pickles a
real pandas wrote: the pandas installed here (at test time) and pandas 1.5.3 / 2.2.3 (the files
in ``tests/data/fixtures``, made as its README says), compared value for value with the frame
they were made from.
"""

import importlib.util
import pickle
import pickletools
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from funnelkit.data.cache import DatasetCorruptError
from funnelkit.data.maf.legacy_pickle import MESSAGE_LIMIT, LegacyPickleError, read_legacy_dataframe
from funnelkit.data.maf.pickle_scan import scan_pickle
from funnelkit.data.tabular import tabular

from .test_tabular import cached_files, gas_sensors, load_all, write_gas

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FUNNELKIT_CACHE", str(tmp_path / "cache"))


def fixture_module():
    spec = importlib.util.spec_from_file_location("make_pandas_fixtures",
                                                  FIXTURES / "make_pandas_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- hostile pickles

def global_(module, name):
    return b"c" + f"{module}\n{name}\n".encode()


def binint(n):
    return b"J" + struct.pack("<i", n)


def nested_shared_list(depth):
    """A list of two references to a list of two references ... (2**depth leaves in its repr)."""
    item = []
    for _ in range(depth):
        item = [item, item]
    return pickle.dumps(item, protocol=2)


def frame_with_range_columns(n_columns):
    """A pandas-1.3-style frame whose column index is a RangeIndex of ``n_columns`` entries."""
    index = (global_("pandas.core.indexes.base", "_new_Index")
             + global_("pandas.core.indexes.range", "RangeIndex")
             + b"}(X\x05\x00\x00\x00start" + binint(0) + b"X\x04\x00\x00\x00stop"
             + b"\x8a\x08" + struct.pack("<q", n_columns) + b"X\x04\x00\x00\x00step" + binint(1)
             + b"u\x86R")
    manager = global_("pandas.core.internals.managers", "BlockManager") + b")" + b"(" + index \
        + index + b"l\x86R"
    return (b"\x80\x02" + global_("pandas.core.frame", "DataFrame") + b")\x81}X\x04\x00\x00\x00_mgr"
            + manager + b"sb.")


def object_array(n_items):
    """``_reconstruct`` then a state promising ``n_items`` objects with an empty list (numpy
    itself crashes on this state)."""
    dtype = global_("numpy", "dtype") + b"U\x02O8K\x00K\x01\x87R(K\x03U\x01|NNNJ\xff\xff\xff\xff" \
        b"J\xff\xff\xff\xffK?tb"
    return (b"\x80\x02" + global_("numpy.core.multiarray", "_reconstruct")
            + global_("numpy", "ndarray") + b"K\x00\x85U\x01b\x87R(K\x01" + binint(n_items)
            + b"\x85" + dtype + b"\x89]tb.")


def reused_buffer(n_arrays, size):
    """One ``size``-byte buffer turned into ``n_arrays`` arrays through the memo."""
    head = b"\x80\x05" + global_("numpy.core.numeric", "_frombuffer") + b"q\x00" \
        + b"\x96" + struct.pack("<Q", size) + b"\x00" * size + b"q\x01" \
        + global_("numpy", "dtype") + b"U\x02u1K\x00K\x01\x87R(K\x03U\x01|NNNJ\xff\xff\xff\xff" \
        b"J\xff\xff\xff\xffK\x00tbq\x02"
    call = b"h\x00(h\x01h\x02" + binint(size) + b"\x85U\x01Ct" + b"R0"
    return head + call * n_arrays + b"N."


HOSTILE = {
    "bytearray(2e9)": global_("__builtin__", "bytearray") + b"(" + binint(2_000_000_000) + b"tR.",
    "BYTEARRAY8 of 2 GB": b"\x80\x05\x96" + struct.pack("<Q", 2_000_000_000) + b".",
    "BINUNICODE8 of 2 GB": b"\x80\x04\x8d" + struct.pack("<Q", 2_000_000_000) + b"ab.",
    "FRAME of 1 TB": b"\x80\x04\x95" + struct.pack("<Q", 10**12) + b"N.",
    "memo slot 2**31": b"\x80\x02Nr" + struct.pack("<I", 2**31) + b".",
    "object array of 1e9 items": object_array(10**9),
    "ndarray.__new__ of 2**31": b"\x80\x02" + global_("numpy", "ndarray") + binint(2**31 - 1)
                                + b"\x85\x81.",
    "RangeIndex of 1e12 columns": frame_with_range_columns(10**12),
    "one buffer as 3000 arrays": reused_buffer(3000, 4096),
    "a name of 1 MB": b"c" + b"x" * 1_000_000 + b"\ny\n.",
    "repr of 2**60 leaves": nested_shared_list(60),
    "os.system": global_("os", "system") + b"(X\x02\x00\x00\x00lstR.",
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_pickle_is_refused_before_it_allocates(tmp_path, name):
    path = tmp_path / "gas" / "ethylene_CO.pickle"
    path.parent.mkdir()
    path.write_bytes(HOSTILE[name])
    tracemalloc.start()
    try:
        started = time.perf_counter()
        with pytest.raises(LegacyPickleError) as info:
            read_legacy_dataframe(path)
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert 0 < len(message) <= MESSAGE_LIMIT
    assert peak < 8 * path.stat().st_size + 4_000_000, f"{name}: {peak} bytes allocated"
    assert seconds < 5
    with pytest.raises(DatasetCorruptError) as info:  # the public loader: the file named, nothing cached
        tabular("gas", "train", root=tmp_path)
    assert str(path) in str(info.value) and len(str(info.value)) < MESSAGE_LIMIT + 400
    assert cached_files(tmp_path, "gas") == []


def test_the_2e9_bytearray_is_named_in_the_message(tmp_path):
    path = tmp_path / "x.pickle"
    path.write_bytes(HOSTILE["bytearray(2e9)"])
    assert len(path.read_bytes()) < 40
    with pytest.raises(LegacyPickleError, match="bytearray of 2000000000"):
        read_legacy_dataframe(path)


def test_cli_prints_one_short_error_for_the_hostile_pickle(tmp_path, capsys):
    import funnelkit.cli.main as cli

    (tmp_path / "gas").mkdir()
    (tmp_path / "gas" / "ethylene_CO.pickle").write_bytes(HOSTILE["bytearray(2e9)"])
    out = tmp_path / "run"
    code = cli.main(["train", "tabular", "--dataset", "gas", "--root", str(tmp_path), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("funnelkit train: error: ") and "ethylene_CO.pickle" in err
    assert len(err) < 1000
    assert not out.exists()


def test_scan_counts_the_opcodes_pickletools_reads(tmp_path):
    for version in ("1.5.3", "2.2.3"):
        data = (FIXTURES / f"gas-layout-pandas-{version}.pickle").read_bytes()
        with open(FIXTURES / f"gas-layout-pandas-{version}.pickle", "rb") as f:
            assert scan_pickle(f, len(data)) == len(list(pickletools.genops(data)))
    write_gas(tmp_path, n=40)
    data = (tmp_path / "gas" / "ethylene_CO.pickle").read_bytes()
    with open(tmp_path / "gas" / "ethylene_CO.pickle", "rb") as f:
        assert scan_pickle(f, len(data)) == len(list(pickletools.genops(data)))


@pytest.mark.parametrize("version", ["1.5.3", "2.2.3"])
def test_every_truncation_of_a_real_pickle_is_refused_shortly(tmp_path, version):
    data = (FIXTURES / f"gas-layout-pandas-{version}.pickle").read_bytes()
    path = tmp_path / "cut.pickle"
    for cut in list(range(0, 400, 7)) + list(range(400, len(data), 997)):
        path.write_bytes(data[:cut])
        with pytest.raises(LegacyPickleError) as info:
            read_legacy_dataframe(path)
        assert len(str(info.value)) <= MESSAGE_LIMIT


# ---------------------------------------------------------------- what real pandas writes

@pytest.mark.parametrize("version", ["1.5.3", "2.2.3"])
def test_pickles_of_pandas_1_5_and_2_2_are_read_exactly(version):
    path = FIXTURES / f"gas-layout-pandas-{version}.pickle"
    strings = {arg for op, arg, _ in pickletools.genops(path.read_bytes())
               if op.name == "SHORT_BINUNICODE"}
    assert {"_unpickle_block", "BlockManager", "_frombuffer"} <= strings  # pandas >= 1.3's layout
    names, columns, _ = fixture_module().gas_layout_columns()
    got_names, got_columns = read_legacy_dataframe(path)
    assert got_names == names
    for got, want in zip(got_columns, columns):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize("labels", ["default", "object", "python-strings"])
def test_a_frame_pickled_by_the_installed_pandas_gives_the_same_gas(tmp_path, protocol, labels):
    pd = pytest.importorskip("pandas", reason="pandas writes the frame of this test")
    order, sensors = gas_sensors(3000, seed=5)
    old = tmp_path / "old"
    write_gas(old, sensors=(order, sensors))  # the archive's Python 2 layout, same columns
    names, columns = read_legacy_dataframe(old / "gas" / "ethylene_CO.pickle")
    frame = pd.DataFrame(dict(zip(names, columns)))
    frame.index = np.random.default_rng(0).permutation(4 * len(frame))[:len(frame)]
    if labels == "object":
        frame.columns = pd.Index(names, dtype=object)
    elif labels == "python-strings":
        frame.columns = pd.Index(names, dtype=pd.StringDtype("python"))
    new = tmp_path / "new"
    (new / "gas").mkdir(parents=True)
    frame.to_pickle(new / "gas" / "ethylene_CO.pickle", protocol=protocol)
    got_names, got_columns = read_legacy_dataframe(new / "gas" / "ethylene_CO.pickle")
    assert got_names == names
    for got, want in zip(got_columns, columns):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    for got, want in zip(load_all("gas", new), load_all("gas", old)):
        np.testing.assert_array_equal(got, want)
