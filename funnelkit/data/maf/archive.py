"""Where the MAF archive's files live, and the error that says how to get one that is missing.

The five tabular sets of MAF (Papamakarios et al., 2017), as used by NSF and by the Funnels
paper, come from one archive: Zenodo record 1161203, "Preprocessed datasets for MAF
experiments", ``data.tar.gz`` (about 820 MB packed, 1.6 GB unpacked). It unpacks to a folder
``data/`` whose layout is the ``root`` of :func:`funnelkit.data.tabular`::

    power/data.npy                 gas/ethylene_CO.pickle
    hepmass/1000_train.csv         hepmass/1000_test.csv
    miniboone/data.npy             BSDS300/BSDS300.hdf5

(``BSDS300`` keeps the archive's upper case; the archive also holds ``cifar10/`` and
``mnist/``, which the kit does not use.) The kit never downloads this archive on its own.
"""

from pathlib import Path

from ..cache import DatasetNotFoundError, cache_dir

ARCHIVE_URL = "https://zenodo.org/record/1161203/files/data.tar.gz"
ARCHIVE_RECORD = 'Zenodo record 1161203, "Preprocessed datasets for MAF experiments"'

RAW_FILES = {
    "power": ("power/data.npy",),
    "gas": ("gas/ethylene_CO.pickle",),
    "hepmass": ("hepmass/1000_train.csv", "hepmass/1000_test.csv"),
    "miniboone": ("miniboone/data.npy",),
    "bsds300": ("BSDS300/BSDS300.hdf5",),
}


def default_root():
    """``<cache>/maf/data``: where the unpacked archive's ``data/`` folder goes by default."""
    return cache_dir() / "maf" / "data"


def manual_steps(root):
    """The steps that put the archive where :func:`funnelkit.data.tabular` looks for it."""
    return [
        f"download {ARCHIVE_URL} ({ARCHIVE_RECORD}, about 820 MB)",
        "unpack it: tar -xzf data.tar.gz  (this makes a folder data/ holding power/, gas/, "
        "hepmass/, miniboone/ and BSDS300/)",
        f"move the contents of data/ into {root} (so that {Path(root) / 'power' / 'data.npy'} "
        "exists), or pass root=<the unpacked data folder> to funnelkit.data.tabular, "
        "or set FUNNELKIT_CACHE=<folder> and put them in <folder>/maf/data",
    ]


def raw_file(root, relpath, dataset):
    """The path ``root/relpath``; :class:`DatasetNotFoundError` if it is not a file."""
    path = Path(root) / relpath
    if not path.is_file():
        raise DatasetNotFoundError(relpath, path, ARCHIVE_URL, manual_steps(root),
                                   dataset=dataset.upper())
    return path
