"""The Numba backend: the same NumPy arrays, with the sliding-window kernels compiled.

:class:`NumbaBackend` inherits every kernel of :class:`~minicnn.backend.numpy_.NumpyBackend`
and replaces the six that slide a window (im2col, col2im, pooling forward and backward)
with loops that Numba compiles to machine code and runs on every CPU core. Each loop is
the NumPy kernel's docstring written out one element at a time.

Three rules shape every kernel:

- ``prange`` runs over the (n, c) planes of the array the kernel *writes*, and each
  iteration owns its plane: it alone writes there, and it adds into each of its pixels
  every term that lands on it. No two iterations ever write the same element, so there
  are no races, no locks, and the same result on every run. (Overlapping pooling windows
  never cross planes, so their shared pixels always belong to one iteration.)
- Within a plane, each pixel's terms are added in the order NumPy's kernels add them
  (ascending kernel offset i*kw + j), so the two backends agree to the last bit.
- Outputs are allocated in Python (``numpy.zeros``) and the loops skip the padding, whose
  contribution is zero (or -inf for max pooling).

With ``NUMBA_DISABLE_JIT=1`` the kernels run as plain, slow Python, to step through in a
debugger. ``cache=True`` stores the machine code in ``__pycache__``, so only the first
process on a machine pays for compiling (see :meth:`NumbaBackend.warm_up`).
"""

from __future__ import annotations

import time

import numba
import numpy
from numba import prange

from .numpy_ import NumpyBackend
from .window import Window2d

_COMPILED_DTYPES = (numpy.float32, numpy.float64)


