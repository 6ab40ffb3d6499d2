"""Read a pickled pandas DataFrame (the GAS file) without pandas, and without trusting the pickle.

``gas/ethylene_CO.pickle`` of the MAF archive was written by ``DataFrame.to_pickle`` of a
pandas < 2 under Python 2 (protocol 2). pandas >= 2 can no longer read that format
(gpapamak/maf#13), and the kit does not want pandas for this one file, so this module reads the
pickle itself. It reads these layouts (tests write each; the pandas ones with a real pandas):

* pandas 0.14.1-1.2 (the archive's): the frame's state holds a ``BlockManager`` (key ``_data``,
  or ``_mgr``) whose *state* is ``(axes, block values, block items, extra)``;
  ``extra["0.14.1"]`` holds the axes (axis 0 the column names, axis 1 the row index) and, per
  block, a ``(n_columns_in_block, n_rows)`` array and the column positions it fills (a
  ``slice`` or an integer array). Older pickles are read from the block items instead.
* pandas 1.3-2.x (and 3.x), as in copies of the archive pickled again by a newer pandas: the
  manager is rebuilt by a call ``BlockManager(blocks, axes)``, each block by
  ``_unpickle_block(values, positions, ndim)``; arrays come as ``_frombuffer(bytes, dtype,
  shape, order)`` (protocol 5). Column names are an object array, or (pandas 3) a string
  array: pyarrow's, decoded here from its offsets and bytes, or pandas' own over an object array.

Index objects are stored as ``_new_Index(cls, {"data": array, ...})`` (a ``RangeIndex`` as
start/stop/step). Only the column names and the columns are used.

Safety. The file is first walked opcode by opcode (:mod:`~funnelkit.data.maf.pickle_scan`):
no opcode may declare more bytes than the file has left. Then Python's unpickler runs with
``encoding="latin1"`` (Python 2 byte strings, as numpy and pandas read them) and a short list
of globals, each replaced by a checked stand-in:

* ``pandas.*`` and ``pyarrow.*`` names become inert records of their arguments and state
  (:class:`PandasStandIn`); nothing from pandas or pyarrow is imported or run;
* numpy's array rebuilding (``_reconstruct`` + state, ``_frombuffer``, ``scalar``, ``dtype``)
  runs only after the shape, dtype and data length are checked: simple dtypes only, data exactly
  as long as the shape needs, and all array data together at most the file's size (a pickle is
  not compressed, so a genuine one cannot hold more);
* a few builtins the format uses (``object``, ``slice``, ``set``, ``frozenset``,
  ``bytearray`` of bytes, ``copy_reg._reconstructor`` of a stand-in, ``_codecs.encode`` of a
  string, an empty ``OrderedDict``), the copies they make also charged against the file's size.

Any other global is refused, so loading runs no code and allocates at most a small multiple of
the file's size. Error messages never print what the pickle holds beyond a short description
and are cut to :data:`MESSAGE_LIMIT` characters.
"""

import copyreg
import importlib
import math
import os
import pickle
import re
from collections import OrderedDict

import numpy as np

from .pickle_scan import PickleScanError, scan_pickle

MESSAGE_LIMIT = 300
_NUMPY_CORE = "numpy._core" if hasattr(np, "_core") else "numpy.core"
_MULTIARRAY = importlib.import_module(f"{_NUMPY_CORE}.multiarray")
_NUMERIC = importlib.import_module(f"{_NUMPY_CORE}.numeric")
_DTYPE_CODE = re.compile(r"[<>|=]?[biufcO][0-9]{1,2}")
_LABEL_TYPES = (str, bytes, int, float, bool, type(None), np.integer, np.floating)


