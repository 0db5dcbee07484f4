"""Minibatches (D2L 4.2): shuffle, cut into batches, scale, resize, move to the backend.

The dataset stays in memory as uint8 NumPy arrays; each batch is gathered on the CPU,
sent to the active backend still as uint8 (four times less to copy to a GPU), then
turned into float32 pixels in [0, 1] and, if asked, resized there. Resizing one batch
at a time keeps memory small: all 60,000 images at 224x224 in float32 would be 12 GB.

Shuffling is reproducible: epoch ``e`` visits the examples in the order
``numpy.random.default_rng([seed, e]).permutation(n)``. The loader counts its epochs
(each ``iter(loader)`` is one) and :meth:`DataLoader.set_epoch` sets the count, so a
training run resumed at epoch ``e`` sees exactly the batches it would have seen.
"""

from __future__ import annotations

import functools
import math

import numpy

from ..backend import current_backend, get_array_module, pair
from ..tensor import Tensor, as_tensor
from .fashion_mnist import FashionMNIST

__all__ = ["DataLoader", "load_fashion_mnist", "resize_bilinear"]


# ---- bilinear resize --------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def _axis_weights(in_size: int, out_size: int, dtype: numpy.dtype, xp):
    """Source indices (i0, i1) and weights (w0, w1) of one axis, as PyTorch computes them
    (in the data's own precision), on the array module ``xp``; cached per size pair."""
    real = dtype.type
    scale = real(in_size) / real(out_size)
    src = (numpy.arange(out_size, dtype=dtype) + real(0.5)) * scale - real(0.5)
    src = numpy.maximum(src, real(0))
    i0 = numpy.minimum(numpy.floor(src).astype(numpy.int64), in_size - 1)
    i1 = numpy.minimum(i0 + 1, in_size - 1)
    w1 = numpy.clip(src - i0.astype(dtype), real(0), real(1))
    w0 = real(1) - w1
    return tuple(xp.asarray(a) for a in (i0, i1, w0, w1))


def resize_bilinear(x, size):
    """Resize images ``x`` (N, C, H, W) to ``size`` = (h, w) (or an int for h = w) by
    bilinear interpolation; equal to PyTorch's
    ``F.interpolate(x, size, mode='bilinear', align_corners=False)``.

    Each output pixel reads the input at the source coordinate (per axis)::

        src = max((dst + 0.5) * in_size / out_size - 0.5, 0)
        i0 = floor(src),  i1 = min(i0 + 1, in_size - 1),  w1 = src - i0,  w0 = 1 - w1

    and mixes its neighbours, first along the width, then along the height::

        row(r)    = x[..., r, j0] * w0_w + x[..., r, j1] * w1_w
        y[.., oh] = row(i0) * w0_h + row(i1) * w1_h

    Works on NumPy and CuPy arrays alike (``xp`` comes from ``x``); returns ``x``'s dtype.
    Agrees with PyTorch to rounding: PyTorch's compiled kernels may fuse the multiply-add
    of ``src`` or sum the four corners in another order, a few units in the last place.
    """
    xp = get_array_module(x)
    if x.ndim != 4 or not numpy.issubdtype(x.dtype, numpy.floating):
        raise ValueError(
            f"minicnn.data.resize_bilinear: expected a floating array (N, C, H, W), "
            f"got {x.dtype} of shape {tuple(x.shape)}"
        )
    out_h, out_w = pair(size, "size", "minicnn.data.resize_bilinear")
    if out_h < 1 or out_w < 1:
        raise ValueError(f"minicnn.data.resize_bilinear: size must be positive, got {size!r}")
    in_h, in_w = x.shape[2], x.shape[3]
    dtype = numpy.dtype(x.dtype)
    if out_w != in_w:
        j0, j1, w0, w1 = _axis_weights(in_w, out_w, dtype, xp)
        x = x[:, :, :, j0] * w0 + x[:, :, :, j1] * w1
    if out_h != in_h:
        i0, i1, w0, w1 = _axis_weights(in_h, out_h, dtype, xp)
        x = x[:, :, i0, :] * w0[:, None] + x[:, :, i1, :] * w1[:, None]
    return x


# ---- the loader -------------------------------------------------------------------------
def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | numpy.integer) or value < 1:
        raise ValueError(f"minicnn.data.DataLoader: {name} must be a positive int, got {value!r}")
    return int(value)