# ---- index helper --------------------------------------------------------------------
@numba.njit(cache=True)
def _inside(start, step, size, count):
    """The range [lo, hi) of o in 0 .. count-1 for which ``start + o*step`` lies in 0 .. size-1.

    With start = j - pw, step = sw, size = W, count = OW: the output columns ow whose
    kernel column j reads a real pixel, not padding.
    """
    lo = 0 if start >= 0 else (step - 1 - start) // step
    hi = min(count, (size - 1 - start) // step + 1)
    return lo, max(lo, hi)


# ---- convolution ---------------------------------------------------------------------
@numba.njit(parallel=True, cache=True)
def _im2col(x, cols, sh, sw, ph, pw):
    """for n, c, i, j, oh, ow:  cols[c, i, j, n, oh, ow] = x[n, c, oh*sh + i - ph, ow*sw + j - pw]

    skipping pixels in the padding (``cols`` arrives zeroed). The ow loop is one row copy.
    """
    N, C, H, W = x.shape
    kh, kw, OH, OW = cols.shape[1], cols.shape[2], cols.shape[4], cols.shape[5]
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        for i in range(kh):
            oh_lo, oh_hi = _inside(i - ph, sh, H, OH)
            for j in range(kw):
                ow_lo, ow_hi = _inside(j - pw, sw, W, OW)
                w_lo = ow_lo * sw + j - pw
                w_hi = w_lo + (ow_hi - ow_lo) * sw
                for oh in range(oh_lo, oh_hi):
                    row = x[n, c, oh * sh + i - ph]
                    if sw == 1:  # Numba copies a contiguous slice much faster than a strided one
                        cols[c, i, j, n, oh, ow_lo:ow_hi] = row[w_lo:w_hi]
                    else:
                        cols[c, i, j, n, oh, ow_lo:ow_hi] = row[w_lo:w_hi:sw]


@numba.njit(parallel=True, cache=True)
def _col2im(cols, dx, sh, sw, ph, pw):
    """for n, c, i, j, oh, ow:  dx[n, c, oh*sh + i - ph, ow*sw + j - pw] += cols[c, i, j, n, oh, ow]

    im2col's loops with the arrow reversed, skipping the padding. ``dx`` arrives zeroed.
    """
    N, C, H, W = dx.shape
    kh, kw, OH, OW = cols.shape[1], cols.shape[2], cols.shape[4], cols.shape[5]
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        for i in range(kh):
            oh_lo, oh_hi = _inside(i - ph, sh, H, OH)
            for j in range(kw):
                ow_lo, ow_hi = _inside(j - pw, sw, W, OW)
                w_lo = ow_lo * sw + j - pw
                w_hi = w_lo + (ow_hi - ow_lo) * sw
                for oh in range(oh_lo, oh_hi):
                    pixels = dx[n, c, oh * sh + i - ph, w_lo:w_hi:sw]  # a view: += writes dx
                    pixels += cols[c, i, j, n, oh, ow_lo:ow_hi]


# ---- max pooling ---------------------------------------------------------------------
@numba.njit(parallel=True, cache=True)
def _max_pool2d(x, y, argmax, kh, kw, sh, sw, ph, pw):
    """for n, c, oh, ow:
        y[n, c, oh, ow] = max over i, j of x[n, c, oh*sh + i - ph, ow*sw + j - pw]
        argmax[n, c, oh, ow] = i*kw + j of the first maximum (a NaN beats any number)

    Padding pixels are skipped, which is the same as reading -inf there.
    """
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        for oh in range(OH):
            top = oh * sh - ph
            i_lo, i_hi = max(0, -top), min(kh, H - top)  # window rows inside the image
            for ow in range(OW):
                left = ow * sw - pw
                j_lo, j_hi = max(0, -left), min(kw, W - left)
                best, best_k = -numpy.inf, 0
                for i in range(i_lo, i_hi):
                    for j in range(j_lo, j_hi):
                        v = x[n, c, top + i, left + j]
                        if v > best or (numpy.isnan(v) and not numpy.isnan(best)):
                            best, best_k = v, i * kw + j
                y[n, c, oh, ow] = best
                argmax[n, c, oh, ow] = best_k


@numba.njit(parallel=True, cache=True)
def _max_pool2d_backward(dy, argmax, dx, kh, kw, sh, sw, ph, pw):
    """for n, c, oh, ow:
        i, j = divmod(argmax[n, c, oh, ow], kw)
        dx[n, c, oh*sh + i - ph, ow*sw + j - pw] += dy[n, c, oh, ow]

    Each pixel of ``dx`` (arriving zeroed) sums dy over the windows that chose it.
    """
    N, C, H, W = dx.shape
    OH, OW = dy.shape[2], dy.shape[3]
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        # Windows walked backwards reach each pixel in ascending offset i*kw + j: NumPy's order.
        for oh in range(OH - 1, -1, -1):
            for ow in range(OW - 1, -1, -1):
                i, j = divmod(int(argmax[n, c, oh, ow]), kw)
                h, w = oh * sh + i - ph, ow * sw + j - pw
                if 0 <= h < H and 0 <= w < W:  # a window of -infs "chooses" its padding
                    dx[n, c, h, w] += dy[n, c, oh, ow]


# ---- average pooling: window sums ----------------------------------------------------
@numba.njit(parallel=True, cache=True)
def _window_sum(x, y, kh, kw, sh, sw, ph, pw):
    """for n, c, i, j, oh, ow:  y[n, c, oh, ow] += x[n, c, oh*sh + i - ph, ow*sw + j - pw]

    skipping pixels in the padding (they are zeros). ``y`` arrives zeroed.
    """
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        for i in range(kh):
            oh_lo, oh_hi = _inside(i - ph, sh, H, OH)
            for j in range(kw):
                ow_lo, ow_hi = _inside(j - pw, sw, W, OW)
                for oh in range(oh_lo, oh_hi):
                    h = oh * sh + i - ph
                    for ow in range(ow_lo, ow_hi):
                        y[n, c, oh, ow] += x[n, c, h, ow * sw + j - pw]


@numba.njit(parallel=True, cache=True)
def _window_sum_backward(dy, dx, kh, kw, sh, sw, ph, pw):
    """for n, c, i, j, oh, ow:  dx[n, c, oh*sh + i - ph, ow*sw + j - pw] += dy[n, c, oh, ow]

    col2im with every column equal to dy, skipping the padding. ``dx`` arrives zeroed.
    """
    N, C, H, W = dx.shape
    OH, OW = dy.shape[2], dy.shape[3]
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        for i in range(kh):
            oh_lo, oh_hi = _inside(i - ph, sh, H, OH)
            for j in range(kw):
                ow_lo, ow_hi = _inside(j - pw, sw, W, OW)
                w_lo = ow_lo * sw + j - pw
                w_hi = w_lo + (ow_hi - ow_lo) * sw
                for oh in range(oh_lo, oh_hi):
                    pixels = dx[n, c, oh * sh + i - ph, w_lo:w_hi:sw]  # a view: += writes dx
                    pixels += dy[n, c, oh, ow_lo:ow_hi]


# ---- the backend ---------------------------------------------------------------------
def _compiled_for(array) -> bool:
    """The kernels are compiled for float32 and float64; other dtypes use NumPy's."""
    return array.dtype in _COMPILED_DTYPES


class NumbaBackend(NumpyBackend):
    """NumPy arrays; the sliding-window kernels are parallel loops compiled by Numba."""

    name = "numba"

    def im2col(self, x, win: Window2d):
        if not _compiled_for(x):
            return super().im2col(x, win)
        cols = numpy.zeros((win.c, win.kh, win.kw, win.n, win.oh, win.ow), dtype=x.dtype)
        _im2col(numpy.ascontiguousarray(x), cols, win.sh, win.sw, win.ph, win.pw)
        return cols.reshape(win.c * win.kh * win.kw, win.n * win.oh * win.ow)

    def col2im(self, cols, win: Window2d):
        if not _compiled_for(cols):
            return super().col2im(cols, win)
        cols = numpy.ascontiguousarray(cols).reshape(win.c, win.kh, win.kw, win.n, win.oh, win.ow)
        dx = numpy.zeros(win.input_shape, dtype=cols.dtype)
        _col2im(cols, dx, win.sh, win.sw, win.ph, win.pw)
        return dx

    def max_pool2d(self, x, win: Window2d):
        if not _compiled_for(x):
            return super().max_pool2d(x, win)
        y = numpy.empty(win.output_shape, dtype=x.dtype)
        argmax = numpy.empty(win.output_shape, dtype=numpy.min_scalar_type(win.kh * win.kw))
        _max_pool2d(numpy.ascontiguousarray(x), y, argmax, *_geometry(win))
        return y, argmax

    def max_pool2d_backward(self, dy, argmax, win: Window2d):
        if not _compiled_for(dy):
            return super().max_pool2d_backward(dy, argmax, win)
        dx = numpy.zeros(win.input_shape, dtype=dy.dtype)
        dy, argmax = numpy.ascontiguousarray(dy), numpy.ascontiguousarray(argmax)
        _max_pool2d_backward(dy, argmax, dx, *_geometry(win))
        return dx

    def window_sum(self, x, win: Window2d):
        if not _compiled_for(x):
            return super().window_sum(x, win)
        y = numpy.zeros(win.output_shape, dtype=x.dtype)
        _window_sum(numpy.ascontiguousarray(x), y, *_geometry(win))
        return y

    def window_sum_backward(self, dy, win: Window2d):
        if not _compiled_for(dy):
            return super().window_sum_backward(dy, win)
        dx = numpy.zeros(win.input_shape, dtype=dy.dtype)
        _window_sum_backward(numpy.ascontiguousarray(dy), dx, *_geometry(win))
        return dx

    def warm_up(self) -> dict[str, float]:
        """Compile every kernel for float32 and float64 now, on tiny inputs.

        Returns the seconds each kernel took (both dtypes together). In the first process
        that is Numba compiling; once ``cache=True`` has stored the machine code, later
        processes only load it, and the numbers show how much that saves.
        """
        win = Window2d(n=1, c=1, h=3, w=3, kh=2, kw=2, sh=1, sw=1, ph=1, pw=1)
        seconds: dict[str, float] = {}

        def timed(kernel, *args):
            start = time.perf_counter()
            result = kernel(*args)
            seconds[kernel.__name__] = (
                seconds.get(kernel.__name__, 0.0) + time.perf_counter() - start
            )
            return result

        for dtype in _COMPILED_DTYPES:
            x = numpy.ones(win.input_shape, dtype=dtype)
            dy = numpy.ones(win.output_shape, dtype=dtype)
            timed(self.col2im, timed(self.im2col, x, win), win)
            _, argmax = timed(self.max_pool2d, x, win)
            timed(self.max_pool2d_backward, dy, argmax, win)
            timed(self.window_sum, x, win)
            timed(self.window_sum_backward, dy, win)
        return seconds


def _geometry(win: Window2d) -> tuple[int, ...]:
    """The window as the plain ints the compiled pooling kernels take."""
    return win.kh, win.kw, win.sh, win.sw, win.ph, win.pw