def bounded(text, limit=MESSAGE_LIMIT):
    """``text`` cut to at most ``limit`` characters (the cut marked with "...")."""
    text = str(text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def describe(obj, limit=60):
    """A short description of ``obj`` that never prints a container's contents in full."""
    if isinstance(obj, PandasStandIn):
        return f"<{obj.pandas_name}>"
    if isinstance(obj, (str, bytes, bytearray)):
        return bounded(repr(obj[:limit]), limit + 10) + (f" ({len(obj)} long)" if len(obj) > limit else "")
    if isinstance(obj, (int, float, bool, type(None))):
        return bounded(repr(obj), limit)
    if isinstance(obj, np.ndarray):
        return f"a {obj.dtype} array of shape {obj.shape}"
    if isinstance(obj, _ArrayStandIn):
        return "a numpy array" + ("" if obj.array is None else f" of shape {obj.array.shape}")
    if isinstance(obj, (list, tuple, dict, set, frozenset)):
        return f"a {type(obj).__name__} of {len(obj)} items"
    return f"a {type(obj).__name__}"


class LegacyPickleError(ValueError):
    """The pickle cannot be read, or does not hold a DataFrame in a layout this reader knows.

    The message is at most :data:`MESSAGE_LIMIT` characters long.
    """

    def __init__(self, message):
        super().__init__(bounded(message))


def _error_text(error):
    """``error``'s message, without calling ``str`` on whatever objects it carries."""
    first = error.args[0] if error.args else ""
    return bounded(first if isinstance(first, str) else describe(first), 200)


class PandasStandIn:
    """Stands in for a pandas (or pyarrow) class or function named in the pickle; keeps what it
    is given: ``args`` of the call that made it and ``state`` of a later BUILD."""

    pandas_name = "pandas"
    args = ()
    state = None

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.args = args
        return obj

    def __init__(self, *args, **kwargs):  # called after __new__ by a plain REDUCE; nothing to do
        pass

    def __setstate__(self, state):
        self.state = state

    def __repr__(self):
        return f"<stand-in for {self.pandas_name}>"


class _NdarrayName:
    """What ``numpy.ndarray`` in a pickle becomes: a name for ``_reconstruct``, never called."""


class _Budget:
    """What the pickle's globals may allocate: array data, and copies, each up to the file's size."""

    def __init__(self, size):
        self.size = size
        self.spent = {"array data": 0, "copies": 0}

    def charge(self, kind, n, what):
        if self.spent[kind] + n > self.size:
            raise LegacyPickleError(
                f"{what} asks for {n} bytes ({kind} so far: {self.spent[kind]}), more than the "
                f"{self.size}-byte file can hold")
        self.spent[kind] += n


def _shape(shape, what):
    if not (isinstance(shape, tuple) and len(shape) <= 32
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)):
        raise LegacyPickleError(f"{what}: the shape {describe(shape)} is not a tuple of sizes")
    return shape, math.prod(shape)


def _resolve_dtype(dtype, what, allow_object=True):
    if isinstance(dtype, _DTypeStandIn):
        dtype = dtype.dtype
    if not isinstance(dtype, np.dtype) or dtype.fields is not None or dtype.subdtype is not None \
            or dtype.kind not in "biufcO" or (dtype.kind == "O" and not allow_object):
        raise LegacyPickleError(f"{what}: {describe(dtype)} is not a plain numeric dtype")
    return dtype


class _DTypeStandIn:
    """``numpy.dtype(code, align, copy)`` from a pickle; its byte order comes with the BUILD."""

    def __init__(self, code):
        self.dtype = np.dtype(code)

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) >= 5 and state[1] in ("<", ">", "|", "=")
                and state[2] is None and state[3] is None and state[4] is None):
            raise LegacyPickleError(f"a dtype's state {describe(state)} is not a plain dtype's")
        if state[1] in "<>":
            self.dtype = self.dtype.newbyteorder(state[1])


