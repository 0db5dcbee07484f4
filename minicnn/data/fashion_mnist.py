"""Fashion-MNIST (D2L 4.2): find the four IDX files, download them if asked, read them.

Fashion-MNIST is 70,000 grayscale 28x28 pictures of clothes in ten classes, stored as
four IDX files (optionally gzipped)::

    train-images-idx3-ubyte   60,000 images      t10k-images-idx3-ubyte   10,000 images
    train-labels-idx1-ubyte   60,000 labels      t10k-labels-idx1-ubyte   10,000 labels

An IDX file is a tiny header followed by the raw array, big-endian::

    bytes 0-1   0x00 0x00             (the magic number's first half)
    byte  2     dtype code            0x08 = uint8, 0x09 = int8, 0x0B = int16,
                                      0x0C = int32, 0x0D = float32, 0x0E = float64
    byte  3     ndim                  (3 for images, 1 for labels)
    then        ndim uint32 sizes     (60000, 28, 28) or (60000,)
    then        prod(sizes) values    row-major

Where the files are looked for, in order (the first place holding both files of the
split wins): an explicit ``root``; else ``$MINICNN_DATA``, the user cache
(``$XDG_CACHE_HOME/minicnn/fashion-mnist``), Debian's ``dataset-fashion-mnist`` package
(``/usr/share/datasets/fashion-mnist``); else, with ``download=True``, the files are
fetched into the cache and their checksums verified.
"""

from __future__ import annotations

import gzip
import hashlib
import operator
import os
import shutil
import sys
import tempfile
import urllib.request
import zlib
from pathlib import Path

import numpy

__all__ = [
    "CLASSES",
    "DownloadError",
    "FashionMNIST",
    "IDXError",
    "URL_BASE",
    "cache_dir",
    "checksum_matches",
    "download_file",
    "fetch_url",
    "find_split",
    "read_idx",
    "text_labels",
]

# The book's get_fashion_mnist_labels, in label order 0..9.
CLASSES = (
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)

# split -> (images file, labels file), without the optional ".gz".
SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGE_SHAPE = (28, 28)

# Zalando's own download location (the links in the dataset's README).
URL_BASE = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
# Tried in order; a file comes from the first mirror that delivers it with a good checksum.
MIRRORS = [
    URL_BASE,
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
]

# MD5 of the published .gz files (the dataset's README, also used by torchvision).
GZ_MD5 = {
    "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
}
# MD5 of the same files decompressed. Needed because a repackaged copy (Debian's, for
# one) recompresses the archives: other .gz bytes, identical data.
RAW_MD5 = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