class DataLoader:
    """Iterate over ``dataset`` in minibatches ``(X, y)`` of Tensors on the active backend:
    ``X`` float32 (B, C, H, W) with pixels in [0, 1] (C = 1 for Fashion-MNIST),
    ``y`` int64 (B,).

    ``dataset`` is anything with ``.data``, uint8 images (N, H, W) or (N, C, H, W), and
    ``.targets``, N integer labels (e.g. :class:`FashionMNIST`). ``shuffle`` draws a new
    seeded order every epoch; ``resize`` (int or (h, w)) resizes each batch bilinearly;
    ``limit`` keeps only the first ``limit`` examples; ``drop_last`` skips a last,
    smaller batch. ``len(loader)`` is the number of batches.
    """

    def __init__(
        self,
        dataset,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        resize=None,
        limit: int | None = None,
        drop_last: bool = False,
    ):
        images = getattr(dataset, "data", None)
        labels = getattr(dataset, "targets", None)
        if not isinstance(images, numpy.ndarray) or not isinstance(labels, numpy.ndarray):
            raise TypeError(
                "minicnn.data.DataLoader: dataset must have NumPy arrays .data and .targets "
                f"(like FashionMNIST), got {type(dataset).__name__}"
            )
        if images.dtype != numpy.uint8 or images.ndim not in (3, 4):
            raise ValueError(
                "minicnn.data.DataLoader: dataset.data must be uint8 images (N, H, W) or "
                f"(N, C, H, W), got {images.dtype} of shape {images.shape}"
            )
        if labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(
                f"minicnn.data.DataLoader: dataset.targets must be {len(images)} labels (N,), "
                f"got shape {labels.shape}"
            )
        self.dataset = dataset
        self.images = images if images.ndim == 4 else images[:, None]
        self.labels = labels.astype(numpy.int64, copy=False)
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.resize = None if resize is None else pair(resize, "resize", "minicnn.data.DataLoader")
        if self.resize is not None and min(self.resize) < 1:
            raise ValueError(f"minicnn.data.DataLoader: resize must be positive, got {resize!r}")
        self.num_examples = (
            len(images) if limit is None else min(_positive_int(limit, "limit"), len(images))
        )
        self.drop_last = bool(drop_last)
        self.epoch = 0  # the epoch the next iteration will be
        self._on_device = None  # (backend, images, labels) once copied to its device

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_examples // self.batch_size
        return math.ceil(self.num_examples / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration epoch ``epoch`` (to resume a run with the same order)."""
        self.epoch = int(epoch)

    def order(self, epoch: int) -> numpy.ndarray:
        """The example indices of epoch ``epoch``, in the order they are visited."""
        if not self.shuffle:
            return numpy.arange(self.num_examples)
        return numpy.random.default_rng([self.seed, epoch]).permutation(self.num_examples)

    def __iter__(self):
        # The order is fixed (and the epoch counted) here, not on the first next().
        order = self.order(self.epoch)
        self.epoch += 1
        return self._batches(order)

    def _batches(self, order: numpy.ndarray):
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            indices = order[start : start + self.batch_size]
            yield self._make_batch(indices)

    def example(self, index: int) -> tuple[Tensor, int]:
        """Example ``index`` (in the data set's order) as the batches hold it, (1, C, H, W)
        scaled and resized, with its label; an index out of range is an error giving the range."""
        if isinstance(index, bool) or not isinstance(index, int | numpy.integer) or not (
            0 <= index < self.num_examples
        ):
            raise IndexError(
                f"image index {index!r} is out of range: this set has {self.num_examples} "
                f"images, 0 to {self.num_examples - 1}"
            )
        X, y = self._make_batch(numpy.array([index]))
        return X, int(y.numpy()[0])

    def _device_arrays(self, backend):
        """The images and labels on ``backend``'s device: on a GPU copied there once (the
        training set is 47 MB of uint8), so that a batch is gathered and resized where it
        is computed on; on the CPU, the arrays themselves."""
        if self._on_device is None or self._on_device[0] is not backend:
            n = self.num_examples
            self._on_device = (backend, backend.asarray(self.images[:n]), backend.asarray(self.labels[:n]))
        return self._on_device[1:]

    def _make_batch(self, indices: numpy.ndarray) -> tuple[Tensor, Tensor]:
        backend = current_backend()
        images, labels = self._device_arrays(backend)
        indices = backend.asarray(indices)
        X = images[indices].astype(numpy.float32) / numpy.float32(255)  # uint8 on the backend
        if self.resize is not None:
            X = resize_bilinear(X, self.resize)
        return as_tensor(X), as_tensor(labels[indices])

    def __repr__(self) -> str:
        return (
            f"DataLoader({type(self.dataset).__name__}, examples={self.num_examples}, "
            f"batch_size={self.batch_size}, batches={len(self)}, shuffle={self.shuffle}, "
            f"resize={self.resize}, epoch={self.epoch})"
        )


def load_fashion_mnist(
    batch_size: int,
    resize=None,
    root=None,
    limit: int | None = None,
    seed: int = 0,
    download: bool = False,
) -> tuple[DataLoader, DataLoader]:
    """The book's ``load_data_fashion_mnist``: ``(train_iter, test_iter)``, the training
    set shuffled every epoch, the test set in order; ``limit`` cuts both."""
    train = FashionMNIST(root, train=True, download=download)
    test = FashionMNIST(root, train=False, download=download)
    train_iter = DataLoader(train, batch_size, shuffle=True, seed=seed, resize=resize, limit=limit)
    test_iter = DataLoader(test, batch_size, shuffle=False, resize=resize, limit=limit)
    return train_iter, test_iter