class _ArrayStandIn:
    """``numpy.core.multiarray._reconstruct(ndarray, (0,), "b")``; the array itself is made by the
    BUILD that follows, once its shape, dtype and data are checked (``.array``)."""

    array = None

    def __init__(self, budget):
        self._budget = budget

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) in (4, 5)):
            raise LegacyPickleError(f"an array's state is {describe(state)}, not numpy's")
        shape, dtype, fortran, data = state[-4:]
        shape, n = _shape(shape, "an array")
        dtype = _resolve_dtype(dtype, "an array")
        if not isinstance(fortran, (bool, int)):
            raise LegacyPickleError("an array's order flag is not a boolean")
        if dtype.kind == "O":
            if not (isinstance(data, list) and len(data) == n):
                raise LegacyPickleError(f"an object array of shape {shape} comes with "
                                        f"{describe(data)}")
            self._budget.charge("array data", n, f"an object array of shape {shape}")
        else:
            if not (isinstance(data, (bytes, str)) and len(data) == n * dtype.itemsize):
                raise LegacyPickleError(f"a {dtype} array of shape {shape} needs "
                                        f"{n * dtype.itemsize} bytes, its data is {describe(data)}")
            self._budget.charge("array data", n * dtype.itemsize, f"a {dtype} array of shape {shape}")
        array = _MULTIARRAY._reconstruct(np.ndarray, (0,), b"b")
        array.__setstate__((1, shape, dtype, bool(fortran), data))
        self.array = array


def _as_array(obj, what):
    """The numpy array a pickled array became (checked or not), else :class:`LegacyPickleError`."""
    if isinstance(obj, _ArrayStandIn) and obj.array is not None:
        return obj.array
    if isinstance(obj, np.ndarray):
        return obj
    raise LegacyPickleError(f"{what} is {describe(obj)}, not a numpy array")


class _Globals:
    """The checked replacements of the globals a pickled DataFrame names, for one file."""

    def __init__(self, budget):
        self.budget = budget

    def reconstruct(self, subtype, shape, dtype):
        if subtype is not _NdarrayName:
            raise LegacyPickleError(f"_reconstruct of {describe(subtype)}, not of numpy.ndarray")
        return _ArrayStandIn(self.budget)

    def frombuffer(self, buffer, dtype, shape, order):
        shape, n = _shape(shape, "_frombuffer")
        dtype = _resolve_dtype(dtype, "_frombuffer", allow_object=False)
        if not (isinstance(buffer, (bytes, bytearray)) and len(buffer) == n * dtype.itemsize
                and order in ("C", "F")):
            raise LegacyPickleError(f"_frombuffer of {describe(buffer)} as {dtype} {shape} "
                                    f"(order {describe(order)})")
        self.budget.charge("array data", len(buffer), f"a {dtype} array of shape {shape}")
        return _NUMERIC._frombuffer(buffer, dtype, shape, order)

    def scalar(self, dtype, data=None):
        dtype = _resolve_dtype(dtype, "a numpy scalar", allow_object=False)
        if not (isinstance(data, (bytes, str)) and len(data) == dtype.itemsize):
            raise LegacyPickleError(f"a {dtype} scalar comes with {describe(data)}")
        return _MULTIARRAY.scalar(dtype, data)

    def dtype(self, code, align=False, copy=True):
        text = code.decode("latin1") if isinstance(code, bytes) else code
        if not (isinstance(text, str) and _DTYPE_CODE.fullmatch(text)):
            raise LegacyPickleError(f"numpy.dtype of {describe(code)}: not a plain numeric dtype")
        return _DTypeStandIn(text)

    @staticmethod
    def slice(*args):
        if len(args) > 3 or not all(a is None or (isinstance(a, int) and -2**62 < a < 2**62)
                                    for a in args):
            raise LegacyPickleError(f"slice of {describe(args)}")
        return slice(*args)

    def _items(self, kind, items):
        if not (isinstance(items, (list, tuple)) and all(isinstance(x, _LABEL_TYPES) for x in items)):
            raise LegacyPickleError(f"{kind.__name__} of {describe(items)}: only flat lists of "
                                    "numbers and strings are read")
        self.budget.charge("copies", 8 * len(items), kind.__name__)
        return kind(items)

    def set(self, items=()):
        return self._items(set, items)

    def frozenset(self, items=()):
        return self._items(frozenset, items)

    def bytearray(self, source=b"", encoding="latin-1"):
        if not isinstance(source, (bytes, str)):  # bytearray(2_000_000_000) would allocate 2 GB
            raise LegacyPickleError(f"bytearray of {describe(source)}, not of bytes")
        self.budget.charge("copies", len(source), "bytearray")
        return bytearray(source, encoding) if isinstance(source, str) else bytearray(source)

    def encode(self, text, encoding="utf-8", errors="strict"):
        if not (isinstance(text, str) and encoding in ("latin1", "latin-1")):
            raise LegacyPickleError(f"_codecs.encode of {describe(text)} as {describe(encoding)}")
        self.budget.charge("copies", len(text), "_codecs.encode")
        return text.encode("latin1")

    @staticmethod
    def reconstructor(cls, base, state):
        if not (isinstance(cls, type) and issubclass(cls, PandasStandIn) and base is object
                and state is None):
            raise LegacyPickleError(f"copy_reg._reconstructor of {describe(cls)}")
        return copyreg._reconstructor(cls, base, state)

    @staticmethod
    def ordered_dict(*args):
        if args:
            raise LegacyPickleError("OrderedDict called with arguments")
        return OrderedDict()

    def find(self, module, name):
        numpy_core = ("numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric",
                      "numpy._core.numeric")
        table = {
            ("numpy", "ndarray"): _NdarrayName, ("numpy", "dtype"): self.dtype,
            **{(m, "_reconstruct"): self.reconstruct for m in numpy_core},
            **{(m, "scalar"): self.scalar for m in numpy_core},
            **{(m, "_frombuffer"): self.frombuffer for m in numpy_core},
            ("copy_reg", "_reconstructor"): self.reconstructor,
            ("copyreg", "_reconstructor"): self.reconstructor,
            ("_codecs", "encode"): self.encode,
            ("collections", "OrderedDict"): self.ordered_dict,
        }
        for builtins in ("__builtin__", "builtins"):
            table.update({(builtins, "object"): object, (builtins, "slice"): self.slice,
                          (builtins, "set"): self.set, (builtins, "frozenset"): self.frozenset,
                          (builtins, "bytearray"): self.bytearray})
        return table.get((module, name))


