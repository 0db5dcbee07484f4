"""The Numba backend: the same NumPy arrays, with the hot kernels compiled.

Read this after the textbook path (backend/numpy_.py and functional/).
:class:`NumbaBackend` inherits every kernel of :class:`~minicnn.backend.numpy_.NumpyBackend`
and replaces the ones a training step spends its time in with loops that Numba compiles
to machine code (engine_room/numba_kernels.py): the sliding windows (col2im, tap_sum,
pooling forward and backward), batch norm's per-channel sums and elementwise passes,
ReLU, sigmoid, SGD's update and Winograd's transforms (engine_room/_winograd_kernels.py).
Each loop is the NumPy kernel's docstring written out one element at a time, under the
rules in numba_kernels.py's docstring. (The matrix products stay NumPy's: BLAS.) Each
compiled method says, in its ``@fast_kernel(when=...)`` line, when NumPy's kernel runs
instead. conv2d's algorithm per layer comes from engine_room/conv.py
(:meth:`NumbaBackend.conv2d_plan`).

A method here does what the loops do not, by three rules:

- It cuts the operation into parts for the backend's
  :class:`~minicnn.engine_room.team.ThreadTeam`, each part a slice of what the operation
  *writes*, and runs one loop on each part, several at once.
- Outputs are allocated in Python (``self.empty``, or ``self.zeros`` where a loop only
  adds into them), from a pool that hands the same memory to the next step
  (engine_room/allocator.py).
- Where NumPy is faster the backend keeps NumPy's kernel: the strided copies of im2col
  (as one copy), of window_sum on a single thread, and anything not float32 or float64
  (the ``@fast_kernel`` decorator of engine_room/fallback.py: one mechanism for every
  such fallback, the cupy backend's too).

``cache=True`` stores the loops' machine code on disk, so only the first process on a
machine pays for compiling (:meth:`NumbaBackend.warm_up` measures it).
"""

from __future__ import annotations

import time

import numpy
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from ..backend.numpy_ import NumpyBackend, _is_pointwise
from ..backend.window import Window2d
from . import _winograd_kernels, conv, tuning, winograd
from . import team as _team
from .adopt import Adoptions
from .allocator import BufferPool
from .fallback import fast_kernel
from .numba_kernels import (
    _axpy,
    _batch_norm_apply,
    _batch_norm_grad,
    _batch_norm_stats,
    _batch_norm_sums,
    _col2im,
    _col2im_stride_1,
    _col2im_wide,
    _correlate_direct,
    _grad_weight_direct,
    _im2col_stride_1,
    _max_pool2d,
    _max_pool2d_backward,
    _max_pool2d_planes,
    _minus_abs,
    _narrow,
    _relu,
    _relu_backward,
    _sigmoid,
    _sigmoid_backward,
    _tap_sum,
    _tap_sum_stride_1,
    _widen,
    _window_sum,
    _window_sum_2x2,
    _window_sum_2x2_backward,
    _window_sum_backward,
)

#: The dtypes the loops are compiled for; others run NumPy's kernels.
_COMPILED_DTYPES = (numpy.float32, numpy.float64)


# ---- when the compiled loops run -------------------------------------------------------
def _compiled_for(array) -> bool:
    """The kernels are compiled for float32 and float64; other dtypes use NumPy's."""
    return array.dtype in _COMPILED_DTYPES


def _contiguous(*arrays) -> bool:
    return all(array.flags.c_contiguous for array in arrays)


def _unfolds(self, x, win: Window2d, out=None, value=0.0) -> bool:
    """im2col's condition: a window that needs unfolding. A 1x1 window over one image
    needs none: NumPy's im2col returns the image itself as its columns, a view."""
    return not (_is_pointwise(win) and win.n == 1)


def _float32_or_64(self, array, *rest, **kwargs) -> bool:
    """Most loops' condition: the first array is float32 or float64."""
    return _compiled_for(array)


def _contiguous_floats(self, *arrays, **kwargs) -> bool:
    """The elementwise loops' condition: float arrays, contiguous (flattened as views)."""
    return _compiled_for(arrays[0]) and _contiguous(*arrays)


