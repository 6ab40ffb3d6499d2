"""The two downsampled ImageNet 64x64 sets, read from files the user supplies.

They are different datasets, and their likelihoods are **not comparable**:

* ``"imagenet64"`` (alias ``"imagenet64-small"``): van den Oord et al. (2016, PixelRNN), the set
  Glow, NSF and the Funnels paper report on. 1,281,149 train and 49,999 valid images (the
  paper's test set). Read from NSF's ``train_64x64.npy`` / ``valid_64x64.npy``, uint8
  N x 3 x 64 x 64 (CHW). Its original address (image-net.org/small) no longer serves it; NSF's
  ``experiments/process_imagenet.py`` builds the ``.npy`` files from the PNG tars. No labels.
* ``"imagenet64-chrabaszcz"``: Chrabaszcz, Loshchilov and Hutter (2017), resized another way.
  1,281,167 train and 50,000 val images in ``train_data_batch_1.npz`` ... ``_10.npz`` and
  ``val_data.npz``, each with ``data`` (N x 12288 uint8, flat CHW) and ``labels`` (1..1000;
  returned here as 0..999). Needs an image-net.org login and the ImageNet Terms of Access.

Neither is downloaded by the kit; the whole train split is held in memory (about 16 GB).
"""

from pathlib import Path

import numpy as np

from .cache import DatasetCorruptError, DatasetNotFoundError

NOT_COMPARABLE = ("'imagenet64' (van den Oord et al. 2016, the paper's numbers) and "
                  "'imagenet64-chrabaszcz' (Chrabaszcz et al. 2017) are different resizings of "
                  "ImageNet; their bits/dim are not comparable.")

SMALL_FILES = {"train": ("train_64x64.npy",), "test": ("valid_64x64.npy",)}
SMALL_URL = ("http://image-net.org/small/download.php (no longer served; the PNG tars "
             "train_64x64.tar/valid_64x64.tar circulate as a torrent)")
CHRABASZCZ_FILES = {"train": tuple(f"train_data_batch_{i}.npz" for i in range(1, 11)),
                    "test": ("val_data.npz",)}
CHRABASZCZ_URL = "https://image-net.org/data/downsample/ (login required)"


def _find(root, subfolder, name):
    """``root/subfolder/name``, else ``root/name``; ``None`` when neither exists."""
    for path in (Path(root) / subfolder / name, Path(root) / name):
        if path.is_file():
            return path
    return None


def _missing(dataset, root, subfolder, name, url, steps):
    return DatasetNotFoundError(name, Path(root) / subfolder / name, url,
                                list(steps) + [NOT_COMPARABLE], dataset=dataset)


def load_small(root, split):
    """``(images uint8 (N,3,64,64), None, [path])`` of the van den Oord set."""
    name = SMALL_FILES[split][0]
    path = _find(root, "imagenet64", name)
    if path is None:
        raise _missing("imagenet64", root, "imagenet64", name, SMALL_URL, [
            "get the PNG tars train_64x64.tar and valid_64x64.tar of the 'small' ImageNet "
            "(van den Oord et al. 2016)",
            "convert each to a uint8 N x 3 x 64 x 64 .npy as NSF's experiments/process_imagenet.py "
            "does (or use NSF's ImageNet64Fast files)",
            f"put {name} in {Path(root) / 'imagenet64'} (or pass its folder as root)",
        ])
    try:
        images = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DatasetCorruptError(path, f"cannot read the .npy ({error})") from error
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (3, 64, 64):
        raise DatasetCorruptError(path, f"expected uint8 N x 3 x 64 x 64 (CHW), got "
                                        f"{images.dtype} {images.shape}")
    return images, None, [path]


def load_chrabaszcz(root, split):
    """``(images uint8 (N,3,64,64), labels int64 0..999, [paths])`` of the Chrabaszcz set."""
    images, labels, paths = [], [], []
    for name in CHRABASZCZ_FILES[split]:
        path = _find(root, "imagenet64-chrabaszcz", name)
        if path is None:
            raise _missing("imagenet64-chrabaszcz", root, "imagenet64-chrabaszcz", name,
                           CHRABASZCZ_URL, [
                               "log in at image-net.org and accept the ImageNet Terms of Access "
                               "(non-commercial research or education; no redistribution)",
                               "download Imagenet64_train_part1_npz.zip, Imagenet64_train_part2_npz"
                               ".zip and Imagenet64_val_npz.zip from the address above",
                               f"unzip them so that {name} lies in "
                               f"{Path(root) / 'imagenet64-chrabaszcz'} "
                               "(or pass its folder as root)",
                           ])
        try:
            with np.load(path, allow_pickle=False) as npz:
                data, y = npz["data"], npz["labels"]
        except (OSError, ValueError, EOFError, KeyError) as error:
            raise DatasetCorruptError(path, f"not a Chrabaszcz ImageNet64 batch ({error})"
                                      ) from error
        data, y = np.asarray(data), np.asarray(y).reshape(-1)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 64 * 64:
            raise DatasetCorruptError(path, f"'data' should be uint8 N x 12288, is {data.dtype} "
                                            f"{data.shape}")
        if y.shape != (data.shape[0],) or (y.size and not 1 <= y.min() <= y.max() <= 1000):
            raise DatasetCorruptError(path, "'labels' should be N ints in 1..1000")
        images.append(data.reshape(-1, 3, 64, 64))
        labels.append(y.astype(np.int64) - 1)
        paths.append(path)
    return np.concatenate(images), np.concatenate(labels), paths
