"""Data: the Fashion-MNIST dataset and the minibatch loader (D2L 4.2).

>>> train_iter, test_iter = mc.data.load_fashion_mnist(256, resize=96)
>>> X, y = next(iter(train_iter))      # X: float32 (256, 1, 96, 96) in [0, 1]; y: int64 (256,)
"""

from .fashion_mnist import (
    CLASSES,
    DownloadError,
    FashionMNIST,
    IDXError,
    cache_dir,
    checksum_matches,
    download_file,
    fetch_url,
    find_split,
    read_idx,
    text_labels,
)
from .loader import DataLoader, load_fashion_mnist, resize_bilinear

__all__ = [
    "CLASSES",
    "DataLoader",
    "DownloadError",
    "FashionMNIST",
    "IDXError",
    "cache_dir",
    "checksum_matches",
    "download_file",
    "fetch_url",
    "find_split",
    "load_fashion_mnist",
    "read_idx",
    "resize_bilinear",
    "text_labels",
]
