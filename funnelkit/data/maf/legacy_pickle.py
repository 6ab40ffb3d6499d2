"""Read the GAS file, a pandas DataFrame pickled by an old pandas under Python 2, without pandas.

``gas/ethylene_CO.pickle`` of the MAF archive was written by ``DataFrame.to_pickle`` of a
pandas < 2 under Python 2. pandas >= 2 can no longer read that format (gpapamak/maf#13), and the
kit does not want pandas for this one file. So no conversion step is needed: this module reads
the pickle itself.

How: Python's own unpickler with ``encoding="latin1"`` (Python 2 byte strings, as numpy and
pandas read them), restricted to a short list of globals:

* numpy's array rebuilding (``numpy.core.multiarray._reconstruct``, ``ndarray``, ``dtype``,
  ``scalar``; the old ``numpy.core`` paths are mapped to ``numpy._core`` on numpy 2);
* a few builtins the pickle format itself uses (``copy_reg._reconstructor``, ``object``,
  ``slice``, ...);
* any ``pandas.*`` name, which becomes an inert stand-in that only records the arguments and the
  state it is given. Nothing from pandas is imported or run.

Any other global is refused, so loading the file runs no code. (Pickles written by pandas 3,
whose string columns and block manager are stored differently, are not in this layout; the
archive's file is.) The DataFrame is then rebuilt
from what pandas stored: the frame's state holds its ``BlockManager`` (key ``_data``, or
``_mgr`` in pandas >= 1.1), whose state is ``(axes, block values, block items, extra)``; since
pandas 0.14.1 ``extra["0.14.1"]`` holds the axes (axis 0 the column names, axis 1 the row
index) and, per block, a ``(n_columns_in_block, n_rows)`` array with the column positions it
fills (a ``slice`` or an integer array). Older pickles are read from the block items instead.
Index objects are stored as ``_new_Index(cls, {"data": array, ...})`` (a ``RangeIndex`` as
start/stop/step).
"""

import importlib
import pickle

import numpy as np

_BUILTINS = {"object", "slice", "set", "frozenset", "complex", "bytearray", "list", "tuple",
             "dict", "int", "float", "str", "bool"}
_NUMPY_CORE = "numpy._core" if hasattr(np, "_core") else "numpy.core"
_NUMPY_MULTIARRAY = importlib.import_module(f"{_NUMPY_CORE}.multiarray")
_NUMPY_NUMERIC = importlib.import_module(f"{_NUMPY_CORE}.numeric")


class LegacyPickleError(ValueError):
    """The pickle cannot be read, or does not hold a DataFrame in a layout this reader knows."""


class PandasStandIn:
    """Stands in for a pandas class or function named in the pickle; keeps what it is given."""

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


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file):
        super().__init__(file, encoding="latin1")
        self._stand_ins = {}

    def find_class(self, module, name):
        if module == "pandas" or module.startswith("pandas."):
            key = f"{module}.{name}"
            if key not in self._stand_ins:
                self._stand_ins[key] = type(name, (PandasStandIn,), {"pandas_name": key})
            return self._stand_ins[key]
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in (
                "_reconstruct", "scalar"):
            return getattr(_NUMPY_MULTIARRAY, name)
        if module in ("numpy.core.numeric", "numpy._core.numeric") and name == "_frombuffer":
            return getattr(_NUMPY_NUMERIC, name)  # arrays pickled with protocol 5 (newer numpy)
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if ((module in ("__builtin__", "builtins") and name in _BUILTINS)
                or (module in ("copy_reg", "copyreg") and name == "_reconstructor")
                or (module == "_codecs" and name == "encode")
                or (module == "collections" and name == "OrderedDict")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load the global {module}.{name}: it is not "
                                     "part of a pickled pandas DataFrame")


def _is(obj, suffix):
    return isinstance(obj, PandasStandIn) and obj.pandas_name.endswith(suffix)


def _index_values(index):
    """The values of a pickled pandas Index (``_new_Index(cls, attributes)``) as an array."""
    if isinstance(index, np.ndarray):
        return index
    if _is(index, "._new_Index") and len(index.args) == 2 and isinstance(index.args[1], dict):
        attributes = index.args[1]
        if "data" in attributes and isinstance(attributes["data"], (np.ndarray, list, tuple)):
            return np.asarray(attributes["data"])
        if all(k in attributes for k in ("start", "stop", "step")):
            return np.arange(attributes["start"], attributes["stop"], attributes["step"])
    raise LegacyPickleError(f"an index stored as {index!r} is not in a known layout")


def _blocks(manager_state):
    """``(column names, [(values, positions)])`` from a pickled BlockManager's state."""
    if not (isinstance(manager_state, tuple) and len(manager_state) >= 3):
        raise LegacyPickleError("the BlockManager state is not the tuple pandas writes")
    extra = manager_state[3] if len(manager_state) >= 4 else None
    if isinstance(extra, dict) and "0.14.1" in extra:
        layout = extra["0.14.1"]
        names = _index_values(layout["axes"][0])
        everything = np.arange(len(names))
        blocks = []
        for block in layout["blocks"]:
            locs = block["mgr_locs"]
            positions = everything[locs] if isinstance(locs, slice) else np.asarray(locs)
            blocks.append((block["values"], positions))
        return names, blocks
    axes, block_values, block_items = manager_state[:3]
    names = _index_values(axes[0])
    where = {name: i for i, name in enumerate(names.tolist())}
    blocks = []
    for values, items in zip(block_values, block_items):
        positions = np.array([where[name] for name in _index_values(items).tolist()])
        blocks.append((values, positions))
    return names, blocks


def read_legacy_dataframe(path):
    """``(names, columns)`` of the DataFrame pickled in ``path``: a list of column names and a
    list of 1-D numpy arrays, in the frame's column order.

    Raises :class:`LegacyPickleError` for anything that is not a readable pickled DataFrame.
    """
    try:
        with open(path, "rb") as f:
            frame = _RestrictedUnpickler(f).load()
    except LegacyPickleError:
        raise
    except Exception as error:  # a damaged pickle can fail in many ways; all mean the same here
        raise LegacyPickleError(f"not a readable pickle ({type(error).__name__}: {error})") \
            from None
    if not _is(frame, ".DataFrame") or not isinstance(frame.state, dict):
        raise LegacyPickleError(f"the pickle holds {frame!r}, not a pandas DataFrame")
    manager = frame.state.get("_mgr", frame.state.get("_data"))
    if not _is(manager, "BlockManager"):
        raise LegacyPickleError(f"the DataFrame's data is {manager!r}, not a BlockManager")
    try:
        names, blocks = _blocks(manager.state)
        columns = [None] * len(names)
        for values, positions in blocks:
            if not isinstance(values, np.ndarray) or values.ndim != 2 or \
                    values.shape[0] != len(positions):
                raise LegacyPickleError("a block's values do not match its column positions")
            for row, position in zip(values, positions.tolist()):
                if columns[position] is not None:
                    raise LegacyPickleError(f"column {position} is filled by two blocks")
                columns[position] = row
    except (KeyError, IndexError, TypeError, ValueError) as error:
        if isinstance(error, LegacyPickleError):
            raise
        raise LegacyPickleError(f"the DataFrame's blocks are not in a known layout ({error})") \
            from None
    if any(column is None for column in columns):
        raise LegacyPickleError("some columns are in no block")
    if len({column.shape[0] for column in columns}) > 1:
        raise LegacyPickleError("the columns have different lengths")
    return [name if isinstance(name, str) else str(name) for name in names.tolist()], columns