class _PandasUnpickler(pickle.Unpickler):
    """Latin-1 strings (Python 2 pickles), and a :class:`PandasStandIn` subclass per pandas or pyarrow class."""

    def __init__(self, file):
        super().__init__(file, encoding="latin1")
        self._stand_ins = {}

    def pandas_stand_in(self, module, name):
        """The stand-in class of ``module.name`` when it is pandas' or pyarrow's, else None."""
        if module.split(".")[0] not in ("pandas", "pyarrow"):
            return None
        key = f"{module}.{name}"
        if key not in self._stand_ins:
            self._stand_ins[key] = type(name, (PandasStandIn,), {"pandas_name": key})
        return self._stand_ins[key]


class _RestrictedUnpickler(_PandasUnpickler):
    def __init__(self, file, size):
        super().__init__(file)
        self._globals = _Globals(_Budget(size))

    def find_class(self, module, name):
        stand_in = self.pandas_stand_in(module, name)
        if stand_in is not None:
            return stand_in
        found = self._globals.find(module, name)
        if found is None:
            raise LegacyPickleError(f"refusing to load the global {bounded(module, 80)}."
                                    f"{bounded(name, 80)}: it is not part of a pickled pandas "
                                    "DataFrame")
        return found


class _TrustingUnpickler(_PandasUnpickler):
    """The same stand-ins for pandas, but numpy's own functions unchecked and no size scan.

    Only for measuring what the checks cost (``benchmarks/bench_readers.py``) on files made
    there; never for a file from elsewhere.
    """

    def find_class(self, module, name):
        stand_in = self.pandas_stand_in(module, name)
        if stand_in is not None:
            return stand_in
        if module in ("numpy.core.multiarray", "numpy.core.numeric"):
            module = module.replace("numpy.core", _NUMPY_CORE)
        return super().find_class({"__builtin__": "builtins", "copy_reg": "copyreg"}.get(module, module), name)


def _is(obj, suffix):
    return isinstance(obj, PandasStandIn) and obj.pandas_name.endswith(suffix)