def _batch_norm_sized(self, x, *rest, **kwargs) -> bool:
    """Batch norm's sums over fewer values per channel than BATCH_NORM_MIN_COUNT are
    NumPy's. Small batches are where batch norm is ill-conditioned: a channel that barely
    varies is divided by sqrt(var + eps), so the last bits of its sums, which Numba adds
    in another order, would show in the gradients at 1e-4 instead of 1e-7."""
    return _compiled_for(x) and x.size // x.shape[1] >= tuning.BATCH_NORM_MIN_COUNT


def _batch_norm_on_maps(self, x, *rest, **kwargs) -> bool:
    """Batch norm's elementwise passes compute NumPy's bits, and run compiled at any size
    on maps (N, C, H, W); on a Linear layer's (N, C) each loop over a "plane" is one value
    long, and NumPy's broadcasting ran 2x faster there (LeNet-BN's (256, 120): 78 against
    176 us)."""
    return _compiled_for(x) and x.ndim == 4


def _generated_winograd(self, array, win, alg, *rest, **kwargs) -> bool:
    """A Winograd transform has compiled kernels for float32/64 and the generated algorithms."""
    return _compiled_for(array) and (alg.m, alg.r) in _winograd_kernels.KERNELS


def _reference_transform(name):
    """winograd.py's NumPy transform ``name``, as a backend method's fallback."""
    transform = getattr(winograd, name)
    return lambda self, *args, **kwargs: transform(numpy, *args, **kwargs)


# ---- NumPy twins: the fallbacks of the methods NumpyBackend has no kernel for -------
def _correlate_direct_numpy(backend, x_pad, weight, bias, y):
    """The direct loops' sums in NumPy, one tap at a time (dtypes without compiled loops)."""
    OH, OW = y.shape[2], y.shape[3]
    y[...] = 0 if bias is None else bias.reshape(-1, 1, 1)
    for i in range(weight.shape[2]):
        for j in range(weight.shape[3]):
            y += numpy.einsum("nchw,oc->nohw", x_pad[:, :, i : i + OH, j : j + OW], weight[:, :, i, j])
    return y


def _grad_weight_direct_numpy(backend, x_pad, gy, weight_shape):
    """dW of :func:`_correlate_direct_numpy`, one tap at a time."""
    OH, OW = gy.shape[2], gy.shape[3]
    grad_w = numpy.zeros(weight_shape, dtype=gy.dtype)
    for i in range(weight_shape[2]):
        for j in range(weight_shape[3]):
            grad_w[:, :, i, j] = numpy.einsum("nohw,nchw->oc", gy, x_pad[:, :, i : i + OH, j : j + OW])
    return grad_w


def _widen_numpy(backend, gy, win: Window2d):
    """:meth:`NumbaBackend.widen` in NumPy: dy copied into zeros as wide as the padded rows."""
    wide = numpy.zeros((gy.shape[1], gy.shape[0], win.oh, win.padded_shape[3]), gy.dtype)
    wide[..., : win.ow] = gy.transpose(1, 0, 2, 3)
    return wide.reshape(gy.shape[1], -1)


def _narrow_numpy(backend, wide, bias, out):
    """:meth:`NumbaBackend.narrow` in NumPy: the wide rows' first OW columns, plus bias."""
    n, oc, oh, ow = out.shape
    out[...] = wide.reshape(oc, n, oh, -1)[..., :ow].transpose(1, 0, 2, 3)
    if bias is not None:
        out += bias.reshape(-1, 1, 1)
    return out


def _col2im_wide_numpy(backend, cols, win: Window2d, out=None):
    """:meth:`NumbaBackend.col2im_wide` for dtypes without compiled loops: each tap's run
    added back with NumPy, one tap at a time."""
    _, _, hp, wp = win.padded_shape
    length = (win.oh - 1) * wp + win.ow
    cols = cols.reshape(win.c, win.kh, win.kw, win.n, win.oh * wp)
    planes = numpy.zeros((win.n, win.c, hp * wp), dtype=cols.dtype)
    for i in range(win.kh):
        for j in range(win.kw):
            start = i * wp + j
            planes[:, :, start : start + length] += cols[:, i, j, :, :length].transpose(1, 0, 2)
    dx = planes.reshape(win.n, win.c, hp, wp)[:, :, win.ph : win.ph + win.h, win.pw : win.pw + win.w]
    if out is None:
        return numpy.ascontiguousarray(dx)
    out[...] = dx
    return out


