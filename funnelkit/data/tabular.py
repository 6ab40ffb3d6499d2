"""The five tabular sets of MAF (POWER, GAS, HEPMASS, MINIBOONE, BSDS300), preprocessed exactly
as MAF did, which is how NSF and the Funnels paper (Table 1) used them.

    import funnelkit as fk
    x = fk.data.tabular("power", "train")            # (1659917, 6) float32
    x = fk.data.tabular("GAS", "test", root="~/data")  # root: the unpacked archive's data/ folder

The raw files come from the MAF archive (Zenodo record 1161203, ``data.tar.gz``); see
:mod:`funnelkit.data.maf.archive` for the layout under ``root``. By default ``root`` is
``<cache>/maf/data``, where ``<cache>`` is ``$FUNNELKIT_CACHE`` or ``~/.cache/funnelkit``. The
kit does not download the archive: a missing file raises
:class:`~funnelkit.data.cache.DatasetNotFoundError` with the address and the manual steps.

The first call for a set runs its preprocessing (:mod:`funnelkit.data.maf`: a few seconds to a
minute on the real files) and caches the three splits as float32 ``.npy`` files in
``<cache>/maf/processed/<name>-<key>/{train,val,test}.npy``, where ``<key>`` is a short hash of
the resolved ``root`` and of the preprocessing version; later calls read those files, and no
longer need the raw files. Delete that folder to preprocess again. A file that is there but
wrong raises :class:`~funnelkit.data.cache.DatasetCorruptError` and nothing is cached.

=========  ===  =========  =======  =======  ==============================================
name       dim  train      val      test     preprocessing
=========  ===  =========  =======  =======  ==============================================
POWER        6  1,659,917  184,435  204,928  seeded shuffle, 2 columns dropped, noise, split
GAS          8    852,174   94,685  105,206  3 columns dropped, correlation filter, split
HEPMASS     21    315,123   35,013  174,987  signal only, repetitive features dropped
MINIBOONE   43     29,556    3,284    3,648  split, standardise
BSDS300     63  1,000,000   50,000  250,000  none (stored split)
=========  ===  =========  =======  =======  ==============================================

All sets but BSDS300 are standardised, as MAF's code does: POWER and MINIBOONE with the
statistics of the training and validation rows together, HEPMASS with those of its train file,
GAS with those of all rows; the sizes are those of the archive's files.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cache import DatasetCorruptError, cache_dir, load_npy, save_npy_atomic
from .maf import LOADERS
from .maf.archive import RAW_FILES, default_root, raw_file

SPLITS = ("train", "val", "test")
PREPROCESSING_VERSION = 1


@dataclass(frozen=True)
class TabularInfo:
    """What the MAF archive's files give for one set: dimension and split sizes."""

    name: str
    dim: int
    n_train: int
    n_val: int
    n_test: int
    files: tuple


TABULAR_DATASETS = {
    "power": TabularInfo("POWER", 6, 1_659_917, 184_435, 204_928, RAW_FILES["power"]),
    "gas": TabularInfo("GAS", 8, 852_174, 94_685, 105_206, RAW_FILES["gas"]),
    "hepmass": TabularInfo("HEPMASS", 21, 315_123, 35_013, 174_987, RAW_FILES["hepmass"]),
    "miniboone": TabularInfo("MINIBOONE", 43, 29_556, 3_284, 3_648, RAW_FILES["miniboone"]),
    "bsds300": TabularInfo("BSDS300", 63, 1_000_000, 50_000, 250_000, RAW_FILES["bsds300"]),
}


def _dataset_key(name):
    choices = ", ".join(info.name for info in TABULAR_DATASETS.values())
    if not isinstance(name, str) or name.lower() not in TABULAR_DATASETS:
        raise ValueError(f"unknown tabular dataset {name!r}; choose one of {choices} "
                         "(any letter case)")
    return name.lower()


def _check_split(split):
    if not isinstance(split, str) or split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")


def processed_dir(name, root=None):
    """The cache folder of one set's processed splits for a given ``root``."""
    key = _dataset_key(name)
    root = default_root() if root is None else Path(root).expanduser()
    digest = hashlib.sha256(f"{root.resolve()}\n{PREPROCESSING_VERSION}".encode()).hexdigest()
    return cache_dir() / "maf" / "processed" / f"{key}-{digest[:12]}"


def _check_output(key, splits, paths):
    info = TABULAR_DATASETS[key]
    files = ", ".join(str(p) for p in paths)
    for split, x in zip(SPLITS, splits):
        if x.ndim != 2 or x.shape[1] != info.dim:
            raise DatasetCorruptError(
                paths[0], f"MAF's preprocessing of {files} gives {split} of shape {x.shape}, "
                f"but the archive's {info.name} has {info.dim} columns: not the archive's file?")
        if not np.all(np.isfinite(x)):
            raise DatasetCorruptError(paths[0], f"MAF's preprocessing of {files} gives "
                                      f"non-finite values in {split}")


def tabular(name: str, split: str, root: str | Path | None = None) -> np.ndarray:
    """One split of a MAF tabular set, MAF-preprocessed, as a float32 array ``(N, dim)``.

    ``name``: POWER, GAS, HEPMASS, MINIBOONE or BSDS300 (any letter case). ``split``: "train",
    "val" or "test". ``root``: the folder holding the unpacked archive's layout
    (``power/data.npy``, ...); default ``<cache>/maf/data``. Raises ``ValueError`` for an
    unknown name or split, :class:`~funnelkit.data.cache.DatasetNotFoundError` for a missing
    file and :class:`~funnelkit.data.cache.DatasetCorruptError` for a file that is not the
    archive's.
    """
    key = _dataset_key(name)
    _check_split(split)
    info = TABULAR_DATASETS[key]
    root = default_root() if root is None else Path(root).expanduser()
    folder = processed_dir(key, root)
    cached = load_npy(folder / f"{split}.npy")
    if (cached is not None and cached.dtype == np.float32 and cached.ndim == 2
            and cached.shape[1] == info.dim):
        return cached
    paths = [raw_file(root, relpath, key) for relpath in info.files]
    splits = LOADERS[key].load(paths)
    _check_output(key, splits, paths)
    try:
        for split_name, x in zip(SPLITS, splits):
            save_npy_atomic(folder / f"{split_name}.npy", x)
    except OSError as error:
        warnings.warn(f"could not cache the processed {info.name} splits in {folder} ({error}); "
                      "the next call will preprocess again", RuntimeWarning, stacklevel=2)
    return splits[SPLITS.index(split)]