def _arrow_strings(restore):
    """The strings of a pickled pyarrow ``string`` / ``large_string`` array without nulls."""
    fields = restore.args[0] if _is(restore, "pyarrow.lib._restore_array") and \
        len(restore.args) == 1 and isinstance(restore.args[0], tuple) else ()
    if len(fields) < 5:
        raise LegacyPickleError(f"a pyarrow array stored as {describe(restore)} is not in a known layout")
    kind, length, nulls, offset, buffers = fields[:5]
    width = {"string": "<i4", "large_string": "<i8"}.get(kind.args[0] if _is(kind, ".type_for_alias")
                                                          and kind.args else None)
    if width is None or nulls != 0 or not isinstance(buffers, list) or len(buffers) != 3 \
            or not all(_is(b, ".py_buffer") and b.args and isinstance(b.args[0], (bytes, bytearray))
                       for b in buffers[1:]) or not isinstance(length, int) \
            or not isinstance(offset, int):
        raise LegacyPickleError("a pyarrow column-name array is not a string array without nulls")
    ends = np.frombuffer(buffers[1].args[0], dtype=width)
    text = bytes(buffers[2].args[0])
    if not (0 <= offset and offset + length < len(ends)):
        raise LegacyPickleError(f"a pyarrow string array of {length} strings has {len(ends)} offsets")
    ends = ends[offset:offset + length + 1].astype(np.int64)
    if np.any(np.diff(ends) < 0) or ends[0] < 0 or ends[-1] > len(text):
        raise LegacyPickleError("a pyarrow string array's offsets do not fit its data")
    return np.array([text[a:b].decode("utf-8") for a, b in zip(ends[:-1], ends[1:])], dtype=object)


def _index_values(index, limit):
    """The values of a pickled pandas Index (``_new_Index(cls, attributes)``) as an array."""
    if isinstance(index, (np.ndarray, _ArrayStandIn)):
        values = _as_array(index, "an index")
    elif _is(index, "._new_Index") and len(index.args) == 2 and isinstance(index.args[1], dict):
        attributes = index.args[1]
        data = attributes.get("data")
        if data is not None and _is(data, "ArrowStringArray") and isinstance(data.state, dict):
            values = _arrow_strings(data.state.get("_pa_array"))
        elif _is(data, "__pyx_unpickle_NDArrayBacked") and isinstance(data.state, tuple) \
                and len(data.state) >= 2:  # a pandas array over a numpy one (python strings)
            values = _as_array(data.state[1], "an index's data")
        elif data is not None:
            values = _as_array(data, "an index's data")
        elif all(isinstance(attributes.get(k), int) for k in ("start", "stop", "step")) \
                and attributes["step"] != 0:
            span = range(attributes["start"], attributes["stop"], attributes["step"])
            if len(span) > limit:
                raise LegacyPickleError(f"a RangeIndex of {len(span)} entries in a {limit}-byte file")
            values = np.arange(span.start, span.stop, span.step)
        else:
            raise LegacyPickleError(f"an index stored as {describe(index)} is not in a known layout")
    else:
        raise LegacyPickleError(f"an index stored as {describe(index)} is not in a known layout")
    if values.ndim != 1 or (values.dtype.kind == "O"
                            and not all(isinstance(x, _LABEL_TYPES) for x in values.tolist())):
        raise LegacyPickleError("an index holds something other than a flat list of labels")
    return values


def _positions(locs, n_names):
    """The column positions a block fills, from a ``slice`` or an integer array."""
    if isinstance(locs, slice):
        return np.arange(n_names)[locs]
    positions = _as_array(locs, "a block's column positions")
    if positions.ndim != 1 or positions.dtype.kind not in "iu" or \
            (positions.size and (positions.min() < 0 or positions.max() >= n_names)):
        raise LegacyPickleError(f"a block's column positions are not {n_names} columns' numbers")
    return positions


def _old_style_blocks(state, limit):
    """``(names, [(values, positions)])`` from the state pandas 0.13-1.2 gave a BlockManager."""
    if not (isinstance(state, tuple) and len(state) >= 3):
        raise LegacyPickleError("the BlockManager state is not the tuple pandas writes")
    extra = state[3] if len(state) >= 4 else None
    if isinstance(extra, dict) and "0.14.1" in extra:
        layout = extra["0.14.1"]
        names = _index_values(layout["axes"][0], limit)
        return names, [(block["values"], _positions(block["mgr_locs"], len(names)))
                       for block in layout["blocks"]]
    axes, block_values, block_items = state[:3]
    names = _index_values(axes[0], limit)
    where = {name: i for i, name in enumerate(names.tolist())}
    blocks = []
    for values, items in zip(block_values, block_items):
        labels = _index_values(items, limit).tolist()
        if any(label not in where for label in labels):
            raise LegacyPickleError("a block names a column the frame does not have")
        blocks.append((values, np.array([where[label] for label in labels], dtype=np.int64)))
    return names, blocks


