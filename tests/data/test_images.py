"""Image loaders on files made here in the exact raw formats, and on the shipped offline files.

Oracles: the idx files are written by hand with ``struct`` (not by the kit's writer) and read
back by torchvision and by the kit; CIFAR batches are pickled as Python 2 wrote them and read
back through the kit's restricted reader; the shipped files are checked against their
sha256 in ``data/README.md`` and against the known per-class counts.
"""

import gzip
import hashlib
import pickle
import re
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from funnelkit.data import cifar
from funnelkit.data.cache import DatasetCorruptError, DatasetNotFoundError
from funnelkit.data.idx import read_idx, write_idx
from funnelkit.data.images import IMAGE_DATASETS, OfflineDataWarning, image_dataset
from funnelkit.paths import REPO_ROOT

DATA = REPO_ROOT / "data"
MNIST_10K_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FUNNELKIT_CACHE", str(tmp_path / "cache"))


def idx_bytes(array):
    """The idx format by hand: magic 0x0803 / 0x0801, big-endian uint32 sizes, raw bytes."""
    magic = {3: 0x803, 1: 0x801}[array.ndim]
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_idx_set(root, folder, split, n, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    raw = Path(root) / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    prefix = "train" if split == "train" else "t10k"
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(idx_bytes(images))
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    return images, labels


# ---------------------------------------------------------------- idx

def test_idx_header_and_round_trip(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = idx_bytes(images)
    assert raw[:4] == b"\x00\x00\x08\x03" and len(raw) == 16 + images.size
    (tmp_path / "a").write_bytes(raw)
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), images)
    write_idx(tmp_path / "b.gz", images)
    assert gzip.decompress((tmp_path / "b.gz").read_bytes()) == raw
    labels = np.array([3, 1, 4], dtype=np.uint8)
    assert idx_bytes(labels)[:8] == b"\x00\x00\x08\x01\x00\x00\x00\x03"


