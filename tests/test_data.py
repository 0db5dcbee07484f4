"""minicnn.data: IDX files, where the data is found, downloading, the loader, resizing."""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import minicnn as mc
import minicnn.data
from minicnn.data import (
    DataLoader,
    DownloadError,
    FashionMNIST,
    IDXError,
    read_idx,
    resize_bilinear,
    text_labels,
)
from minicnn.data import fashion_mnist as fm

REAL_DEBIAN_DIR = fm.DEBIAN_DIR  # before the fixture below hides it


# ---- helpers ------------------------------------------------------------------------------
IDX_CODES = {
    "uint8": 0x08,
    "int8": 0x09,
    "int16": 0x0B,
    "int32": 0x0C,
    "float32": 0x0D,
    "float64": 0x0E,
}


def idx_bytes(array: numpy.ndarray) -> bytes:
    """An IDX file's bytes, written independently of the reader: header, big-endian data."""
    header = struct.pack(">BBBB", 0, 0, IDX_CODES[array.dtype.name], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_file(path: Path, content: bytes, compress: bool) -> Path:
    if compress:
        path = path.with_name(path.name + ".gz")
        content = gzip.compress(content)
    path.write_bytes(content)
    return path


def write_split(directory: Path, split: str, n: int, compress: bool = True, seed: int = 0):
    """Fake Fashion-MNIST files of ``split`` in ``directory``; returns (images, labels)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = numpy.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=numpy.uint8)
    labels = rng.integers(0, 10, size=n, dtype=numpy.uint8)
    images_name, labels_name = fm.SPLITS[split]
    write_file(directory / images_name, idx_bytes(images), compress)
    write_file(directory / labels_name, idx_bytes(labels), compress)
    return images, labels


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def isolated_places(tmp_path, monkeypatch):
    """No test sees the real $MINICNN_DATA, user cache or Debian directory."""
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "debian-datasets" / "fashion-mnist")
    monkeypatch.setattr(fm, "MIRRORS", ["http://mirrors.invalid/must-not-be-used/"])


# ---- reading IDX files ----------------------------------------------------------------------
@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("dtype", ["uint8", "int16", "int32", "float32", "float64"])
def test_read_idx_round_trips(tmp_path, compress, dtype):
    array = (numpy.arange(60).reshape(3, 4, 5) - 7).astype(dtype)
    if dtype == "uint8":
        array = numpy.arange(60, dtype=numpy.uint8).reshape(3, 4, 5)
    path = write_file(tmp_path / "x-idx3-ubyte", idx_bytes(array), compress)
    result = read_idx(path)
    assert result.dtype == array.dtype and result.dtype.isnative
    assert_array_equal(result, array)


def test_read_idx_one_dimensional_labels(tmp_path):
    labels = numpy.array([3, 0, 9, 9, 1], dtype=numpy.uint8)
    result = read_idx(write_file(tmp_path / "labels-idx1-ubyte", idx_bytes(labels), False))
    assert result.shape == (5,)
    assert_array_equal(result, labels)


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda b: b"\x01" + b[1:], "bad magic number"),
        (lambda b: b[:2] + b"\x07" + b[3:], "bad magic number"),  # no dtype 0x07
        (lambda b: b[:-5], "truncated"),
        (lambda b: b + b"\x00", "trailing bytes"),
        (lambda b: b[:10], "too short"),
        (lambda b: b[:3], "4-byte IDX header"),
    ],
    ids=["magic", "dtype-code", "truncated", "trailing", "dims-cut", "header-cut"],
)
@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_read_idx_corrupt_file_is_an_error_naming_it(tmp_path, corrupt, message, compress):
    good = idx_bytes(numpy.zeros((2, 3, 3), dtype=numpy.uint8))
    path = write_file(tmp_path / "bad-idx3-ubyte", corrupt(good), compress)
    with pytest.raises(IDXError, match=message) as error:
        read_idx(path)
    assert str(path) in str(error.value)


def test_read_idx_truncated_gzip_is_an_error_naming_it(tmp_path):
    compressed = gzip.compress(idx_bytes(numpy.zeros((50, 28, 28), dtype=numpy.uint8)))
    path = tmp_path / "cut-idx3-ubyte.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(IDXError, match="truncated or corrupt") as error:
        read_idx(path)
    assert str(path) in str(error.value)


def test_images_and_labels_must_agree_in_count(tmp_path):
    images_name, labels_name = fm.SPLITS["train"]
    write_file(tmp_path / images_name, idx_bytes(numpy.zeros((3, 28, 28), numpy.uint8)), True)
    write_file(tmp_path / labels_name, idx_bytes(numpy.zeros(2, numpy.uint8)), True)
    with pytest.raises(IDXError, match="3 images but .* 2 labels") as error:
        FashionMNIST(root=tmp_path)
    assert images_name in str(error.value) and labels_name in str(error.value)


def test_images_must_be_28_by_28_and_labels_0_to_9(tmp_path):
    images_name, labels_name = fm.SPLITS["test"]
    write_file(tmp_path / images_name, idx_bytes(numpy.zeros((2, 28, 27), numpy.uint8)), False)
    write_file(tmp_path / labels_name, idx_bytes(numpy.zeros(2, numpy.uint8)), False)
    with pytest.raises(IDXError, match=r"\(N, 28, 28\), got uint8 \(2, 28, 27\)"):
        FashionMNIST(root=tmp_path, train=False)
    write_file(tmp_path / images_name, idx_bytes(numpy.zeros((2, 28, 28), numpy.uint8)), False)
    write_file(tmp_path / labels_name, idx_bytes(numpy.array([1, 10], numpy.uint8)), False)
    with pytest.raises(IDXError, match="expected labels in 0..9, got 10"):
        FashionMNIST(root=tmp_path, train=False)


# ---- the dataset -------------------------------------------------------------------------
@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_dataset_from_explicit_root(tmp_path, compress):
    images, labels = write_split(tmp_path / "data", "train", 7, compress)
    ds = FashionMNIST(root=tmp_path / "data", train=True)
    assert len(ds) == 7
    assert ds.data.dtype == numpy.uint8 and ds.data.shape == (7, 28, 28)
    assert ds.targets.dtype == numpy.int64 and ds.targets.shape == (7,)
    assert_array_equal(ds.data, images)
    assert_array_equal(ds.targets, labels)
    image, label = ds[3]
    assert image.shape == (28, 28) and image.dtype == numpy.uint8
    assert type(label) is int and label == labels[3]
    assert_array_equal(ds[-1][0], images[-1])
    with pytest.raises(TypeError, match="index must be an int"):
        ds[1:3]


def test_dataset_test_split_reads_t10k_files(tmp_path):
    write_split(tmp_path, "train", 5)
    _, labels = write_split(tmp_path, "test", 3, seed=1)
    ds = FashionMNIST(root=tmp_path, train=False)
    assert len(ds) == 3
    assert_array_equal(ds.targets, labels)


def test_classes_and_text_labels_follow_the_book():
    book = ["t-shirt", "trouser", "pullover", "dress", "coat",
            "sandal", "shirt", "sneaker", "bag", "ankle boot"]  # fmt: skip
    assert FashionMNIST.classes == book
    assert text_labels([0, 9, 4]) == ["t-shirt", "ankle boot", "coat"]
    assert text_labels(numpy.array([[1], [8]])) == ["trouser", "bag"]
    assert text_labels(mc.tensor(numpy.array([7, 2]))) == ["sneaker", "pullover"]
    for bad in ([10], [-1], [1.5]):
        with pytest.raises(ValueError, match="text_labels: expected integer class indices"):
            text_labels(bad)


# ---- where the files are looked for ----------------------------------------------------------
def places(tmp_path):
    return SimpleNamespace(
        env=tmp_path / "env-data",
        cache=tmp_path / "xdg-cache" / "minicnn" / "fashion-mnist",
        debian=fm.DEBIAN_DIR,
    )


def test_cache_dir_follows_xdg_and_defaults_to_home(tmp_path, monkeypatch):
    assert fm.cache_dir() == places(tmp_path).cache
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert fm.cache_dir() == tmp_path / "home" / ".cache" / "minicnn" / "fashion-mnist"


def test_search_order_env_then_cache_then_debian(tmp_path, monkeypatch):
    where = places(tmp_path)
    write_split(where.debian, "train", 4, seed=3)
    assert FashionMNIST().root == where.debian
    write_split(where.cache, "train", 5, seed=2)
    assert FashionMNIST().root == where.cache
    write_split(where.env, "train", 6, seed=1)
    monkeypatch.setenv("MINICNN_DATA", str(where.env))
    ds = FashionMNIST()
    assert ds.root == where.env and len(ds) == 6


def test_minicnn_data_without_the_files_is_skipped(tmp_path, monkeypatch):
    where = places(tmp_path)
    where.env.mkdir()
    write_split(where.env, "test", 2)  # the test split only
    write_split(where.cache, "train", 5)
    monkeypatch.setenv("MINICNN_DATA", str(where.env))
    assert FashionMNIST(train=True).root == where.cache
    assert FashionMNIST(train=False).root == where.env


def test_nothing_found_lists_every_place_and_every_remedy(tmp_path, monkeypatch):
    where = places(tmp_path)
    monkeypatch.setenv("MINICNN_DATA", str(where.env))
    write_split(where.cache, "test", 2)  # the cache holds the other split only
    with pytest.raises(FileNotFoundError) as error:
        FashionMNIST(train=True)
    message = str(error.value)
    for place in (where.env, where.cache, where.debian):
        assert str(place) in message
    assert "missing train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz]" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "MINICNN_DATA" in message and "download=True" in message


def test_nothing_found_reports_an_unset_minicnn_data(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"\$MINICNN_DATA: not set"):
        FashionMNIST()


def test_explicit_root_is_used_as_given(tmp_path, monkeypatch):
    where = places(tmp_path)
    write_split(where.env, "train", 6)
    monkeypatch.setenv("MINICNN_DATA", str(where.env))
    root = tmp_path / "my-root"
    write_split(root, "train", 3)
    assert FashionMNIST(root=root).root == root
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError) as error:
        FashionMNIST(root=empty)  # not rescued by $MINICNN_DATA
    message = str(error.value)
    assert str(empty) in message and "missing train-images-idx3-ubyte[.gz]" in message
    assert "apt-get install dataset-fashion-mnist" in message and "download=True" in message
    assert str(where.env) not in message


# ---- downloading -----------------------------------------------------------------------------
@pytest.fixture
def server(tmp_path, monkeypatch):
    """A file:// 'mirror' with fake .gz files, and checksums that match them."""
    directory = tmp_path / "server"
    arrays = {}
    for split in fm.SPLITS:
        arrays[split] = write_split(directory, split, 6 if split == "train" else 4, seed=7)
    for name in fm.GZ_MD5:
        monkeypatch.setitem(fm.GZ_MD5, name, md5_of(directory / f"{name}.gz"))
    monkeypatch.setattr(fm, "MIRRORS", [directory.as_uri() + "/"])
    return SimpleNamespace(directory=directory, arrays=arrays)


def files_in(directory: Path) -> list[str]:
    return sorted(os.listdir(directory)) if directory.exists() else []


def test_download_into_the_cache_then_reuse_it(tmp_path, server, monkeypatch):
    cache = places(tmp_path).cache
    train_iter, test_iter = minicnn.data.load_fashion_mnist(2, download=True)
    assert files_in(cache) == sorted(f"{name}.gz" for name in fm.GZ_MD5)
    for name in fm.GZ_MD5:
        assert (cache / f"{name}.gz").read_bytes() == (server.directory / f"{name}.gz").read_bytes()
    assert_array_equal(train_iter.dataset.data, server.arrays["train"][0])
    assert_array_equal(test_iter.dataset.targets, server.arrays["test"][1])

    def no_network(url, destination):
        raise AssertionError(f"downloaded {url} again")

    monkeypatch.setattr(fm, "fetch_url", no_network)
    assert FashionMNIST(download=True).root == cache


def test_download_into_an_explicit_root(tmp_path, server):
    root = tmp_path / "new" / "root"
    ds = FashionMNIST(root=root, train=False, download=True)
    assert files_in(root) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert_array_equal(ds.data, server.arrays["test"][0])


def test_download_writes_to_a_temporary_file_then_renames(tmp_path, server, monkeypatch):
    seen = []
    real_fetch = fm.fetch_url

    def watching_fetch(url, destination):
        seen.append(Path(destination))
        assert not (destination.parent / "train-labels-idx1-ubyte.gz").exists()
        real_fetch(url, destination)

    monkeypatch.setattr(fm, "fetch_url", watching_fetch)
    path = fm.download_file("train-labels-idx1-ubyte", tmp_path / "cache")
    assert path == tmp_path / "cache" / "train-labels-idx1-ubyte.gz"
    assert seen[0].parent == path.parent and seen[0] != path
    assert files_in(tmp_path / "cache") == [path.name]


def test_download_tries_the_next_mirror(tmp_path, server):
    mirrors = [(tmp_path / "no-such-mirror").as_uri(), server.directory.as_uri()]
    path = fm.download_file("t10k-labels-idx1-ubyte", tmp_path / "cache", mirrors=mirrors)
    assert md5_of(path) == fm.GZ_MD5["t10k-labels-idx1-ubyte"]


def test_checksum_mismatch_leaves_no_file_behind(tmp_path, server, monkeypatch):
    monkeypatch.setitem(fm.GZ_MD5, "train-images-idx3-ubyte", "0" * 32)
    cache = places(tmp_path).cache
    with pytest.raises(DownloadError, match="checksum mismatch") as error:
        FashionMNIST(download=True)
    assert "train-images-idx3-ubyte.gz" in str(error.value)
    assert "train-images-idx3-ubyte.gz" not in files_in(cache)
    assert not [name for name in files_in(cache) if name.endswith(".part")]


def test_interrupted_download_leaves_no_file_behind(tmp_path, server, monkeypatch):
    def half_then_fail(url, destination):
        destination.write_bytes(b"\x1f\x8b half a file")
        raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(fm, "fetch_url", half_then_fail)
    with pytest.raises(DownloadError, match="connection reset by peer"):
        fm.download_file("train-labels-idx1-ubyte", tmp_path / "cache")
    assert files_in(tmp_path / "cache") == []


def test_a_recompressed_copy_passes_by_its_decompressed_checksum(tmp_path, server, monkeypatch):
    name = "t10k-labels-idx1-ubyte"
    original = server.directory / f"{name}.gz"
    monkeypatch.setitem(
        fm.RAW_MD5, name, hashlib.md5(gzip.decompress(original.read_bytes())).hexdigest()
    )
    recompressed = tmp_path / "recompressed.gz"
    recompressed.write_bytes(gzip.compress(gzip.decompress(original.read_bytes()), mtime=1))
    assert md5_of(recompressed) != fm.GZ_MD5[name]
    assert fm.checksum_matches(recompressed, name)
    recompressed.write_bytes(gzip.compress(b"other data"))
    assert not fm.checksum_matches(recompressed, name)


# ---- the real files (Debian's dataset-fashion-mnist) ---------------------------------------
needs_debian_files = pytest.mark.skipif(
    not REAL_DEBIAN_DIR.is_dir(),
    reason=f"needs the real Fashion-MNIST in {REAL_DEBIAN_DIR} (apt-get install dataset-fashion-mnist)",
)


@needs_debian_files
def test_real_fashion_mnist_files():
    train = FashionMNIST(root=REAL_DEBIAN_DIR, train=True)
    test = FashionMNIST(root=REAL_DEBIAN_DIR, train=False)
    assert train.data.shape == (60000, 28, 28) and test.data.shape == (10000, 28, 28)
    assert train.data.dtype == numpy.uint8
    assert_array_equal(numpy.bincount(train.targets, minlength=10), [6000] * 10)
    assert_array_equal(numpy.bincount(test.targets, minlength=10), [1000] * 10)
    assert train.targets.min() == 0 and train.targets.max() == 9
    assert 0 < train.data.mean() < 255


@needs_debian_files
def test_checksums_are_right_for_the_real_files(tmp_path, monkeypatch):
    for name in fm.GZ_MD5:
        assert fm.checksum_matches(REAL_DEBIAN_DIR / f"{name}.gz", name), name
    # and a real 'download' from that copy goes through
    monkeypatch.setattr(fm, "MIRRORS", [REAL_DEBIAN_DIR.as_uri()])
    path = fm.download_file("t10k-labels-idx1-ubyte", tmp_path / "cache")
    assert read_idx(path).shape == (10000,)


# ---- the loader ------------------------------------------------------------------------------
def fake_dataset(n: int = 10, h: int = 28, w: int = 28):
    """Image k is filled with k (so a batch shows which examples it holds); label k is k."""
    data = numpy.repeat(numpy.arange(n, dtype=numpy.uint8), h * w).reshape(n, h, w)
    return SimpleNamespace(data=data, targets=numpy.arange(n, dtype=numpy.int64))


def visited(loader) -> list[int]:
    return [int(k) for _, y in loader for k in y.numpy()]


def test_batches_are_tensors_on_the_active_backend(backend):
    ds = fake_dataset(10)
    ds.data[:, 0, 0] = 255
    X, y = next(iter(DataLoader(ds, 4)))
    assert isinstance(X, mc.Tensor) and isinstance(y, mc.Tensor)
    assert X.backend is y.backend is backend
    assert type(X.data) is type(y.data) is type(backend.xp.zeros(1))
    assert X.dtype == numpy.float32 and X.shape == (4, 1, 28, 28)
    assert y.dtype == numpy.int64 and y.shape == (4,)
    assert_array_equal(y.numpy(), [0, 1, 2, 3])
    assert_array_equal(X.numpy()[:, 0, 1, 1], numpy.float32([0, 1, 2, 3]) / numpy.float32(255))
    assert X.numpy()[:, 0, 0, 0].tolist() == [1.0] * 4


def test_len_last_batch_and_drop_last():
    ds = fake_dataset(10)
    loader = DataLoader(ds, 4)
    assert len(loader) == 3
    assert [len(y) for _, y in loader] == [4, 4, 2]
    dropping = DataLoader(ds, 4, drop_last=True)
    assert len(dropping) == 2
    assert [len(y) for _, y in dropping] == [4, 4]
    assert len(DataLoader(ds, 5, drop_last=True)) == 2


def test_limit_takes_the_first_examples():
    loader = DataLoader(fake_dataset(10), 3, shuffle=True, limit=7)
    assert len(loader) == 3
    assert sorted(visited(loader)) == list(range(7))
    assert visited(DataLoader(fake_dataset(10), 3, limit=50)) == list(range(10))


def test_no_shuffle_is_the_dataset_order_every_epoch():
    loader = DataLoader(fake_dataset(10), 3)
    assert visited(loader) == list(range(10))
    assert visited(loader) == list(range(10))


def test_shuffle_is_seeded_per_epoch_and_replayable():
    ds = fake_dataset(50)
    loader = DataLoader(ds, 8, shuffle=True, seed=5)
    epoch0, epoch1 = visited(loader), visited(loader)
    assert loader.epoch == 2
    assert sorted(epoch0) == sorted(epoch1) == list(range(50))
    assert epoch0 != epoch1
    assert epoch0 == numpy.random.default_rng([5, 0]).permutation(50).tolist()
    assert epoch1 == numpy.random.default_rng([5, 1]).permutation(50).tolist()
    assert visited(DataLoader(ds, 8, shuffle=True, seed=5)) == epoch0  # same seed, same order
    assert visited(DataLoader(ds, 8, shuffle=True, seed=6)) != epoch0
    loader.set_epoch(1)  # a run resumed at epoch 1 replays it
    assert visited(loader) == epoch1


def test_epoch_is_counted_when_iteration_starts():
    loader = DataLoader(fake_dataset(20), 4, shuffle=True)
    first = iter(loader)
    assert loader.epoch == 1
    second = iter(loader)
    assert int(next(first)[1].numpy()[0]) == loader.order(0)[0]
    assert int(next(second)[1].numpy()[0]) == loader.order(1)[0]


def test_resize_happens_per_batch():
    ds = fake_dataset(5)
    ds.data[:] = numpy.random.default_rng(0).integers(0, 256, size=ds.data.shape, dtype=numpy.uint8)
    X, _ = next(iter(DataLoader(ds, 5, resize=(40, 32))))
    assert X.shape == (5, 1, 40, 32) and X.dtype == numpy.float32
    expected = resize_bilinear(
        ds.data[:, None].astype(numpy.float32) / numpy.float32(255), (40, 32)
    )
    assert_array_equal(X.numpy(), expected)
    X, _ = next(iter(DataLoader(ds, 2, resize=56)))
    assert X.shape == (2, 1, 56, 56)


def test_loader_rejects_bad_arguments():
    ds = fake_dataset(4)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="batch_size must be a positive int"):
            DataLoader(ds, bad)
    with pytest.raises(ValueError, match="limit must be a positive int"):
        DataLoader(ds, 2, limit=0)
    with pytest.raises(TypeError, match="must have NumPy arrays .data and .targets"):
        DataLoader([1, 2, 3], 2)
    with pytest.raises(ValueError, match="must be uint8 images"):
        DataLoader(SimpleNamespace(data=ds.data.astype(numpy.float32), targets=ds.targets), 2)
    with pytest.raises(ValueError, match="must be 4 labels"):
        DataLoader(SimpleNamespace(data=ds.data, targets=ds.targets[:3]), 2)
    with pytest.raises(TypeError, match="resize must be an int or a pair of ints"):
        DataLoader(ds, 2, resize=(1, 2, 3))
    with pytest.raises(ValueError, match="resize must be positive"):
        DataLoader(ds, 2, resize=(0, 28))