def _new_style_blocks(args, limit):
    """``(names, [(values, positions)])`` from ``BlockManager(blocks, axes)`` (pandas >= 1.3)."""
    blocks, axes = args
    if not (isinstance(blocks, (tuple, list)) and isinstance(axes, (tuple, list)) and len(axes) == 2):
        raise LegacyPickleError("the BlockManager's arguments are not (blocks, axes)")
    names = _index_values(axes[0], limit)
    out = []
    for block in blocks:
        if not (_is(block, "._unpickle_block") and len(block.args) == 3 and block.args[2] == 2):
            raise LegacyPickleError(f"a block stored as {describe(block)} is not a 2-D "
                                    "_unpickle_block(values, positions, ndim)")
        values, locs, _ = block.args
        out.append((values, _positions(locs, len(names))))
    return names, out


def _columns(frame, limit):
    """``(names, columns)`` of a DataFrame stand-in (see :func:`read_legacy_dataframe`)."""
    if not _is(frame, ".DataFrame") or not isinstance(frame.state, dict):
        raise LegacyPickleError(f"the pickle holds {describe(frame)}, not a pandas DataFrame")
    manager = frame.state.get("_mgr", frame.state.get("_data"))
    if not _is(manager, "BlockManager"):
        raise LegacyPickleError(f"the DataFrame's data is {describe(manager)}, not a BlockManager")
    if manager.state is not None:
        names, blocks = _old_style_blocks(manager.state, limit)
    elif len(manager.args) == 2:
        names, blocks = _new_style_blocks(manager.args, limit)
    else:
        raise LegacyPickleError("the BlockManager holds neither the state pandas < 1.3 writes nor "
                                "the (blocks, axes) of pandas >= 1.3")
    columns = [None] * len(names)
    for values, positions in blocks:
        values = _as_array(values, "a block's values")
        if values.ndim != 2 or values.shape[0] != len(positions):
            raise LegacyPickleError(f"a block's values of shape {values.shape} do not match its "
                                    f"{len(positions)} column positions")
        for row, position in zip(values, positions.tolist()):
            if columns[position] is not None:
                raise LegacyPickleError(f"column {position} is filled by two blocks")
            columns[position] = row
    if any(column is None for column in columns):
        raise LegacyPickleError("some columns are in no block")
    if len({column.shape[0] for column in columns}) > 1:
        raise LegacyPickleError("the columns have different lengths")
    labels = [name if isinstance(name, str) else str(name) for name in names.tolist()]
    return labels, columns


def _read_frame(path, checked=True):
    """``read_legacy_dataframe``; ``checked=False`` drops the size scan and the checked numpy
    globals (only to measure what they cost, on a file made for that)."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if checked:
                scan_pickle(f, size)
                frame = _RestrictedUnpickler(f, size).load()
            else:
                frame = _TrustingUnpickler(f).load()
        return _columns(frame, size)
    except LegacyPickleError:
        raise
    except PickleScanError as error:
        raise LegacyPickleError(str(error)) from None
    except Exception as error:  # a damaged pickle can fail in many ways; all mean the same here
        raise LegacyPickleError(f"not a readable pickled DataFrame ({type(error).__name__}: "
                                f"{_error_text(error)})") from None


def read_legacy_dataframe(path):
    """``(names, columns)`` of the DataFrame pickled in ``path``: a list of column names and a
    list of 1-D numpy arrays, in the frame's column order.

    Raises :class:`LegacyPickleError` (a ``ValueError``, its message at most
    :data:`MESSAGE_LIMIT` characters) for anything that is not a readable pickled DataFrame, or
    that asks for more memory than its file's size justifies; see the module text.
    """
    return _read_frame(path, checked=True)
