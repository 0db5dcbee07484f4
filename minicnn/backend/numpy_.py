"""The NumPy backend: the readable reference every other backend must agree with.

Every kernel here is written on ``self.xp`` only, so the CuPy backend reuses it on
the GPU by setting ``xp = cupy``; the Numba backend overrides the hot kernels with
compiled loops and keeps the rest.

All sliding-window kernels take a :class:`~minicnn.backend.window.Window2d` ``win``
and loop over the ``kh * kw`` kernel offsets (i, j). For each offset the input
pixels it touches form one strided slice of the padded input::

    x_pad[:, :, i : i + sh*OH : sh, j : j + sw*OW : sw]      # shape (N, C, OH, OW)

so a whole layer is ``kh * kw`` array operations, each over every image, channel and
output position at once.
"""

from __future__ import annotations

import numpy

from .window import Window2d


class NumpyBackend:
    """Arrays are ``numpy.ndarray``; kernels are vectorised NumPy."""

    name = "numpy"
    device = "cpu"
    xp = numpy

    def __repr__(self) -> str:
        return f"<minicnn backend {self.name!r} ({self.device})>"

    # ---- arrays -------------------------------------------------------------------
    def is_array(self, obj) -> bool:
        return isinstance(obj, self.xp.ndarray)

    def asarray(self, data, dtype=None):
        """Bring ``data`` (list, scalar, NumPy or CuPy array) onto this backend."""
        if hasattr(data, "__cuda_array_interface__"):  # a CuPy array: copy it to the host
            data = data.get()
        return self.xp.asarray(data, dtype=dtype)

    def to_numpy(self, array) -> numpy.ndarray:
        return numpy.array(array, copy=True)

    def generator(self):
        """The random generator that dropout and init draw from on this backend."""
        from . import cpu_generator

        return cpu_generator()

    # ---- helpers ------------------------------------------------------------------
    def _pad(self, x, win: Window2d, value=0.0):
        if win.ph == 0 and win.pw == 0:
            return x
        widths = ((0, 0), (0, 0), (win.ph, win.ph), (win.pw, win.pw))
        return self.xp.pad(x, widths, mode="constant", constant_values=value)

    @staticmethod
    def _window_slice(win: Window2d, i: int, j: int):
        """The padded-input pixels that kernel offset (i, j) touches, for every output."""
        return (
            slice(None),
            slice(None),
            slice(i, i + win.sh * (win.oh - 1) + 1, win.sh),
            slice(j, j + win.sw * (win.ow - 1) + 1, win.sw),
        )

    @staticmethod
    def _offsets(win: Window2d):
        for i in range(win.kh):
            for j in range(win.kw):
                yield i, j

    def _unpad(self, x_pad, win: Window2d):
        return x_pad[:, :, win.ph : win.ph + win.h, win.pw : win.pw + win.w]

    # ---- convolution: im2col and its adjoint --------------------------------------
    def im2col(self, x, win: Window2d):
        """Unfold every receptive field of ``x`` into a column.

        Returns ``cols`` of shape (C*kh*kw, N*OH*OW) with::

            cols[(c*kh + i)*kw + j, (n*OH + oh)*OW + ow] = x_pad[n, c, oh*sh + i, ow*sw + j]

        so a convolution is one matrix product ``weight.reshape(OC, -1) @ cols``.
        """
        x_pad = self._pad(x, win)
        cols = self.xp.empty((win.c, win.kh, win.kw, win.n, win.oh, win.ow), dtype=x.dtype)
        for i, j in self._offsets(win):
            cols[:, i, j] = x_pad[self._window_slice(win, i, j)].transpose(1, 0, 2, 3)
        return cols.reshape(win.c * win.kh * win.kw, win.n * win.oh * win.ow)

    def col2im(self, cols, win: Window2d):
        """The adjoint of :meth:`im2col`: add every column back where it was read from.

        ``dx_pad[n, c, oh*sh + i, ow*sw + j] += cols[(c*kh + i)*kw + j, (n*OH + oh)*OW + ow]``;
        pixels shared by overlapping windows receive the sum of their columns.
        """
        cols = cols.reshape(win.c, win.kh, win.kw, win.n, win.oh, win.ow)
        dx_pad = self.xp.zeros(win.padded_shape, dtype=cols.dtype)
        for i, j in self._offsets(win):
            dx_pad[self._window_slice(win, i, j)] += cols[:, i, j].transpose(1, 0, 2, 3)
        return self.xp.ascontiguousarray(self._unpad(dx_pad, win))

    # ---- max pooling --------------------------------------------------------------
    def max_pool2d(self, x, win: Window2d):
        """Running maximum over the kernel offsets; returns ``(y, argmax)``.

        ``y[n, c, oh, ow] = max over (i, j) of x_pad[n, c, oh*sh + i, ow*sw + j]`` (padding
        is -inf), and ``argmax`` holds the offset ``i*kw + j`` of the first maximum, the one
        PyTorch picks when values tie. A NaN in a window wins, as in PyTorch.
        """
        xp = self.xp
        x_pad = self._pad(x, win, value=-xp.inf)
        y = xp.full(win.output_shape, -xp.inf, dtype=x.dtype)
        argmax = xp.zeros(win.output_shape, dtype=numpy.min_scalar_type(win.kh * win.kw))
        for k, (i, j) in enumerate(self._offsets(win)):
            candidate = x_pad[self._window_slice(win, i, j)]
            better = (candidate > y) | (xp.isnan(candidate) & ~xp.isnan(y))
            y = xp.where(better, candidate, y)
            argmax[better] = k
        return y, argmax

    def max_pool2d_backward(self, dy, argmax, win: Window2d):
        """Send each output gradient to the input pixel that won its window.

        ``dx_pad[n, c, oh*sh + i, ow*sw + j] += dy[n, c, oh, ow]`` where ``argmax == i*kw + j``;
        overlapping windows that share a winner add up.
        """
        dx_pad = self.xp.zeros(win.padded_shape, dtype=dy.dtype)
        for k, (i, j) in enumerate(self._offsets(win)):
            dx_pad[self._window_slice(win, i, j)] += self.xp.where(argmax == k, dy, 0)
        return self.xp.ascontiguousarray(self._unpad(dx_pad, win))

    # ---- average pooling (a window sum, divided by the op) ------------------------
    def window_sum(self, x, win: Window2d):
        """``y[n, c, oh, ow] = sum over (i, j) of x_pad[n, c, oh*sh + i, ow*sw + j]`` (zero padding)."""
        x_pad = self._pad(x, win)
        y = self.xp.zeros(win.output_shape, dtype=x.dtype)
        for i, j in self._offsets(win):
            y += x_pad[self._window_slice(win, i, j)]
        return y

    def window_sum_backward(self, dy, win: Window2d):
        """The adjoint of :meth:`window_sum`: ``dx_pad[..., oh*sh + i, ow*sw + j] += dy[..., oh, ow]``."""
        dx_pad = self.xp.zeros(win.padded_shape, dtype=dy.dtype)
        for i, j in self._offsets(win):
            dx_pad[self._window_slice(win, i, j)] += dy
        return self.xp.ascontiguousarray(self._unpad(dx_pad, win))