IDX_DTYPES = {
    0x08: numpy.dtype("u1"),
    0x09: numpy.dtype("i1"),
    0x0B: numpy.dtype(">i2"),
    0x0C: numpy.dtype(">i4"),
    0x0D: numpy.dtype(">f4"),
    0x0E: numpy.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"


class IDXError(ValueError):
    """A file that is not a well-formed IDX file (truncated, corrupt, wrong kind)."""


class DownloadError(RuntimeError):
    """No mirror delivered a file with the expected checksum."""


# ---- reading IDX files ------------------------------------------------------------------
def _file_bytes(path: Path) -> bytes:
    """The file's contents, gunzipped when it starts with the gzip magic bytes."""
    raw = path.read_bytes()
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as error:
        raise IDXError(
            f"minicnn.data.read_idx: {path}: expected a complete gzip file, "
            f"got a truncated or corrupt one ({error})"
        ) from error


def read_idx(path) -> numpy.ndarray:
    """Read one IDX file (raw or gzipped) into a NumPy array in native byte order.

    Checks the magic number, the dtype code and that the byte count is exactly
    ``4 + 4*ndim + prod(sizes) * itemsize``; anything else is an :class:`IDXError`
    naming the file. A uint8 result is a read-only view of the file's bytes.
    """
    path = Path(path)
    content = _file_bytes(path)

    def fail(what: str) -> IDXError:
        return IDXError(f"minicnn.data.read_idx: {path}: {what}")

    if len(content) < 4:
        raise fail(f"expected at least a 4-byte IDX header, got {len(content)} bytes")
    zero0, zero1, dtype_code, ndim = content[:4]
    if zero0 != 0 or zero1 != 0 or dtype_code not in IDX_DTYPES:
        raise fail(
            f"bad magic number 0x{content[:4].hex()}: expected 0x0000 followed by a dtype "
            f"code in {[hex(c) for c in IDX_DTYPES]} and ndim"
        )
    header_size = 4 + 4 * ndim
    if ndim == 0 or len(content) < header_size:
        raise fail(f"expected {ndim} dimension sizes after the magic number, file too short")
    shape = tuple(int(s) for s in numpy.frombuffer(content, ">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[dtype_code]
    expected = header_size + int(numpy.prod(shape)) * dtype.itemsize
    if len(content) != expected:
        raise fail(
            f"header says shape {shape} of {dtype.name} ({expected} bytes in all), "
            f"but the file holds {len(content)} bytes"
            + (" (truncated)" if len(content) < expected else " (trailing bytes)")
        )
    array = numpy.frombuffer(content, dtype, offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _read_split(images_path: Path, labels_path: Path) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) int64 in 0..9, checked against each other."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.dtype != numpy.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise IDXError(
            f"minicnn.data.FashionMNIST: {images_path}: expected uint8 images of shape "
            f"(N, 28, 28), got {images.dtype} {images.shape}"
        )
    if labels.dtype != numpy.uint8 or labels.ndim != 1:
        raise IDXError(
            f"minicnn.data.FashionMNIST: {labels_path}: expected uint8 labels of shape (N,), "
            f"got {labels.dtype} {labels.shape}"
        )
    if len(images) != len(labels):
        raise IDXError(
            f"minicnn.data.FashionMNIST: {images_path} holds {len(images)} images but "
            f"{labels_path} holds {len(labels)} labels; they must agree"
        )
    if len(labels) and labels.max() >= len(CLASSES):
        raise IDXError(
            f"minicnn.data.FashionMNIST: {labels_path}: expected labels in 0..9, "
            f"got {int(labels.max())}"
        )
    return images, labels.astype(numpy.int64)


# ---- finding the files ------------------------------------------------------------------
def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/minicnn/fashion-mnist``, by default ``~/.cache/minicnn/fashion-mnist``."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "minicnn" / "fashion-mnist"


def _find_file(directory: Path, name: str) -> Path | None:
    """``directory/name`` or ``directory/name.gz``, whichever exists first."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _look_in(directory: Path, names) -> tuple[list[Path] | None, str]:
    """The split's files in ``directory``, or None and why not."""
    if not directory.is_dir():
        return None, "no such directory"
    found = [_find_file(directory, name) for name in names]
    missing = [f"{name}[.gz]" for name, path in zip(names, found, strict=True) if path is None]
    if missing:
        return None, "missing " + ", ".join(missing)
    return found, "found"


def _search_places() -> list[tuple[str, Path | None]]:
    """(label, directory) in search order; directory None for an unset variable."""
    env = os.environ.get("MINICNN_DATA")
    return [
        ("$MINICNN_DATA", Path(env).expanduser() if env else None),
        ("user cache", cache_dir()),
        ("Debian package dataset-fashion-mnist", DEBIAN_DIR),
    ]


def _how_to_get_it(download_dir: Path) -> str:
    return (
        "Ways to get the data:\n"
        "  - sudo apt-get install dataset-fashion-mnist   (Debian/Ubuntu: files in "
        f"{DEBIAN_DIR})\n"
        "  - put the four IDX files (.gz or not) in a directory and set "
        "MINICNN_DATA=/that/directory\n"
        f"  - pass download=True to fetch them from {URL_BASE} into {download_dir}"
    )


def find_split(split: str, root=None, download: bool = False) -> tuple[Path, Path]:
    """Paths of the (images, labels) files of ``split`` ('train' or 'test').

    With ``root`` only that directory is used (downloading into it if asked); without,
    the search order of this module's docstring. Nothing found is one
    ``FileNotFoundError`` listing every place looked in and the ways to get the data.
    """
    if split not in SPLITS:
        raise ValueError(
            f"minicnn.data.find_split: split must be one of {list(SPLITS)}, got {split!r}"
        )
    names = SPLITS[split]
    what = f"the Fashion-MNIST {split} files ({', '.join(n + '[.gz]' for n in names)})"
    if root is not None:
        root = Path(root).expanduser()
        found, why = _look_in(root, names)
        if found is None and download:
            return _download_split(names, root)
        if found is None:
            raise FileNotFoundError(
                f"minicnn.data.FashionMNIST: root={str(root)!r} does not hold {what}: {why}.\n"
                + _how_to_get_it(root)
            )
        return found[0], found[1]

    report = []
    for label, directory in _search_places():
        if directory is None:
            report.append(f"  - {label}: not set")
            continue
        found, why = _look_in(directory, names)
        if found is not None:
            return found[0], found[1]
        report.append(f"  - {directory} ({label}): {why}")
    if download:
        return _download_split(names, cache_dir())
    raise FileNotFoundError(
        f"minicnn.data.FashionMNIST: could not find {what}. Looked in:\n"
        + "\n".join(report)
        + "\n"
        + _how_to_get_it(cache_dir())
    )


# ---- downloading ------------------------------------------------------------------------
def fetch_url(url: str, destination: Path) -> None:
    """Write the body of ``url`` (http, https or file://) to the file ``destination``.

    Every download goes through here, so tests point it at a local ``file://`` URL or
    replace it.
    """
    with urllib.request.urlopen(url, timeout=60) as response, open(destination, "wb") as out:
        shutil.copyfileobj(response, out, 1 << 20)
        out.flush()
        os.fsync(out.fileno())


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def checksum_matches(path, name: str) -> bool:
    """Is ``path`` the published ``name.gz`` (its MD5), or a recompressed copy of the same
    data (the MD5 of its decompressed bytes)?"""
    content = Path(path).read_bytes()
    if _md5(content) == GZ_MD5[name]:
        return True
    try:
        return _md5(gzip.decompress(content)) == RAW_MD5[name]
    except (EOFError, OSError, zlib.error):
        return False


def download_file(name: str, directory, mirrors=None) -> Path:
    """Download ``name.gz`` into ``directory`` from the first mirror that delivers it with
    the right checksum, and return its path.

    Atomic: the bytes go to a temporary file in ``directory`` that is renamed
    (``os.replace``) only once verified, so ``directory`` never holds half a file or a
    file that failed its checksum.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    destination = directory / f"{name}.gz"
    failures = []
    for base in MIRRORS if mirrors is None else mirrors:
        url = f"{base.rstrip('/')}/{name}.gz"
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".part")
        os.close(fd)
        try:
            print(f"minicnn: downloading {url}", file=sys.stderr)
            fetch_url(url, Path(temporary))
            if checksum_matches(temporary, name):
                os.replace(temporary, destination)
                return destination
            failures.append(f"  - {url}: checksum mismatch (expected MD5 {GZ_MD5[name]})")
        except OSError as error:  # URLError and HTTPError are OSErrors
            failures.append(f"  - {url}: {error}")
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
    raise DownloadError(
        f"minicnn.data.download_file: could not download {name}.gz into {directory}:\n"
        + "\n".join(failures)
    )


def _download_split(names, directory: Path) -> tuple[Path, Path]:
    paths = [_find_file(directory, name) or download_file(name, directory) for name in names]
    return paths[0], paths[1]


# ---- the dataset ------------------------------------------------------------------------
class FashionMNIST:
    """The Fashion-MNIST training (60,000) or test (10,000) set, held in memory.

    ``ds[i]`` is ``(image, label)``: a uint8 (28, 28) array and an int in 0..9.
    ``ds.data`` is all images, uint8 (N, 28, 28); ``ds.targets`` all labels, int64 (N,);
    ``ds.classes`` the ten text labels.
    """

    classes = list(CLASSES)

    def __init__(self, root=None, train: bool = True, download: bool = False):
        self.split = "train" if train else "test"
        images_path, labels_path = find_split(self.split, root, download)
        self.root = images_path.parent
        self.data, self.targets = _read_split(images_path, labels_path)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index) -> tuple[numpy.ndarray, int]:
        try:
            index = operator.index(index)
        except TypeError:
            raise TypeError(
                f"FashionMNIST[index]: index must be an int, got {type(index).__name__} "
                "(use .data and .targets for slices)"
            ) from None
        return self.data[index], int(self.targets[index])

    def __repr__(self) -> str:
        return f"FashionMNIST(split={self.split!r}, examples={len(self)}, root={str(self.root)!r})"


def text_labels(indices) -> list[str]:
    """The text label of each class index, as the book's ``get_fashion_mnist_labels``:
    ``text_labels([0, 9]) == ['t-shirt', 'ankle boot']``. Takes a list, a NumPy or CuPy
    array or a Tensor."""
    if hasattr(indices, "numpy"):  # a Tensor
        indices = indices.numpy()
    elif hasattr(indices, "__cuda_array_interface__"):  # a CuPy array
        indices = indices.get()
    flat = numpy.asarray(indices).reshape(-1)
    if flat.size == 0:
        return []
    is_index = numpy.issubdtype(flat.dtype, numpy.integer)
    if not is_index or flat.min() < 0 or flat.max() >= len(CLASSES):
        raise ValueError(
            f"minicnn.data.text_labels: expected integer class indices in 0..9, got {flat.tolist()}"
        )
    return [CLASSES[i] for i in flat.tolist()]
