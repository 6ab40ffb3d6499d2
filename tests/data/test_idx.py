"""Broken and mismatched MNIST / Fashion-MNIST files: each refused with the file named, nothing changed.

Each broken set is tried in the two places the kit reads idx files from: torchvision's layout
under a root (``<root>/FashionMNIST/raw/``, plain or ``.gz``, and torchvision's old
``processed/*.pt``), and the kit's own offline folder (``data/fashion-mnist-t10k-*-ubyte.gz``).
Files are written by hand with ``struct`` (``idx_bytes``), not by the kit's writer; the good
files are read back by torchvision too, and must agree.
"""

import gzip
import hashlib
import struct
import tracemalloc

import numpy as np
import pytest
import torch
import torchvision.datasets  # noqa: F401  (imported before tracemalloc counts allocations)

from funnelkit import paths
from funnelkit.data.cache import DatasetCorruptError
from funnelkit.data.idx import read_idx, read_idx_set
from funnelkit.data.images import image_dataset

from .test_images import idx_bytes


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FUNNELKIT_CACHE", str(tmp_path / "cache"))


def good_set(n=37, seed=0, shape=(28, 28)):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, *shape), dtype=np.uint8),
            rng.integers(0, 10, n, dtype=np.uint8))


def broken(kind):
    """``(images file bytes, labels file bytes, what the message must say)`` of a broken set."""
    images, labels = good_set()
    good_images, good_labels = idx_bytes(images), idx_bytes(labels)
    if kind == "swapped":
        return good_labels, good_images, ("images", "swapped")
    if kind == "wrong shape":
        return idx_bytes(good_set(shape=(32, 32))[0]), good_labels, ("images", "28x28")
    if kind == "wrong magic":
        return b"\x00\x00\x0d\x03" + good_images[4:], good_labels, ("images", "0x00000d03")
    if kind == "wrong dtype byte":
        return good_images, b"\x00\x00\x09\x01" + good_labels[4:], ("labels", "0x00000901")
    if kind == "truncated":
        return good_images[:-1], good_labels, ("images", "promises 29008 values")
    if kind == "trailing bytes":
        return good_images, good_labels + b"\x00", ("labels", "promises 37 values")
    if kind == "count mismatch":
        return good_images, idx_bytes(labels[:-1]), ("labels", "36 labels")
    if kind == "bad label":
        bad = labels.copy()
        bad[5] = 10
        return good_images, idx_bytes(bad), ("labels", "label 10 at position 5")
    if kind == "huge header":  # 4e9 images promised by a file of a few bytes
        return struct.pack(">IIII", 0x803, 2**32 - 1, 28, 28) + b"\x00" * 64, good_labels, \
            ("images", "promises")
    raise AssertionError(kind)


KINDS = ["swapped", "wrong shape", "wrong magic", "wrong dtype byte", "truncated",
         "trailing bytes", "count mismatch", "bad label", "huge header"]


def snapshot(folder):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def write_raw(root, images, labels, compress):
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    files = []
    for name, data in (("t10k-images-idx3-ubyte", images), ("t10k-labels-idx1-ubyte", labels)):
        path = raw / (name + ".gz" if compress else name)
        path.write_bytes(gzip.compress(data) if compress else data)
        files.append(path)
    return files


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("kind", KINDS)
def test_broken_set_in_torchvisions_layout_names_the_file(tmp_path, kind, compress):
    images, labels, (bad_file, says) = broken(kind)
    files = dict(zip(("images", "labels"), write_raw(tmp_path / "root", images, labels, compress)))
    before = snapshot(tmp_path)
    tracemalloc.start()
    try:
        with pytest.raises(DatasetCorruptError) as info:
            image_dataset("fashion-mnist", "test", root=tmp_path / "root", allow_offline=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert message.startswith(str(files[bad_file])) and says in message
    assert isinstance(info.value, ValueError) and len(message) < 600
    assert peak < 20_000_000  # nothing near the 3 GB a huge header promises
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("kind", KINDS)
def test_broken_offline_copy_names_the_file(tmp_path, monkeypatch, kind):
    images, labels, (bad_file, says) = broken(kind)
    data = tmp_path / "data"
    data.mkdir()
    files = {"images": data / "fashion-mnist-t10k-images-idx3-ubyte.gz",
             "labels": data / "fashion-mnist-t10k-labels-idx1-ubyte.gz"}
    files["images"].write_bytes(gzip.compress(images))
    files["labels"].write_bytes(gzip.compress(labels))
    monkeypatch.setattr(paths, "DATA_DIR", data)
    before = snapshot(tmp_path)
    with pytest.raises(DatasetCorruptError) as info:
        image_dataset("fashion-mnist", "test", root=tmp_path / "empty-root")
    assert str(info.value).startswith(str(files[bad_file])) and says in str(info.value)
    assert snapshot(tmp_path) == before


def test_good_gz_set_in_torchvisions_layout_matches_torchvision(tmp_path):
    from torchvision import datasets

    images, labels = good_set(n=23, seed=4)
    write_raw(tmp_path, idx_bytes(images), idx_bytes(labels), compress=True)
    data = image_dataset("fashion-mnist", "test", root=tmp_path, allow_offline=False)
    np.testing.assert_array_equal(data.images[:, 0].numpy(), images)
    np.testing.assert_array_equal(data.labels.numpy(), labels)
    # torchvision reads the unpacked files; both readers give the same arrays
    raw = tmp_path / "FashionMNIST" / "raw"
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (raw / name).write_bytes(gzip.decompress((raw / f"{name}.gz").read_bytes()))
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):  # torchvision wants both splits
        (raw / name).write_bytes(idx_bytes(good_set(n=2)[0 if "images" in name else 1]))
    reference = datasets.FashionMNIST(str(tmp_path), train=False)
    assert torch.equal(reference.data, data.images[:, 0])
    assert torch.equal(reference.targets, data.labels)