def test_load_fashion_mnist_returns_shuffled_train_and_ordered_test(tmp_path):
    write_split(tmp_path, "train", 30)
    write_split(tmp_path, "test", 9)
    train_iter, test_iter = minicnn.data.load_fashion_mnist(
        4, resize=32, root=tmp_path, limit=20, seed=3
    )
    assert (len(train_iter), len(test_iter)) == (5, 3)
    assert train_iter.shuffle and not test_iter.shuffle and train_iter.seed == 3
    X, y = next(iter(test_iter))
    assert X.shape == (4, 1, 32, 32)
    assert_array_equal(y.numpy(), test_iter.dataset.targets[:4])


# ---- bilinear resize against PyTorch ---------------------------------------------------------
SIZES = [
    ((28, 28), (224, 224)),  # AlexNet, VGG, NiN: up by 8
    ((28, 28), (96, 96)),  # GoogLeNet, ResNet, DenseNet
    ((28, 28), 56),  # an int size
    ((28, 28), (13, 7)),  # down, non-square
    ((5, 7), (3, 11)),  # down one axis, up the other
    ((224, 224), (28, 28)),
    ((1, 1), (4, 4)),
    ((6, 6), (6, 9)),  # one axis unchanged
]


@pytest.mark.parametrize(("in_size", "out_size"), SIZES, ids=lambda s: str(s))
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64], ids=["float32", "float64"])
def test_resize_bilinear_equals_torch_interpolate(torch, in_size, out_size, dtype):
    x = numpy.random.default_rng(0).random((2, 3, *in_size)).astype(dtype)
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(x), size=out_size, mode="bilinear", align_corners=False, antialias=False
    ).numpy()
    result = resize_bilinear(x, out_size)
    assert result.dtype == dtype and result.shape == expected.shape
    if dtype == numpy.float64:
        assert_allclose(result, expected, rtol=1e-12, atol=1e-14)
    else:
        assert_allclose(result, expected, rtol=1e-5, atol=1e-6)


def test_resize_bilinear_by_hand():
    x = numpy.array([[[[0.0, 1.0], [2.0, 3.0]]]])
    # 2 -> 4: src = (dst + 0.5) / 2 - 0.5 = [-0.25 -> 0, 0.25, 0.75, 1.25 -> clamped neighbour]
    row = [0.0, 0.25, 0.75, 1.0]
    expected = numpy.array([[r + 2 * c for r in row] for c in row])
    assert_allclose(resize_bilinear(x, 4)[0, 0], expected, rtol=0, atol=1e-15)
    assert_array_equal(resize_bilinear(x, (2, 2)), x)


def test_resize_bilinear_rejects_bad_input():
    with pytest.raises(
        ValueError, match=re.escape("resize_bilinear: expected a floating array (N, C, H, W)")
    ):
        resize_bilinear(numpy.zeros((1, 1, 4, 4), numpy.uint8), 2)
    with pytest.raises(ValueError, match="got float64 of shape \\(4, 4\\)"):
        resize_bilinear(numpy.zeros((4, 4)), 2)
    with pytest.raises(ValueError, match="size must be positive"):
        resize_bilinear(numpy.zeros((1, 1, 4, 4)), (0, 3))
