"""The NumPy backend: the readable reference every other backend must agree with.

This is the textbook path's side of each operation: the chapter's algorithms as
vectorised NumPy, written on ``self.xp`` only. The fast backends (engine_room/numba_.py,
engine_room/cupy_.py) inherit every kernel here and replace the hot ones. What each
backend must provide is declared in backend/interface.py.

All sliding-window kernels take a :class:`~minicnn.backend.window.Window2d` ``win``
and loop over the ``kh * kw`` kernel offsets (i, j) (``win.offsets()``). For each offset
the input pixels it touches form one strided slice of the padded input
(``win.window_slice(i, j)``)::

    x_pad[:, :, i : i + sh*OH : sh, j : j + sw*OW : sw]      # shape (N, C, OH, OW)

so a whole layer is ``kh * kw`` array operations, each over every image, channel and
output position at once.
"""

from __future__ import annotations

import numpy

from .window import Window2d


class NumpyBackend:
    """Arrays are ``numpy.ndarray``; kernels are vectorised NumPy.

    It provides what the textbook path asks of every backend
    (:class:`~minicnn.backend.interface.Backend`, backend/interface.py); the fast
    backends inherit it and add what the engine room asks of them (``FastBackend``)."""

    name = "numpy"
    device = "cpu"
    xp = numpy

    def __repr__(self) -> str:
        return f"<minicnn backend {self.name!r} ({self.device})>"

    # ---- arrays -------------------------------------------------------------------
    def is_array(self, obj) -> bool:
        """A host array: a NumPy array that is not device memory (a CuPy array, or the
        tests' emulation of one, tells itself by ``__cuda_array_interface__``)."""
        return type(obj) is numpy.ndarray or (
            isinstance(obj, self.xp.ndarray) and not hasattr(obj, "__cuda_array_interface__")
        )

    def asarray(self, data, dtype=None):
        """Bring ``data`` (list, scalar, NumPy or CuPy array) onto this backend."""
        if hasattr(data, "__cuda_array_interface__"):  # a CuPy array: copy it to the host
            data = data.get()
        return self.xp.asarray(data, dtype=dtype)

    def to_numpy(self, array) -> numpy.ndarray:
        return numpy.array(array, copy=True)

    def empty(self, shape, dtype):
        """A new array of ``shape``, not initialised: where kernels put their outputs.
        (The numba backend takes it from a pool of reused buffers, engine_room/allocator.py.)"""
        return self.xp.empty(shape, dtype=dtype)

    def zeros(self, shape, dtype):
        """A new array of zeros, for outputs that kernels add into."""
        return self.xp.zeros(shape, dtype=dtype)

    def matmul(self, a, b):
        """``a @ b`` of two matrices, or two stacks of as many matrices, into a new array
        from :meth:`empty` (the numba backend cuts the columns into parts, one per thread)."""
        out = self.empty(a.shape[:-1] + b.shape[-1:], self.xp.result_type(a, b))
        return self.xp.matmul(a, b, out=out)

    def adopt_grad(self, array):
        """The array a leaf keeps as its ``.grad``, from what backward computed for it:
        here always a copy, since backward may hand one array to several inputs
        (``a + b``) or a view of another (a broadcast). The numba backend keeps fresh
        memory uncopied (engine_room/numba_.py)."""
        return array.copy()

    def conv2d_plan(self, win: Window2d, weight_shape):
        """Another algorithm for this conv2d layer than the chapter's im2col, or None.
        The reference has none: functional/conv.py computes every layer. (The fast
        backends' plans are in engine_room/conv.py.)"""
        return None

    def generator(self):
        """The random generator that dropout and init draw from on this backend."""
        from . import cpu_generator

        return cpu_generator()

    # ---- padding (the window's geometry is Window2d's: offsets, window_slice) ------
    def pad(self, x, win: Window2d, value=0.0):
        """``x`` in the middle of a canvas of ``value`` with ``ph`` rows above and below and
        ``pw`` columns left and right (as ``xp.pad``, which takes 4x as long for this);
        ``x`` itself when there is no padding."""
        if win.ph == 0 and win.pw == 0:
            return x
        x_pad = self.empty(x.shape[:2] + win.padded_shape[2:], x.dtype)
        x_pad.fill(value)
        x_pad[:, :, win.ph : win.ph + x.shape[2], win.pw : win.pw + x.shape[3]] = x
        return x_pad

    def unpad(self, x_pad, win: Window2d):
        """The middle of a padded ``x_pad`` without its padding: a view (N, C, H, W)."""
        return x_pad[:, :, win.ph : win.ph + win.h, win.pw : win.pw + win.w]

    # ---- convolution: im2col and its adjoint --------------------------------------
    def im2col(self, x, win: Window2d, out=None, value=0.0):
        """Unfold every receptive field of ``x`` into a column.

        Returns ``cols`` of shape (C*kh*kw, N*OH*OW) with::

            cols[(c*kh + i)*kw + j, (n*OH + oh)*OW + ow] = x_pad[n, c, oh*sh + i, ow*sw + j]

        so a convolution is one matrix product ``weight.reshape(OC, -1) @ cols``. ``out``,
        if given, is an array of that size to write into (a buffer reused chunk after
        chunk); ``value`` is the padding's (-inf for max pooling).
        """
        if _is_pointwise(win) and win.n == 1:  # a 1x1 window: the columns are the image itself
            return x.reshape(win.c, win.h * win.w)
        x_pad = self.pad(x, win, value)
        shape = (win.c, win.kh, win.kw, win.n, win.oh, win.ow)
        cols = self.xp.empty(shape, dtype=x.dtype) if out is None else out.reshape(shape)
        for i, j in win.offsets():
            cols[:, i, j] = x_pad[win.window_slice(i, j)].transpose(1, 0, 2, 3)
        return cols.reshape(win.c * win.kh * win.kw, win.n * win.oh * win.ow)

    def col2im(self, cols, win: Window2d, out=None):
        """The adjoint of :meth:`im2col`: add every column back where it was read from.

        ``dx_pad[n, c, oh*sh + i, ow*sw + j] += cols[(c*kh + i)*kw + j, (n*OH + oh)*OW + ow]``;
        pixels shared by overlapping windows receive the sum of their columns. Returns dx
        (N, C, H, W), written into ``out`` if given.
        """
        cols = cols.reshape(win.c, win.kh, win.kw, win.n, win.oh, win.ow)
        dx_pad = self.xp.zeros(win.padded_shape, dtype=cols.dtype)
        for i, j in win.offsets():
            dx_pad[win.window_slice(i, j)] += cols[:, i, j].transpose(1, 0, 2, 3)
        if out is None:
            return self.xp.ascontiguousarray(self.unpad(dx_pad, win))
        out[...] = self.unpad(dx_pad, win)
        return out

    # ---- max pooling --------------------------------------------------------------
    def max_pool2d(self, x, win: Window2d):
        """Running maximum over the kernel offsets; returns ``(y, argmax)``.

        ``y[n, c, oh, ow] = max over (i, j) of x_pad[n, c, oh*sh + i, ow*sw + j]`` (padding
        is -inf), and ``argmax`` holds the offset ``i*kw + j`` of the first maximum, the one
        PyTorch picks when values tie. A NaN in a window wins, as in PyTorch.
        """
        xp = self.xp
        x_pad = self.pad(x, win, value=-xp.inf)
        y = xp.full(win.output_shape, -xp.inf, dtype=x.dtype)
        argmax = xp.zeros(win.output_shape, dtype=numpy.min_scalar_type(win.kh * win.kw))
        for k, (i, j) in enumerate(win.offsets()):
            candidate = x_pad[win.window_slice(i, j)]
            better = (candidate > y) | (xp.isnan(candidate) & ~xp.isnan(y))
            y = xp.where(better, candidate, y)
            # where, not argmax[better] = k: on CuPy a boolean-mask assignment counts
            # the mask on the host, a device synchronisation per kernel offset
            argmax = xp.where(better, argmax.dtype.type(k), argmax)
        return y, argmax

    def max_pool2d_backward(self, dy, argmax, win: Window2d):
        """Send each output gradient to the input pixel that won its window.

        ``dx_pad[n, c, oh*sh + i, ow*sw + j] += dy[n, c, oh, ow]`` where ``argmax == i*kw + j``;
        overlapping windows that share a winner add up.
        """
        dx_pad = self.xp.zeros(win.padded_shape, dtype=dy.dtype)
        for k, (i, j) in enumerate(win.offsets()):
            dx_pad[win.window_slice(i, j)] += self.xp.where(argmax == k, dy, 0)
        return self.xp.ascontiguousarray(self.unpad(dx_pad, win))

    # ---- average pooling (a window sum, divided by the op) ------------------------
    def window_sum(self, x, win: Window2d):
        """``y[n, c, oh, ow] = sum over (i, j) of x_pad[n, c, oh*sh + i, ow*sw + j]`` (zero padding)."""
        x_pad = self.pad(x, win)
        y = self.xp.zeros(win.output_shape, dtype=x.dtype)
        for i, j in win.offsets():
            y += x_pad[win.window_slice(i, j)]
        return y

    def window_sum_backward(self, dy, win: Window2d):
        """The adjoint of :meth:`window_sum`: ``dx_pad[..., oh*sh + i, ow*sw + j] += dy[..., oh, ow]``."""
        dx_pad = self.xp.zeros(win.padded_shape, dtype=dy.dtype)
        for i, j in win.offsets():
            dx_pad[win.window_slice(i, j)] += dy
        return self.xp.ascontiguousarray(self.unpad(dx_pad, win))

    # ---- optimizer updates ---------------------------------------------------------
    def axpy(self, a, x, y) -> None:
        """``y += a * x`` in place (BLAS's name): SGD's ``p -= lr * grad``."""
        y += a * x

    # ---- activations ---------------------------------------------------------------
    def relu(self, x):
        """``max(x, 0)`` elementwise (a NaN stays NaN)."""
        return self.xp.maximum(x, 0)

    def relu_backward(self, gy, y):
        """``gy * (y > 0)``: the gradient passes where the output ``y`` is positive."""
        return gy * (y > 0)

    def sigmoid(self, x):
        """``1 / (1 + e)`` where x >= 0 and ``e / (1 + e)`` where x < 0, ``e = exp(-|x|)``.

        The numerator, 1 or e, is ``exp(min(x, 0))``: ``xp.where(x >= 0, 1, e)`` would
        broadcast the constant, which NumPy runs several times slower than an ``exp``.
        """
        xp = self.xp
        return xp.exp(xp.minimum(x, 0)) / (1 + xp.exp(-xp.abs(x)))

    def sigmoid_backward(self, gy, y):
        """``gy * y * (1 - y)``, the derivative of the sigmoid from its output ``y``."""
        return gy * y * (1 - y)

    # ---- batch normalization: per-channel sums, then one elementwise pass --------
    # x is (N, C) or (N, C, H, W); statistics are per channel c, over every other axis.
    def batch_norm_stats(self, x):
        """Per-channel ``mean`` and biased ``var`` = mean((x - mean)^2), each of shape (C,)."""
        axes = _non_channel_axes(x)
        mean = x.mean(axis=axes, keepdims=True)
        centered = x - mean
        return mean.reshape(-1), (centered * centered).mean(axis=axes).reshape(-1)

    def batch_norm_apply(self, x, mean, inv_std, weight=None, bias=None):
        """``x_hat = (x - mean) * inv_std`` and ``y = x_hat * weight + bias`` (``y`` is
        ``x_hat`` when there is no weight), per channel."""
        x_hat = (x - _per_channel(mean, x)) * _per_channel(inv_std, x)
        if weight is None:
            return x_hat, x_hat
        return x_hat, x_hat * _per_channel(weight, x) + _per_channel(bias, x)

    def batch_norm_sums(self, gy, x_hat):
        """Per-channel ``sum(gy)`` and ``sum(gy * x_hat)``: dbias and dweight."""
        axes = _non_channel_axes(gy)
        return gy.sum(axis=axes), (gy * x_hat).sum(axis=axes)

    def batch_norm_grad(self, gy, x_hat, scale, mean_gy, mean_gy_x_hat):
        """``dx = scale * (gy - mean_gy - x_hat * mean_gy_x_hat)``, per channel."""
        centered = gy - _per_channel(mean_gy, gy) - x_hat * _per_channel(mean_gy_x_hat, gy)
        return centered * _per_channel(scale, gy)


def _is_pointwise(win: Window2d) -> bool:
    """A 1x1 window with stride 1 and no padding: each column is one pixel's channels."""
    return (win.kh, win.kw, win.sh, win.sw, win.ph, win.pw) == (1, 1, 1, 1, 0, 0)


def _non_channel_axes(x) -> tuple[int, ...]:
    return (0,) + tuple(range(2, x.ndim))


def _per_channel(values, x):
    """A (C,) vector shaped to broadcast along axis 1 of ``x``: (1, C) or (1, C, 1, 1)."""
    return values.reshape((1, -1) + (1,) * (x.ndim - 2))