def write_processed(root, images, labels, split="test"):
    folder = root / "FashionMNIST" / "processed"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ("training.pt" if split == "train" else "test.pt")
    torch.save((images, labels), path)
    return path


def test_processed_files_are_read_and_agree_with_torchvision(tmp_path):
    from torchvision import datasets

    images, labels = (torch.from_numpy(a) for a in good_set(n=19, seed=2))
    write_processed(tmp_path, images, labels.long())
    write_processed(tmp_path, images[:3], labels[:3].long(), split="train")
    data = image_dataset("fashion-mnist", "test", root=tmp_path, allow_offline=False)
    assert "processed" in data.source
    reference = datasets.FashionMNIST(str(tmp_path), train=False)  # reads the same legacy files
    assert torch.equal(reference.data, data.images[:, 0]) and torch.equal(reference.targets, data.labels)


@pytest.mark.parametrize("content, says", [
    ("garbage", "not a torchvision processed file"),
    ("wrong shape", "(N, 28, 28)"),
    ("count mismatch", "expected 19 integer labels"),
    ("bad label", "labels outside 0..9"),
    ("one tensor", "pair (images, labels)"),
])
def test_broken_processed_file_names_the_file(tmp_path, content, says):
    images, labels = (torch.from_numpy(a) for a in good_set(n=19, seed=2))
    labels = labels.long()
    folder = tmp_path / "FashionMNIST" / "processed"
    folder.mkdir(parents=True)
    path = folder / "test.pt"
    if content == "garbage":
        path.write_bytes(b"PK\x03\x04 not really a zip")
    elif content == "wrong shape":
        torch.save((images[:, :14], labels), path)
    elif content == "count mismatch":
        torch.save((images, labels[:-1]), path)
    elif content == "bad label":
        labels[3] = 12
        torch.save((images, labels), path)
    else:
        torch.save(images, path)
    before = snapshot(tmp_path)
    with pytest.raises(DatasetCorruptError) as info:
        image_dataset("fashion-mnist", "test", root=tmp_path, allow_offline=False)
    assert str(info.value).startswith(str(path)) and says in str(info.value)
    assert snapshot(tmp_path) == before


def test_read_idx_checks_the_kind_asked_for(tmp_path):
    images, labels = good_set(n=3)
    (tmp_path / "i").write_bytes(idx_bytes(images))
    (tmp_path / "l").write_bytes(idx_bytes(labels))
    np.testing.assert_array_equal(read_idx(tmp_path / "i", expect="images"), images)
    np.testing.assert_array_equal(read_idx(tmp_path / "l", expect="labels"), labels)
    with pytest.raises(DatasetCorruptError, match="expected an idx labels file"):
        read_idx(tmp_path / "i", expect="labels")
    with pytest.raises(ValueError, match="expect must be"):
        read_idx(tmp_path / "i", expect="pictures")
    got_images, got_labels = read_idx_set(tmp_path / "i", tmp_path / "l")
    assert got_images.flags.writeable and np.array_equal(got_labels, labels)


def test_a_gzip_header_promising_more_than_deflate_can_hold_is_refused_before_reading(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(struct.pack(">IIII", 0x803, 2**32 - 1, 2**16, 2**16)))
    with pytest.raises(DatasetCorruptError, match="at most"):
        read_idx(path)


def test_the_shipped_fashion_mnist_test_set_passes_every_check():
    folder = paths.REPO_ROOT / "data"
    images, labels = read_idx_set(folder / "fashion-mnist-t10k-images-idx3-ubyte.gz",
                                  folder / "fashion-mnist-t10k-labels-idx1-ubyte.gz",
                                  dataset="fashion-mnist")
    assert images.shape == (10_000, 28, 28) and np.bincount(labels).tolist() == [1000] * 10