def test_idx_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(struct.pack(">I", 0x0D03) + b"\x00" * 12)
    with pytest.raises(DatasetCorruptError, match="0x00000803"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(idx_bytes(np.zeros((2, 2, 2), np.uint8))[:-1])
    with pytest.raises(DatasetCorruptError, match="promises 8 values"):
        read_idx(tmp_path / "short")


# ---------------------------------------------------------------- MNIST, Fashion-MNIST

@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
@pytest.mark.parametrize("split", ["train", "test"])
def test_idx_sets_in_torchvisions_layout_agree_with_torchvision(tmp_path, name, folder, split):
    from torchvision import datasets

    other = "test" if split == "train" else "train"
    write_idx_set(tmp_path, folder, other, n=3, seed=99)      # torchvision wants both splits
    images, labels = write_idx_set(tmp_path, folder, split, n=37, seed=len(name) + len(split))
    with warnings.catch_warnings():
        warnings.simplefilter("error", OfflineDataWarning)
        data = image_dataset(name, split, root=tmp_path)
    assert data.images.shape == (37, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.labels.dtype == torch.int64
    np.testing.assert_array_equal(data.images[:, 0].numpy(), images)
    np.testing.assert_array_equal(data.labels.numpy(), labels)
    assert not data.offline and not data.is_stand_in
    assert str(tmp_path / folder / "raw") in data.source and "torchvision" in data.source
    reference = getattr(datasets, folder)(str(tmp_path), train=(split == "train"))  # its own reader
    assert torch.equal(reference.data, data.images[:, 0]) and torch.equal(reference.targets, data.labels)


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_one_split_alone_is_read_by_the_kit(tmp_path, name, folder):
    images, labels = write_idx_set(tmp_path, folder, "test", n=11, seed=5)
    data = image_dataset(name, "test", root=tmp_path)
    np.testing.assert_array_equal(data.images[:, 0].numpy(), images)
    assert data.labels.dtype == torch.int64 and data.labels.tolist() == labels.tolist()
    assert "read by the kit" in data.source and not data.offline


def test_missing_mnist_test_names_file_place_address_steps(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        image_dataset("MNIST", "test", root=tmp_path)
    message = str(info.value)
    assert "t10k-images-idx3-ubyte" in message
    assert str(tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte") in message
    assert "https://" in message and "t10k-images-idx3-ubyte.gz" in message
    assert "download=True" in message and "gunzip" in message
    assert isinstance(info.value, FileNotFoundError)


def test_half_present_set_names_the_missing_file(tmp_path):
    write_idx_set(tmp_path, "FashionMNIST", "train", n=5, seed=0)
    (tmp_path / "FashionMNIST" / "raw" / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetNotFoundError, match="train-labels-idx1-ubyte"):
        image_dataset("fashion-mnist", "train", root=tmp_path)


def test_failed_download_falls_back_and_says_why(tmp_path, monkeypatch):
    from torchvision import datasets

    def offline(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: no network")

    monkeypatch.setattr(datasets.MNIST, "download", offline)
    with pytest.warns(OfflineDataWarning, match="STAND-IN"):
        data = image_dataset("mnist", "train", root=tmp_path, download=True)
    assert data.is_stand_in and len(data) == 10_000
    with pytest.raises(DatasetNotFoundError, match="no network"):
        image_dataset("mnist", "train", root=tmp_path, download=True, allow_offline=False)


def test_prefer_offline_returns_the_shipped_copy_even_where_the_full_set_is(tmp_path):
    write_idx_set(tmp_path, "MNIST", "test", n=3, seed=1)
    full, _ = write_idx_set(tmp_path, "MNIST", "train", n=7, seed=2)
    assert len(image_dataset("mnist", "train", root=tmp_path)) == 7  # the default: the full set first
    with pytest.warns(OfflineDataWarning, match="STAND-IN"):
        data = image_dataset("mnist", "train", root=tmp_path, prefer_offline=True)
    assert data.is_stand_in and len(data) == 10_000
    # where no copy ships (MNIST test), or offline data is refused, the full set is read as usual
    assert len(image_dataset("mnist", "test", root=tmp_path, prefer_offline=True)) == 3
    data = image_dataset("mnist", "train", root=tmp_path, prefer_offline=True, allow_offline=False)
    np.testing.assert_array_equal(data.images[:, 0].numpy(), full)


def test_the_quick_image_presets_train_on_the_offline_copy_where_the_full_set_is(tmp_path):
    from funnelkit.experiments import table2, table4

    write_idx_set(tmp_path, "MNIST", "test", n=3, seed=1)
    write_idx_set(tmp_path, "MNIST", "train", n=1200, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OfflineDataWarning)
        [column] = table2.load_columns(table2.PRESETS["quick"], root=tmp_path)
        tag = table4.load_data(table4.PRESETS["quick"], root=tmp_path)[-1]
    assert column.tag == "mnist5-first10k-h1000" and len(column.images) == 10_000 and column.stand_in
    assert tag == "mnist-first10k-h1000"  # the names of the shipped runs: they load, nothing trains


# ---------------------------------------------------------------- shipped offline files

def test_shipped_files_match_readme_sha256():
    readme = (DATA / "README.md").read_text()
    pairs = re.findall(r"^([0-9a-f]{64})  (\S+)$", readme, re.M)
    listed = {name: digest for digest, name in pairs}
    assert set(listed) == {"mnist-train-first10k.npz", "fashion-mnist-t10k-images-idx3-ubyte.gz",
                           "fashion-mnist-t10k-labels-idx1-ubyte.gz", "digit-classifier.pt"}
    for name, digest in listed.items():
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest, name


def test_mnist_train_offline_stand_in(tmp_path):
    with pytest.warns(OfflineDataWarning, match="first 10,000.*grouped by digit"):
        data = image_dataset("mnist", "train", root=tmp_path)
    assert data.offline and data.is_stand_in
    assert "STAND-IN" in data.source and "mnist-train-first10k.npz" in data.source
    assert data.images.shape == (10_000, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.labels.dtype == torch.int64
    assert data.labels.bincount().tolist() == MNIST_10K_COUNTS
    assert (data.labels[1:] >= data.labels[:-1]).all()          # grouped by digit
    assert data.images.max() == 255 and data.images.min() == 0
    mean = data.images.float().mean() / 255                      # MNIST's mean pixel is ~0.13
    assert 0.10 < mean < 0.16


def test_fashion_mnist_test_offline_copy(tmp_path):
    with pytest.warns(OfflineDataWarning, match="official Fashion-MNIST test set"):
        data = image_dataset("fashion-mnist", "test", root=tmp_path)
    assert data.offline and not data.is_stand_in
    assert data.images.shape == (10_000, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.labels.bincount().tolist() == [1000] * 10
    assert data.images.max() == 255 and data.images.min() == 0
    # the same pixels through torchvision, once the files are unzipped where it reads them
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for kind in ("images-idx3", "labels-idx1"):
        gz = DATA / f"fashion-mnist-t10k-{kind}-ubyte.gz"
        (raw / f"t10k-{kind}-ubyte").write_bytes(gzip.decompress(gz.read_bytes()))
    full = image_dataset("fashion-mnist", "test", root=tmp_path)
    assert not full.offline and torch.equal(full.images, data.images)
    assert torch.equal(full.labels, data.labels)


def test_no_fallback_for_other_splits_or_when_refused(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="train-images-idx3-ubyte"):
        image_dataset("fashion-mnist", "train", root=tmp_path)
    with pytest.raises(DatasetNotFoundError, match="train-images-idx3-ubyte"):
        image_dataset("mnist", "train", root=tmp_path, allow_offline=False)


# ---------------------------------------------------------------- CIFAR-10

def write_cifar_batch(path, images, labels, bytes_keys=False):
    """A batch as the archive has it: a pickled dict, data N x 3072 (R, G, B planes), labels."""
    entry = {"data": images.reshape(len(images), -1), "labels": [int(v) for v in labels],
             "batch_label": "testing batch 1 of 1"}
    if bytes_keys:
        entry = {k.encode(): v for k, v in entry.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(entry, protocol=2))


def write_cifar(root, split, n_per_batch, seed=0, bytes_keys=False):
    rng = np.random.default_rng(seed)
    all_images, all_labels = [], []
    for name, _ in cifar.BATCHES[split]:
        images = rng.integers(0, 256, (n_per_batch, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, n_per_batch)
        write_cifar_batch(Path(root) / cifar.BASE_FOLDER / name, images, labels, bytes_keys)
        all_images.append(images)
        all_labels.append(labels)
    return np.concatenate(all_images), np.concatenate(all_labels)


@pytest.mark.parametrize("split, n_batches", [("train", 5), ("test", 1)])
@pytest.mark.parametrize("bytes_keys", [False, True])
def test_cifar10_batches(tmp_path, split, n_batches, bytes_keys):
    images, labels = write_cifar(tmp_path, split, n_per_batch=6, bytes_keys=bytes_keys)
    data = image_dataset("cifar10", split, root=tmp_path, check_md5=False)
    assert data.images.shape == (6 * n_batches, 3, 32, 32) and data.images.dtype == torch.uint8
    np.testing.assert_array_equal(data.images.numpy(), images)
    np.testing.assert_array_equal(data.labels.numpy(), labels)
    assert "md5 NOT checked" in data.source


def test_cifar10_plane_layout(tmp_path):
    """Row = 1024 red values, then green, then blue, each row-major 32 x 32."""
    planes = [np.full(1024, 10), np.full(1024, 20), np.arange(1024) % 256]
    row = np.concatenate(planes).astype(np.uint8)
    write_cifar_batch(tmp_path / cifar.BASE_FOLDER / "test_batch", row[None], [7])
    image = image_dataset("cifar10", "test", root=tmp_path, check_md5=False).images[0]
    assert (image[0] == 10).all() and (image[1] == 20).all()
    assert image[2, 0, 5] == 5 and image[2, 1, 0] == 32


def test_cifar10_md5_is_checked_and_pickles_are_restricted(tmp_path):
    write_cifar(tmp_path, "test", n_per_batch=3)
    with pytest.raises(DatasetCorruptError, match="md5"):
        image_dataset("cifar10", "test", root=tmp_path)
    evil = tmp_path / cifar.BASE_FOLDER / "test_batch"
    evil.write_bytes(pickle.dumps({"data": __import__("os").getcwd}, protocol=2))
    with pytest.raises(DatasetCorruptError, match="not a CIFAR-10 batch"):
        image_dataset("cifar10", "test", root=tmp_path, check_md5=False)


def test_cifar10_missing(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        image_dataset("cifar-10", "train", root=tmp_path)
    message = str(info.value)
    assert "data_batch_1" in message and str(tmp_path / cifar.BASE_FOLDER) in message
    assert cifar.URL in message and cifar.ARCHIVE_MD5 in message


# ---------------------------------------------------------------- ImageNet64, both variants

def test_imagenet64_small(tmp_path):
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (4, 3, 64, 64), dtype=np.uint8)
    (tmp_path / "imagenet64").mkdir()
    np.save(tmp_path / "imagenet64" / "valid_64x64.npy", images)
    data = image_dataset("imagenet64", "test", root=tmp_path)
    assert data.labels is None and torch.equal(data.images, torch.from_numpy(images))
    assert "van den Oord" in data.source
    np.save(tmp_path / "train_64x64.npy", images[:2])              # directly in root works too
    assert len(image_dataset("imagenet64-small", "train", root=tmp_path)) == 2
    np.save(tmp_path / "imagenet64" / "train_64x64.npy", images.transpose(0, 2, 3, 1))
    with pytest.raises(DatasetCorruptError, match="N x 3 x 64 x 64"):
        image_dataset("imagenet64", "train", root=tmp_path)


def test_imagenet64_chrabaszcz(tmp_path):
    rng = np.random.default_rng(4)
    folder = tmp_path / "imagenet64-chrabaszcz"
    folder.mkdir()
    chw = rng.integers(0, 256, (5, 3, 64, 64), dtype=np.uint8)
    labels = np.array([1, 1000, 7, 3, 500])
    np.savez(folder / "val_data.npz", data=chw.reshape(5, -1), labels=labels,
             mean=np.zeros(12288))
    data = image_dataset("imagenet64-chrabaszcz", "test", root=tmp_path)
    assert torch.equal(data.images, torch.from_numpy(chw))          # flat CHW, reshaped
    assert data.labels.tolist() == (labels - 1).tolist()
    assert "not comparable" in data.source
    for i in range(1, 11):
        np.savez(folder / f"train_data_batch_{i}.npz", data=chw[:2].reshape(2, -1),
                 labels=np.array([i, i]))
    train = image_dataset("imagenet64-chrabaszcz", "train", root=tmp_path)
    assert train.images.shape == (20, 3, 64, 64) and train.labels.tolist()[::2] == list(range(10))


@pytest.mark.parametrize("name, file", [("imagenet64", "train_64x64.npy"),
                                        ("imagenet64-chrabaszcz", "train_data_batch_1.npz")])
def test_imagenet64_missing_says_not_comparable(tmp_path, name, file):
    with pytest.raises(DatasetNotFoundError) as info:
        image_dataset(name, "train", root=tmp_path)
    message = str(info.value)
    assert file in message and str(tmp_path / name / file) in message
    assert "not comparable" in message and "image-net.org" in message


# ---------------------------------------------------------------- arguments

def test_bad_name_and_split_name_the_choices():
    with pytest.raises(ValueError, match="cifar10.*imagenet64-chrabaszcz") as info:
        image_dataset("svhn", "train")
    assert all(name in str(info.value) for name in IMAGE_DATASETS)
    with pytest.raises(ValueError, match="'valid'.*train, test"):
        image_dataset("mnist", "valid")