# ---- the backend ---------------------------------------------------------------------
class NumbaBackend(NumpyBackend):
    """NumPy arrays; the hot kernels are loops compiled by Numba, run by a team of threads."""

    name = "numba"
    conv_winograd = True  # wide 3x3 and 5x5 stride-1 layers in 16/36 and 36/100 of the products

    def __init__(self):
        from ..threads import budget

        self.pool = BufferPool()
        self.adoptions = Adoptions(self._owns_memory)
        self.team = _team.ThreadTeam()
        try:  # resized again whenever the backend becomes active
            self.team.resize(budget(self))
        except ValueError:  # a bad thread variable: said when the backend becomes active
            pass

    def map(self, fn, items) -> list:
        return self.team.map(fn, items)

    def empty(self, shape, dtype):
        return self.pool.empty(shape, dtype)

    def zeros(self, shape, dtype):
        return self.pool.zeros(shape, dtype)

    def adopt_grad(self, array):
        """The gradient itself when its memory is its own and no leaf kept it before;
        otherwise a copy (engine_room/adopt.py)."""
        return self.adoptions.adopt(array)

    def _owns_memory(self, array) -> bool:
        # The array the pool handed out is a view of its buffer, yet the memory is its
        # alone: the pool reuses the buffer only after the array is gone.
        return array.base is None or self.pool.is_original(array)

    def conv2d_plan(self, win: Window2d, weight_shape):
        """The engine room's algorithm for this layer (engine_room/conv.py)."""
        return conv.plan(self, win, weight_shape)

    def batch_parts(self, count: int, multiply_adds: int) -> list[tuple[int, int]]:
        """A convolution's batch of ``count`` images, whose products take
        ``multiply_adds``, cut into parts: one (start, stop) per thread of the team."""
        return self.team.parts(count, multiply_adds, tuning.PARALLEL_MIN_MULTIPLY_ADDS)

    def matmul(self, a, b):
        """``a @ b`` (matrices, or stacks of them), its columns cut into parts, one per
        thread of the team (each part's product on one BLAS thread)."""
        out = self.empty(a.shape[:-1] + b.shape[-1:], numpy.result_type(a, b))

        def columns(part):
            numpy.matmul(a, b[..., part[0] : part[1]], out=out[..., part[0] : part[1]])

        multiply_adds = out.size * a.shape[-1]
        parts = self.team.parts(b.shape[-1], multiply_adds, tuning.PARALLEL_MIN_MULTIPLY_ADDS)
        self.team.map(columns, parts)
        return out

    # ---- convolution: called on one chunk of a batch, on one of the team's threads ----
    @fast_kernel(when=_unfolds)
    def im2col(self, x, win: Window2d, out=None, value=0.0):
        """NumPy's im2col in one strided copy instead of one per kernel offset; at stride
        1, for float32 and float64, a compiled loop (``_im2col_stride_1``).

        ``sliding_window_view`` sees every kh x kw window of the padded input at once, as
        a view (N, C, OH, OW, kh, kw); one copy lays it out as the columns (C, kh, kw, N,
        OH, OW). It is as fast as the loop over offsets (and faster with many offsets),
        and one call lets go of the GIL once, not kh*kw times, so that the team's
        threads unfold their parts of a batch at once. With a stride, a compiled loop
        ran 1.1-1.2x slower than the copy; at stride 1 it runs 0.46-0.66x its time.
        """
        shape = (win.c, win.kh, win.kw, win.n, win.oh, win.ow)
        cols = self.empty(shape, dtype=x.dtype) if out is None else out.reshape(shape)
        if (win.sh, win.sw) == (1, 1) and _compiled_for(x):
            _im2col_stride_1(self.pad(x, win, value), cols)
            return cols.reshape(win.c * win.kh * win.kw, win.n * win.oh * win.ow)
        windows = sliding_window_view(self.pad(x, win, value), (win.kh, win.kw), axis=(2, 3))
        windows = windows[:, :, : win.sh * win.oh : win.sh, : win.sw * win.ow : win.sw]
        cols[...] = windows.transpose(1, 4, 5, 0, 2, 3)
        return cols.reshape(win.c * win.kh * win.kw, win.n * win.oh * win.ow)

    @fast_kernel(when=_float32_or_64)
    def col2im(self, cols, win: Window2d, out=None):
        cols = numpy.ascontiguousarray(cols).reshape(win.c, win.kh, win.kw, win.n, win.oh, win.ow)
        dx = self.empty(win.input_shape, dtype=cols.dtype) if out is None else out
        if (win.sh, win.sw) == (1, 1):
            _col2im_stride_1(cols, dx, win.ph, win.pw)
        else:
            _col2im(cols, dx, win.sh, win.sw, win.ph, win.pw)
        return dx

    # im2col on wide rows, for stride-1 layers on small maps (engine_room/conv.py)
    conv_wide_rows = True

    def im2col_wide(self, x_pad, win: Window2d, out=None):
        """cols[c, i, j, n, p] = x_pad[n, c].flat[i*Wp + j + p] for p < (OH-1)*Wp + OW, and
        0 past it, up to OH*Wp: every tap's run of each padded plane, seen at once as a
        strided view and copied in one call (3x faster than a compiled loop of the same
        copies). Returned as (C*kh*kw, n*OH*Wp)."""
        x_pad = numpy.ascontiguousarray(x_pad)
        n, c, _, wp = x_pad.shape
        length = (win.oh - 1) * wp + win.ow
        shape = (c, win.kh, win.kw, n, win.oh * wp)
        cols = self.empty(shape, x_pad.dtype) if out is None else out.reshape(shape)
        step_n, step_c, step_h, step_w = x_pad.strides
        cols[..., :length] = as_strided(x_pad, (c, win.kh, win.kw, n, length),
                                        (step_c, step_h, step_w, step_n, step_w), writeable=False)  # fmt: skip
        cols[..., length:] = 0
        return cols.reshape(c * win.kh * win.kw, n * win.oh * wp)

    @fast_kernel(when=_float32_or_64, otherwise=_widen_numpy)
    def widen(self, gy, win: Window2d):
        """dy (n, OC, OH, OW) on the wide rows, (OC, n*OH*Wp): zeros in the extra columns."""
        n, oc = gy.shape[:2]
        wide = self.empty((oc, n, win.oh, win.padded_shape[3]), gy.dtype)
        _widen(numpy.ascontiguousarray(gy), wide)
        return wide.reshape(oc, -1)

    @fast_kernel(when=_float32_or_64, otherwise=_narrow_numpy)
    def narrow(self, wide, bias, out):
        """The wide rows' product (OC, n*OH*Wp) + bias as the output ``out`` (n, OC, OH, OW)."""
        n, oc, oh, _ = out.shape
        bias = numpy.zeros(oc, out.dtype) if bias is None else bias
        if out.flags.c_contiguous:
            _narrow(wide.reshape(oc, n, oh, -1), bias, out)
        else:
            out[...] = _narrow_numpy(self, wide, bias, self.empty(out.shape, out.dtype))
        return out

    @fast_kernel(when=_float32_or_64, otherwise=_col2im_wide_numpy)
    def col2im_wide(self, cols, win: Window2d, out=None):
        """dx of :meth:`im2col_wide`'s columns, (C*kh*kw, n*OH*Wp), into ``out`` (n, C, H, W)."""
        _, _, hp, wp = win.padded_shape
        cols = numpy.ascontiguousarray(cols).reshape(win.c, win.kh, win.kw, win.n, win.oh * wp)
        dx = self.empty(win.input_shape, dtype=cols.dtype) if out is None else out
        padded = (win.ph, win.pw) != (0, 0) or not dx.flags.c_contiguous
        dx_pad = self.empty((win.n, win.c, hp, wp), cols.dtype) if padded else dx
        _col2im_wide(cols, dx_pad, win.oh, win.ow)
        if padded:
            dx[...] = dx_pad[:, :, win.ph : win.ph + win.h, win.pw : win.pw + win.w]
        return dx

    @fast_kernel(when=_float32_or_64, otherwise=conv.tap_sum)
    def tap_sum(self, z, win: Window2d, out=None):
        z = numpy.ascontiguousarray(z).reshape(win.kh, win.kw, -1, win.n, win.h, win.w)
        y = self.empty((win.n, z.shape[2], win.oh, win.ow), dtype=z.dtype) if out is None else out
        if (win.sh, win.sw) == (1, 1):
            _tap_sum_stride_1(z, y, win.ph, win.pw)
        else:
            _tap_sum(z, y, win.sh, win.sw, win.ph, win.pw)
        return y

    # Winograd's transforms: the kernels in _winograd_kernels.py, generated for each
    # algorithm with its matrices' sums unrolled (engine_room/winograd_codegen.py).
    @fast_kernel(when=_generated_winograd, otherwise=_reference_transform("transform_input"))
    def winograd_input(self, x, win: Window2d, alg: winograd.Algorithm):
        th, tw = alg.tiles(win)
        v = self.empty((alg.n**2, win.c, win.n * th * tw), dtype=x.dtype)
        kernel = _winograd_kernels.KERNELS[alg.m, alg.r].input
        kernel(numpy.ascontiguousarray(x), v, alg.BT.astype(x.dtype), win.ph, win.pw, th, tw)
        return v

    @fast_kernel(when=_generated_winograd, otherwise=_reference_transform("transform_output"))
    def winograd_output(self, m_tiles, win: Window2d, alg: winograd.Algorithm, out=None):
        shape = (win.n, m_tiles.shape[1], win.oh, win.ow)
        y = self.empty(shape, dtype=m_tiles.dtype) if out is None else out
        kernel = _winograd_kernels.KERNELS[alg.m, alg.r].output
        kernel(numpy.ascontiguousarray(m_tiles), y, alg.AT.astype(y.dtype), *alg.tiles(win))
        return y

    @fast_kernel(when=_generated_winograd, otherwise=_reference_transform("transform_output_grad"))
    def winograd_output_grad(self, gy, win: Window2d, alg: winograd.Algorithm):
        th, tw = alg.tiles(win)
        dm = self.empty((alg.n**2, gy.shape[1], win.n * th * tw), dtype=gy.dtype)
        kernel = _winograd_kernels.KERNELS[alg.m, alg.r].output_grad
        a_mat = numpy.ascontiguousarray(alg.AT.T, dtype=gy.dtype)
        kernel(numpy.ascontiguousarray(gy), dm, a_mat, th, tw)
        return dm

    @fast_kernel(when=_generated_winograd, otherwise=_reference_transform("transform_input_grad"))
    def winograd_input_grad(self, dv, win: Window2d, alg: winograd.Algorithm):
        dx = self.empty(win.input_shape, dtype=dv.dtype)
        kernel = _winograd_kernels.KERNELS[alg.m, alg.r].input_grad
        b_mat = numpy.ascontiguousarray(alg.BT.T, dtype=dv.dtype)
        kernel(numpy.ascontiguousarray(dv), dx, b_mat, win.ph, win.pw, *alg.tiles(win))
        return dx

    # ---- whole layers, in parts: ranges of planes, channels, images or elements -------
    def _run_in_parts(self, count: int, work: int, run) -> None:
        """``run(part)`` for the team's parts of ``range(count)``, each part a slice."""
        self.team.map(lambda bounds: run(slice(*bounds)), self.team.parts(count, work))

    @fast_kernel(when=_float32_or_64)
    def max_pool2d(self, x, win: Window2d):
        y = self.empty(win.output_shape, dtype=x.dtype)
        argmax = self.empty(win.output_shape, dtype=numpy.min_scalar_type(win.kh * win.kw))
        x3, y3, arg3 = _planes(numpy.ascontiguousarray(x)), _planes(y), _planes(argmax)
        if win.sw > 1 and win.ow >= tuning.MAX_POOL_ROWS_MIN_OUTPUTS:
            def pool(p):
                _max_pool2d(x3[p], y3[p], arg3[p], *_geometry(win))
        else:
            def pool(p):
                _max_pool2d_planes(x3[p], y3[p], arg3[p], *_geometry(win), tuning.MAX_POOL_BLOCK)
        self._run_in_parts(len(y3), y.size, pool)
        return y, argmax

    @fast_kernel(when=_float32_or_64)
    def max_pool2d_backward(self, dy, argmax, win: Window2d):
        dx = self.empty(win.input_shape, dtype=dy.dtype)
        dy3, arg3, dx3 = _planes(numpy.ascontiguousarray(dy)), _planes(argmax), _planes(dx)
        self._run_in_parts(len(dx3), dx.size,
                           lambda p: _max_pool2d_backward(dy3[p], arg3[p], dx3[p], *_geometry(win)))  # fmt: skip
        return dx

    # A single input channel, stride 1: numba_kernels.py's direct loops (engine_room/conv.py
    # chooses them), called on one part of a batch, its input already padded.
    conv_direct = True

    @fast_kernel(when=_float32_or_64, otherwise=_correlate_direct_numpy)
    def correlate_direct(self, x_pad, weight, bias, y):
        """y = conv2d(x_pad, weight) + bias, stride 1, into ``y`` (one part of a batch)."""
        bias = numpy.zeros(weight.shape[0], y.dtype) if bias is None else bias
        _correlate_direct(numpy.ascontiguousarray(x_pad), weight, bias, y)
        return y

    @fast_kernel(when=_float32_or_64, otherwise=_grad_weight_direct_numpy)
    def grad_weight_direct(self, x_pad, gy, weight_shape):
        """dW of :meth:`correlate_direct` over one part of a batch."""
        grad_w = numpy.zeros(weight_shape, dtype=gy.dtype)
        _grad_weight_direct(numpy.ascontiguousarray(x_pad), numpy.ascontiguousarray(gy), grad_w,
                            gy.dtype.type(0))
        return grad_w

    @fast_kernel(when=lambda self, x, win: _compiled_for(x) and (
        _is_2x2_halving(win) or self.team.size >= tuning.STRIDED_MIN_THREADS))
    def window_sum(self, x, win: Window2d):
        x3 = _planes(numpy.ascontiguousarray(x))
        if _is_2x2_halving(win):
            y3 = _planes(y := self.empty(win.output_shape, dtype=x.dtype))
            self._run_in_parts(len(y3), y.size, lambda p: _window_sum_2x2(x3[p], y3[p]))
            return y
        y3 = _planes(y := self.zeros(win.output_shape, dtype=x.dtype))
        self._run_in_parts(len(y3), y.size, lambda p: _window_sum(x3[p], y3[p], *_geometry(win)))
        return y

    @fast_kernel(when=_float32_or_64)
    def window_sum_backward(self, dy, win: Window2d):
        dy3 = _planes(numpy.ascontiguousarray(dy))
        halving = _is_2x2_halving(win)
        odd = win.h % 2 or win.w % 2  # a last row or column no window covers stays zero
        dx = self.zeros(win.input_shape, dy.dtype) if odd or not halving else self.empty(
            win.input_shape, dy.dtype)  # fmt: skip
        dx3 = _planes(dx)
        if halving:
            self._run_in_parts(len(dx3), dx.size, lambda p: _window_sum_2x2_backward(dy3[p], dx3[p]))
        else:
            self._run_in_parts(len(dx3), dx.size,
                               lambda p: _window_sum_backward(dy3[p], dx3[p], *_geometry(win)))  # fmt: skip
        return dx

    @fast_kernel(when=lambda self, a, x, y: _contiguous_floats(self, y, x) and x.dtype == y.dtype)
    def axpy(self, a, x, y) -> None:
        a, x1, y1 = y.dtype.type(a), x.reshape(-1), y.reshape(-1)
        self._run_in_parts(y.size, y.size, lambda k: _axpy(a, x1[k], y1[k]))

    @fast_kernel(when=_contiguous_floats)
    def relu(self, x):
        y = self.empty(x.shape, x.dtype)
        x1, y1 = x.reshape(-1), y.reshape(-1)
        self._run_in_parts(x.size, x.size, lambda k: _relu(x1[k], y1[k]))
        return y

    @fast_kernel(when=_contiguous_floats)
    def relu_backward(self, gy, y):
        dx = self.empty(gy.shape, gy.dtype)
        gy1, y1, dx1 = gy.reshape(-1), y.reshape(-1), dx.reshape(-1)
        self._run_in_parts(gy.size, gy.size, lambda k: _relu_backward(gy1[k], y1[k], dx1[k]))
        return dx

    @fast_kernel(when=_contiguous_floats)
    def sigmoid(self, x):
        y, one, block = self.empty(x.shape, x.dtype), x.dtype.type(1), tuning.ELEMENTWISE_BLOCK
        x1, y1 = x.reshape(-1), y.reshape(-1)

        def part(k):  # e = exp(-|x|) by NumPy's exp, then the loop, a block at a time
            e = self.empty(min(block, k.stop - k.start), x.dtype)
            for start in range(k.start, k.stop, block):
                b, e_b = slice(start, min(start + block, k.stop)), e[: min(block, k.stop - start)]
                _minus_abs(x1[b], e_b)
                numpy.exp(e_b, out=e_b)
                _sigmoid(x1[b], e_b, one, y1[b])

        self._run_in_parts(x.size, x.size, part)
        return y

    @fast_kernel(when=_contiguous_floats)
    def sigmoid_backward(self, gy, y):
        dx, one = self.empty(gy.shape, gy.dtype), gy.dtype.type(1)
        gy1, y1, dx1 = gy.reshape(-1), y.reshape(-1), dx.reshape(-1)
        self._run_in_parts(gy.size, gy.size, lambda k: _sigmoid_backward(gy1[k], y1[k], one, dx1[k]))
        return dx

    @fast_kernel(when=_batch_norm_sized)
    def batch_norm_stats(self, x):
        mean = self.empty(x.shape[1], dtype=x.dtype)
        var = self.empty(x.shape[1], dtype=x.dtype)
        x3 = _as_3d(x)
        self._run_in_parts(x.shape[1], x.size, lambda c: _batch_norm_stats(x3, c.start, c.stop, mean, var))
        return mean, var

    @fast_kernel(when=_batch_norm_on_maps)
    def batch_norm_apply(self, x, mean, inv_std, weight=None, bias=None):
        x_hat = self.empty(x.shape, dtype=x.dtype)
        if weight is None:  # y = x_hat: weight 1, bias 0, written to x_hat twice
            weight, bias, y = numpy.ones_like(mean), numpy.zeros_like(mean), x_hat
        else:
            y = self.empty(x.shape, dtype=x.dtype)
        x3, x_hat3, y3 = _as_3d(x), _as_3d(x_hat), _as_3d(y)
        self._run_in_parts(len(x), x.size, lambda n: _batch_norm_apply(
            x3[n], mean, inv_std, weight, bias, x_hat3[n], y3[n]))  # fmt: skip
        return x_hat, y

    @fast_kernel(when=_batch_norm_sized)
    def batch_norm_sums(self, gy, x_hat):
        sum_gy = self.empty(gy.shape[1], dtype=gy.dtype)
        sum_gy_x_hat = self.empty(gy.shape[1], dtype=gy.dtype)
        gy3, x_hat3 = _as_3d(gy), _as_3d(x_hat)
        self._run_in_parts(gy.shape[1], gy.size, lambda c: _batch_norm_sums(
            gy3, x_hat3, c.start, c.stop, sum_gy, sum_gy_x_hat))  # fmt: skip
        return sum_gy, sum_gy_x_hat

    @fast_kernel(when=_batch_norm_on_maps)
    def batch_norm_grad(self, gy, x_hat, scale, mean_gy, mean_gy_x_hat):
        dx = self.empty(gy.shape, dtype=gy.dtype)
        gy3, x_hat3, dx3 = _as_3d(gy), _as_3d(x_hat), _as_3d(dx)
        self._run_in_parts(len(gy), gy.size, lambda n: _batch_norm_grad(
            gy3[n], x_hat3[n], scale, mean_gy, mean_gy_x_hat, dx3[n]))  # fmt: skip
        return dx

    def warm_up(self) -> dict[str, float]:
        """Compile every kernel for float32 and float64 now, on tiny inputs.

        Returns the seconds each kernel took (both dtypes together). In the first process
        that is Numba compiling; once ``cache=True`` has stored the machine code, later
        processes only load it, and the numbers show how much that saves.
        """
        win = Window2d(n=1, c=1, h=3, w=3, kh=2, kw=2, sh=1, sw=1, ph=1, pw=1)
        strided = Window2d(n=1, c=1, h=3, w=3, kh=2, kw=2, sh=2, sw=2, ph=1, pw=1)
        seconds: dict[str, float] = {}

        def timed(kernel, *args, name=None):
            start = time.perf_counter()
            result = kernel(*args)
            name = name or kernel.__name__.lstrip("_")
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
            return result

        for dtype in _COMPILED_DTYPES:
            x = numpy.ones(win.input_shape, dtype=dtype)
            dy = numpy.ones(win.output_shape, dtype=dtype)
            for w in (win, strided):  # stride 1 has kernels of its own
                timed(self.col2im, timed(self.im2col, x, w), w)
                timed(self.tap_sum, numpy.ones((4, 9), dtype=dtype), w)
            weight = numpy.ones((1, 1, win.kh, win.kw), dtype=dtype)
            x_pad = self.pad(x, win)
            timed(self.correlate_direct, x_pad, weight, None, numpy.empty_like(dy), name="direct")
            timed(self.grad_weight_direct, x_pad, dy, weight.shape, name="direct")
            wide = self.im2col_wide(x_pad, win)  # (kh*kw, OH*Wp)
            timed(self.col2im_wide, wide, win, name="wide rows")
            timed(self.narrow, wide[:1], None, numpy.empty_like(dy), name="wide rows")
            timed(self.widen, dy, win, name="wide rows")
            _, argmax = timed(self.max_pool2d, x, win)
            timed(self.max_pool2d_backward, dy, argmax, win)
            timed(_window_sum, _planes(x), _planes(numpy.zeros_like(dy)), *_geometry(win))
            timed(self.window_sum_backward, dy, win)
            halving = Window2d(n=1, c=1, h=2, w=2, kh=2, kw=2, sh=2, sw=2, ph=0, pw=0)
            square = numpy.ones(halving.input_shape, dtype=dtype)
            cell = timed(self.window_sum, square, halving, name="window_sum_2x2")
            timed(self.window_sum_backward, cell, halving, name="window_sum_2x2")
            timed(self.axpy, -0.5, x, x.copy())
            timed(self.relu_backward, x, timed(self.relu, x))
            timed(self.sigmoid_backward, x, timed(self.sigmoid, x))
            # The batch-norm kernels themselves: the backend keeps inputs this small for NumPy.
            stats = numpy.ones((2, win.c), dtype=dtype)
            x3 = _as_3d(x)
            timed(_batch_norm_stats, x3, 0, win.c, *stats)
            timed(_batch_norm_apply, x3, *stats, *stats, x3.copy(), x3.copy())
            timed(_batch_norm_sums, x3, x3, 0, win.c, *stats)
            timed(_batch_norm_grad, x3, x3, stats[0], *stats, x3.copy())
            for alg in winograd.ALGORITHMS.values():  # the ones conv2d chooses
                tile = Window2d(n=1, c=1, h=alg.m, w=alg.m, kh=alg.r, kw=alg.r, sh=1, sw=1,
                                ph=alg.r // 2, pw=alg.r // 2)  # fmt: skip
                image = numpy.ones(tile.input_shape, dtype=dtype)
                name = f"winograd {alg}"
                v = timed(self.winograd_input, image, tile, alg, name=name)
                timed(self.winograd_input_grad, v, tile, alg, name=name)
                y = timed(self.winograd_output, v, tile, alg, name=name)
                timed(self.winograd_output_grad, y, tile, alg, name=name)
        return seconds


# ---- the loops' layouts ---------------------------------------------------------------
def _planes(x):
    """(N, C, H, W) -> (N*C, H, W), a view of a contiguous array: the pooling loops' layout."""
    return x.reshape(-1, x.shape[-2], x.shape[-1])


def _geometry(win: Window2d) -> tuple[int, ...]:
    """The window as the plain ints the compiled pooling kernels take."""
    return win.kh, win.kw, win.sh, win.sw, win.ph, win.pw


def _as_3d(x):
    """(N, C, H, W) -> (N, C, H*W), (N, C) -> (N, C, 1): views of a contiguous array, the
    one layout the batch-norm kernels see."""
    return x.reshape(x.shape[0], x.shape[1], -1)


def _is_2x2_halving(win: Window2d) -> bool:
    return (win.kh, win.kw, win.sh, win.sw, win.ph, win.pw) == (2, 2, 2, 2, 0, 0)
