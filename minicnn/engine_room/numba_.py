"""The Numba backend: the same NumPy arrays, with the hot kernels compiled.

Read this after the textbook path (backend/numpy_.py and functional/).
:class:`NumbaBackend` inherits every kernel of :class:`~minicnn.backend.numpy_.NumpyBackend`
and replaces the ones a training step spends its time in with loops that Numba compiles
to machine code: the sliding windows (col2im, tap_sum, pooling forward and backward),
batch norm's per-channel sums and elementwise passes, ReLU, sigmoid, SGD's update and
Winograd's transforms. Each loop is the NumPy kernel's docstring written out one element
at a time. (The matrix products stay NumPy's: BLAS.) Each compiled method says, in its
``@_compiled(...)`` line, when NumPy's kernel runs instead. conv2d's algorithm per layer
comes from engine_room/conv.py (:meth:`NumbaBackend.conv2d_plan`).

Four rules shape every kernel:

- A loop runs on one thread and releases the GIL (``nogil=True``). The backend's
  :class:`~minicnn.engine_room.team.ThreadTeam` runs several at once, each on its own part of
  what the operation *writes*, a slice of the arrays: a range of (n, c) planes, of
  images, of channels or of elements, or a chunk of a convolution's batch. No two parts
  ever write the same element, so there are no races, no locks, and the same result on
  every run. (Overlapping pooling windows never cross planes, so their shared pixels
  always belong to one part.) Numba's own thread pool is never started.
- Each element's terms are added in the order NumPy's kernels add them (ascending
  kernel offset i*kw + j), in the array's dtype, so the two backends agree to the last
  bit. Two exceptions agree to round-off instead: batch norm's sums, accumulated in
  float64 (inputs with few values per channel keep NumPy's kernels), and the direct
  loops' weight gradient (``_grad_weight_direct``), whose dot products LLVM may add in
  vector lanes (``fastmath={"reassoc"}``), as BLAS's sdot does.
- Outputs are allocated in Python (``self.empty``, or ``self.zeros`` where a loop only
  adds into them), from a pool that hands the same memory to the next step
  (engine_room/allocator.py); the loops skip the padding, whose contribution is zero (or -inf
  for max pooling).
- Where NumPy is faster the backend keeps NumPy's kernel: the strided copies of im2col
  (as one copy), of window_sum on a single thread, and anything not float32 or float64
  (the ``@_compiled`` decorator below: one mechanism for every such fallback).

With ``NUMBA_DISABLE_JIT=1`` the kernels run as plain, slow Python, to step through in a
debugger. ``cache=True`` stores the machine code in ``__pycache__``, so only the first
process on a machine pays for compiling (see :meth:`NumbaBackend.warm_up` and
``benchmarks/bench_compile.py``).
"""

from __future__ import annotations

import functools
import time

import numba
import numpy
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from ..backend.numpy_ import NumpyBackend, _is_pointwise
from ..backend.window import Window2d
from . import _winograd_kernels, conv, tuning, winograd
from . import team as _team
from .adopt import Adoptions
from .allocator import BufferPool

_COMPILED_DTYPES = (numpy.float32, numpy.float64)

#: How every loop here is compiled: machine code cached on disk, the GIL released so
#: that the team's threads run loops at once (engine_room/team.py), and NumPy's error
#: model: a float division by zero gives inf or nan as NumPy's does, instead of Python's
#: ZeroDivisionError, whose check on every division kept LLVM from vectorising any loop
#: that divides (the sigmoid's last pass ran 5x slower).
_loop = numba.njit(cache=True, nogil=True, error_model="numpy")


# ---- index helper --------------------------------------------------------------------
@_loop
def _inside(start, step, size, count):
    """The range [lo, hi) of o in 0 .. count-1 for which ``start + o*step`` lies in 0 .. size-1.

    With start = j - pw, step = sw, size = W, count = OW: the output columns ow whose
    kernel column j reads a real pixel, not padding.
    """
    lo = 0 if start >= 0 else (step - 1 - start) // step
    hi = min(count, (size - 1 - start) // step + 1)
    return lo, max(lo, hi)


# ---- convolution ---------------------------------------------------------------------
@_loop
def _col2im(cols, dx, sh, sw, ph, pw):
    """for n, c, i, j, oh, ow:  dx[n, c, oh*sh + i - ph, ow*sw + j - pw] += cols[c, i, j, n, oh, ow]

    im2col's loops with the arrow reversed, skipping the padding; each plane of ``dx``
    starts from zero.
    """
    N, C, H, W = dx.shape
    kh, kw, OH, OW = cols.shape[1], cols.shape[2], cols.shape[4], cols.shape[5]
    for nc in range(N * C):
        n, c = nc // C, nc % C
        dx[n, c] = 0
        for i in range(kh):
            oh_lo, oh_hi = _inside(i - ph, sh, H, OH)
            for j in range(kw):
                ow_lo, ow_hi = _inside(j - pw, sw, W, OW)
                w_lo = ow_lo * sw + j - pw
                w_hi = w_lo + (ow_hi - ow_lo) * sw
                for oh in range(oh_lo, oh_hi):
                    pixels = dx[n, c, oh * sh + i - ph, w_lo:w_hi:sw]  # a view: += writes dx
                    pixels += cols[c, i, j, n, oh, ow_lo:ow_hi]


@_loop
def _im2col_stride_1(x_pad, cols):
    """for c, i, j, n, oh:  cols[c, i, j, n, oh] = x_pad[n, c, oh + i, j : j + OW]

    im2col of a padded input at stride 1, each row of the columns one contiguous copy,
    which LLVM vectorises: 0.46-0.66x the time of NumPy's one strided copy (the general
    case's) on ResNet-18's and GoogLeNet's 3x3 and 5x5 layers, whose rows of 3 to 24
    values leave NumPy's copy loop mostly overhead.
    """
    N, C = x_pad.shape[0], x_pad.shape[1]
    kh, kw, OH, OW = cols.shape[1], cols.shape[2], cols.shape[4], cols.shape[5]
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                for n in range(N):
                    for oh in range(OH):
                        row, source = cols[c, i, j, n, oh], x_pad[n, c, oh + i]
                        for ow in range(OW):
                            row[ow] = source[ow + j]


@_loop
def _col2im_stride_1(cols, dx, ph, pw):
    """:func:`_col2im` for stride 1, where each row's adds run between two contiguous
    slices: written as a loop over them, LLVM vectorises it (1.4x faster on LeNet's
    second layer than the strided view's ``+=``, which stays the general kernel's)."""
    N, C, H, W = dx.shape
    kh, kw, OH, OW = cols.shape[1], cols.shape[2], cols.shape[4], cols.shape[5]
    for nc in range(N * C):
        n, c = nc // C, nc % C
        plane = dx[n, c]
        plane[:] = 0
        for i in range(kh):
            oh_lo, oh_hi = _inside(i - ph, 1, H, OH)
            for j in range(kw):
                ow_lo, ow_hi = _inside(j - pw, 1, W, OW)
                w_lo, count = ow_lo + j - pw, ow_hi - ow_lo
                for oh in range(oh_lo, oh_hi):
                    source = cols[c, i, j, n, oh, ow_lo:ow_hi]
                    target = plane[oh + i - ph, w_lo : w_lo + count]
                    for q in range(count):
                        target[q] += source[q]


@_loop
def _widen(gy, wide):
    """for n, o, oh:  wide[o, n, oh, :OW] = gy[n, o, oh];  wide[o, n, oh, OW:] = 0

    dy laid out as the wide rows' product is: (OC, N, OH, Wp), zeros in the extra columns."""
    N, OC, OH, OW = gy.shape
    Wp = wide.shape[3]
    for o in range(OC):
        for n in range(N):
            for oh in range(OH):
                source, target = gy[n, o, oh], wide[o, n, oh]
                for ow in range(OW):
                    target[ow] = source[ow]
                for ow in range(OW, Wp):
                    target[ow] = 0


@_loop
def _narrow(wide, bias, y):
    """for n, o, oh:  y[n, o, oh] = wide[o, n, oh, :OW] + bias[o]

    The wide rows' product (OC, N, OH, Wp) as the layer's output (N, OC, OH, OW), the
    extra columns dropped."""
    N, OC, OH, OW = y.shape
    for n in range(N):
        for o in range(OC):
            for oh in range(OH):
                source, target, b = wide[o, n, oh], y[n, o, oh], bias[o]
                for ow in range(OW):
                    target[ow] = source[ow] + b


@_loop
def _col2im_wide(cols, dx_pad, OH, OW):
    """for n, c, i, j, p < (OH-1)*Wp + OW:  dx_pad[n, c].flat[i*Wp + j + p] += cols[c, i, j, n, p]

    The columns of im2col on wide rows (engine_room/conv.py, ``_correlate_wide``) added
    back where they were read: each one contiguous run of a flattened padded plane, which
    starts from zero. Each pixel adds its taps in ascending (i, j), as :func:`_col2im`.
    """
    N, C, Hp, Wp = dx_pad.shape
    kh, kw = cols.shape[1], cols.shape[2]
    length = (OH - 1) * Wp + OW
    for nc in range(N * C):
        n, c = nc // C, nc % C
        plane = dx_pad[n, c].reshape(Hp * Wp)
        plane[:] = 0
        for i in range(kh):
            for j in range(kw):
                source = cols[c, i, j, n]
                target = plane[i * Wp + j : i * Wp + j + length]
                for q in range(length):
                    target[q] += source[q]


@_loop
def _tap_sum(z, y, sh, sw, ph, pw):
    """for n, o, i, j, oh, ow:  y[n, o, oh, ow] += z[i, j, o, n, oh*sh + i - ph, ow*sw + j - pw]

    skipping taps that fall on padding; each plane of ``y`` starts from zero and is
    written by one iteration, adding the taps in NumPy's order.
    """
    kh, kw, OC, N, H, W = z.shape
    OH, OW = y.shape[2], y.shape[3]
    for no in range(N * OC):
        n, o = no // OC, no % OC
        y[n, o] = 0
        for i in range(kh):
            oh_lo, oh_hi = _inside(i - ph, sh, H, OH)
            for j in range(kw):
                ow_lo, ow_hi = _inside(j - pw, sw, W, OW)
                w_lo = ow_lo * sw + j - pw
                w_hi = w_lo + (ow_hi - ow_lo) * sw
                for oh in range(oh_lo, oh_hi):
                    pixels = y[n, o, oh, ow_lo:ow_hi]  # a view: += writes y
                    pixels += z[i, j, o, n, oh * sh + i - ph, w_lo:w_hi:sw]


@_loop
def _tap_sum_stride_1(z, y, ph, pw):
    """:func:`_tap_sum` for stride 1, its rows' adds as a loop over contiguous slices,
    which LLVM vectorises (as :func:`_col2im_stride_1`)."""
    kh, kw, OC, N, H, W = z.shape
    OH, OW = y.shape[2], y.shape[3]
    for no in range(N * OC):
        n, o = no // OC, no % OC
        plane = y[n, o]
        plane[:] = 0
        for i in range(kh):
            oh_lo, oh_hi = _inside(i - ph, 1, H, OH)
            for j in range(kw):
                ow_lo, ow_hi = _inside(j - pw, 1, W, OW)
                w_lo, count = ow_lo + j - pw, ow_hi - ow_lo
                for oh in range(oh_lo, oh_hi):
                    target = plane[oh, ow_lo:ow_hi]
                    source = z[i, j, o, n, oh + i - ph, w_lo : w_lo + count]
                    for q in range(count):
                        target[q] += source[q]


# ---- direct convolution: stride 1, narrow inputs ------------------------------------
@_loop
def _tap_offsets(KH, KW, Wp):
    """offsets[i*KW + j] = i*Wp + j: where tap (i, j) starts reading a flattened plane Wp wide."""
    offsets = numpy.empty(KH * KW, numpy.int64)
    for i in range(KH):
        for j in range(KW):
            offsets[i * KW + j] = i * Wp + j
    return offsets


@_loop
def _correlate_direct(x_pad, weight, bias, y):
    """for n, o, c, i, j:  y[n, o] += weight[o, c, i, j] * x_pad[n, c, i : i + OH, j : j + OW]

    (stride 1, from ``bias[o]``). The convolution without im2col: an input with one
    channel has only kh*kw values per column, too few for a matrix product to pay for
    writing kh*kw copies of the image and reading them back. Each output plane is
    computed on rows as wide as the padded input's: flattened, output (oh, ow) sits at
    p = oh*Wp + ow and tap t = (i, j) reads x_pad at p + at[t], at[t] = i*Wp + j, so a
    tap is one long multiply-add over p, which LLVM vectorises. The Wp - OW extra values
    of each row (where the window runs past the right edge) are computed, then dropped.

    Four taps a pass over p, the rest one by one: each pass loads and stores ``wide``
    once for four multiply-adds instead of one (one thread: LeNet's first layer on 128
    images 1.66 -> 1.25 ms, VGG's on 16 images 78 -> 64 ms).
    """
    N, C, Hp, Wp = x_pad.shape
    OC, _, KH, KW = weight.shape
    OH, OW = y.shape[2], y.shape[3]
    length, taps = (OH - 1) * Wp + OW, KH * KW
    at = _tap_offsets(KH, KW, Wp)
    wide = numpy.empty(length, dtype=y.dtype)
    for n in range(N):
        for o in range(OC):
            wide[:] = bias[o]
            for c in range(C):
                image, w = x_pad[n, c].reshape(Hp * Wp), weight[o, c].reshape(taps)
                fours = taps - taps % 4
                for t in range(0, fours, 4):
                    a, b = image[at[t] : at[t] + length], image[at[t + 1] : at[t + 1] + length]
                    c2, d = image[at[t + 2] : at[t + 2] + length], image[at[t + 3] : at[t + 3] + length]
                    wa, wb, wc, wd = w[t], w[t + 1], w[t + 2], w[t + 3]
                    for p in range(length):
                        wide[p] += wa * a[p] + wb * b[p] + wc * c2[p] + wd * d[p]
                for t in range(fours, taps):
                    a, wa = image[at[t] : at[t] + length], w[t]
                    for p in range(length):
                        wide[p] += wa * a[p]
            for oh in range(OH):
                y[n, o, oh] = wide[oh * Wp : oh * Wp + OW]


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})
def _grad_weight_direct(x_pad, gy, grad_w, zero):
    """for n, o, c, i, j:  grad_w[o, c, i, j] += sum of gy[n, o] * x_pad[n, c, i : i + OH, j : j + OW]

    (stride 1): :func:`_correlate_direct`'s weight gradient on the same wide rows. Each
    dy plane is laid out Wp wide (zeros in the extra columns), and each weight's sum over
    an image is one dot product over p, from ``zero`` in the arrays' dtype, as BLAS's
    sdot sums. ``reassoc`` lets LLVM add its terms in vector lanes, in another order than
    one by one: partial sums of a few dozen terms each. (Summed in float64, the
    conversions made it 1.7x slower: LeNet's first dW, 128 images, 2.5 -> 1.45 ms.)
    Four taps' sums a pass, as in forward: dy is loaded once for four.
    """
    N, C, Hp, Wp = x_pad.shape
    OC, _, KH, KW = grad_w.shape
    OH, OW = gy.shape[2], gy.shape[3]
    length, taps = (OH - 1) * Wp + OW, KH * KW
    at = _tap_offsets(KH, KW, Wp)
    gy_wide = numpy.zeros(OH * Wp, dtype=gy.dtype)
    for n in range(N):
        for o in range(OC):
            for oh in range(OH):
                gy_wide[oh * Wp : oh * Wp + OW] = gy[n, o, oh]
            for c in range(C):
                image, g = x_pad[n, c].reshape(Hp * Wp), grad_w[o, c].reshape(taps)
                fours = taps - taps % 4
                for t in range(0, fours, 4):
                    a, b = image[at[t] : at[t] + length], image[at[t + 1] : at[t + 1] + length]
                    c2, d = image[at[t + 2] : at[t + 2] + length], image[at[t + 3] : at[t + 3] + length]
                    sa = sb = sc = sd = zero
                    for p in range(length):
                        v = gy_wide[p]
                        sa += v * a[p]
                        sb += v * b[p]
                        sc += v * c2[p]
                        sd += v * d[p]
                    g[t] += sa
                    g[t + 1] += sb
                    g[t + 2] += sc
                    g[t + 3] += sd
                for t in range(fours, taps):
                    a, s = image[at[t] : at[t] + length], zero
                    for p in range(length):
                        s += gy_wide[p] * a[p]
                    g[t] += s


# ---- max pooling: planes (P, H, W), P = the (n, c) planes a thread was given ---------
@_loop
def _beats(v, best):
    """Whether ``v`` replaces the running maximum ``best``: larger, or the first NaN."""
    return (v > best) | ((v != v) & (best == best))


@_loop
def _max_pool2d(x, y, argmax, kh, kw, sh, sw, ph, pw):
    """for p, oh, ow:
        y[p, oh, ow] = max over i, j of x[p, oh*sh + i - ph, ow*sw + j - pw]
        argmax[p, oh, ow] = i*kw + j of the first maximum (a NaN beats any number)

    in two passes, since a window's maximum is the maximum of its rows' maxima: first,
    for every input row h, the maximum over each window's columns (``row_max[h, ow]``,
    at column ``row_arg[h, ow]``); then, per output row, the maximum of kh of those.
    That is kh + kw comparisons instead of kh * kw. Padding is skipped, the same as
    reading -inf there.

    Each pass is a running maximum along a whole row (:func:`_running_max`), which the
    compiler vectorises: this kernel is for strided pools on maps wide enough for that
    (tuning.MAX_POOL_ROWS_MIN_OUTPUTS), :func:`_max_pool2d_planes` for the rest. For
    that, pass 1 reads contiguous pixels: the pixels a column j reads, ``ow*sw + j - pw``
    for every ow, are every sw-th pixel of the row, so the row is first copied into sw
    phases (pixels r, r + sw, r + 2sw, ... in phase r), where they lie side by side.
    """
    P, H, W = x.shape
    OH, OW = y.shape[1], y.shape[2]
    row_max = numpy.empty((H, OW), dtype=x.dtype)
    row_arg = numpy.empty((H, OW), dtype=argmax.dtype)
    phases = numpy.empty((sw, (W + sw - 1) // sw), dtype=x.dtype)
    no_offsets = numpy.zeros(OW, dtype=argmax.dtype)
    for p in range(P):
        for h in range(H):  # pass 1: over the columns j of each window, on input row h
            for r in range(sw):
                phase = x[p, h, r::sw]
                phases[r, : len(phase)] = phase
            row_max[h, :], row_arg[h, :] = -numpy.inf, 0
            for j in range(kw):
                first, last = _inside(j - pw, sw, W, OW)
                r, q = (j - pw) % sw, (j - pw) // sw  # x[p, h, ow*sw + j - pw] = phases[r, ow + q]
                _running_max(row_max[h, first:last], row_arg[h, first:last],
                             phases[r, first + q : last + q], j, no_offsets)  # fmt: skip
        for oh in range(OH):  # pass 2: over the rows i of each window
            top = oh * sh - ph
            y[p, oh, :], argmax[p, oh, :] = -numpy.inf, 0
            for i in range(max(0, -top), min(kh, H - top)):  # rows inside the image
                _running_max(y[p, oh], argmax[p, oh], row_max[top + i], i * kw, row_arg[top + i])


@_loop
def _max_pool2d_planes(x, y, argmax, kh, kw, sh, sw, ph, pw, block):
    """The same, whole planes at a time: each pass one running maximum along a block of
    planes, for maps too small for :func:`_max_pool2d`'s rows to vectorise.

    The block's planes are copied into a buffer padded with -inf, (Hp, Wp) = (H + 2ph,
    W + 2pw) a plane. There pixel (i, j) of the window at (r, c), stride 1, lies at a
    fixed offset from the window's corner: flat index (r*Wp + c) + (i*Wp + j). So with
    k running over every position of the block:
        pass 1: row_max[k] = max over j of padded[k + j]            (at j)
        pass 2: out[k]     = max over i of row_max[k + i*Wp]        (at i*kw + row_arg)
    and y[p, oh, ow] = out at (oh*sh, ow*sw) of plane p. Positions that are no output
    (the padding's, or between the strides) compute values nobody reads. The padding's
    -inf never beats the running maximum, the same as skipping it.
    """
    P, H, W = x.shape
    OH, OW = y.shape[1], y.shape[2]
    Hp, Wp = H + 2 * ph, W + 2 * pw
    B = max(1, block // (Hp * Wp))  # planes a block
    size, beyond = B * Hp * Wp, kh * Wp + kw  # pass 1 and 2 read up to kh*Wp + kw past k
    padded = numpy.full(size + beyond, -numpy.inf, dtype=x.dtype)  # borders stay -inf
    row_max = numpy.full(size + beyond, -numpy.inf, dtype=x.dtype)
    row_arg = numpy.zeros(size + beyond, dtype=argmax.dtype)
    out, out_arg = numpy.empty(size, dtype=x.dtype), numpy.empty(size, dtype=argmax.dtype)
    no_offsets = numpy.zeros(size, dtype=argmax.dtype)
    padded3 = padded[:size].reshape(B, Hp, Wp)
    out3, out_arg3 = out.reshape(B, Hp, Wp), out_arg.reshape(B, Hp, Wp)
    for first in range(0, P, B):
        b = min(B, P - first)
        n = b * Hp * Wp
        padded3[:b, ph : ph + H, pw : pw + W] = x[first : first + b]
        row_max[:n], row_arg[:n] = -numpy.inf, 0
        for j in range(kw):
            _running_max(row_max[:n], row_arg[:n], padded[j : j + n], j, no_offsets[:n])
        out[:n], out_arg[:n] = -numpy.inf, 0
        for i in range(kh):
            shifted = slice(i * Wp, i * Wp + n)
            _running_max(out[:n], out_arg[:n], row_max[shifted], i * kw, row_arg[shifted])
        y[first : first + b] = out3[:b, : OH * sh : sh, : OW * sw : sw]
        argmax[first : first + b] = out_arg3[:b, : OH * sh : sh, : OW * sw : sw]


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _running_max(best, best_at, values, at, offsets):
    """for o:  if values[o] beats best[o]:  best[o], best_at[o] = values[o], at + offsets[o]

    "Beats" is larger, or the first NaN. Written without a branch, as a compare and two
    blends: on random data a branch is mispredicted half the time. (An earlier kernel
    wrote ``if take: best_at[o] = ...``, and the whole max pool ran 3.2x slower: ResNet-18's
    3x3 stride-2 pool at batch 32, 64 ms against 20 on one core of an AMD EPYC.)
    """
    for o in range(len(best)):
        v, b, a = values[o], best[o], best_at[o]
        take = _beats(v, b)
        best[o] = v if take else b
        best_at[o] = a + take * (at + offsets[o] - a)


@_loop
def _max_pool2d_backward(dy, argmax, dx, kh, kw, sh, sw, ph, pw):
    """for p, oh, ow:
        i, j = divmod(argmax[p, oh, ow], kw)
        dx[p, oh*sh + i - ph, ow*sw + j - pw] += dy[p, oh, ow]

    Each plane of ``dx`` starts from zero and sums dy over the windows that chose each
    pixel. (i - ph, j - pw) come from a table, not a division per element.
    """
    P, H, W = dx.shape
    OH, OW = dy.shape[1], dy.shape[2]
    rows, cols = numpy.empty(kh * kw, numpy.int64), numpy.empty(kh * kw, numpy.int64)
    for k in range(kh * kw):
        rows[k], cols[k] = k // kw - ph, k % kw - pw
    for p in range(P):
        dx[p] = 0
        # Windows walked backwards reach each pixel in ascending offset i*kw + j: NumPy's order.
        for oh in range(OH - 1, -1, -1):
            for ow in range(OW - 1, -1, -1):
                k = argmax[p, oh, ow]
                h, w = oh * sh + rows[k], ow * sw + cols[k]
                if 0 <= h < H and 0 <= w < W:  # a window of -infs "chooses" its padding
                    dx[p, h, w] += dy[p, oh, ow]


# ---- average pooling: window sums, planes (P, H, W) ----------------------------------
@_loop
def _window_sum(x, y, kh, kw, sh, sw, ph, pw):
    """for p, i, j, oh, ow:  y[p, oh, ow] += x[p, oh*sh + i - ph, ow*sw + j - pw]

    skipping pixels in the padding (they are zeros). ``y`` arrives zeroed.
    """
    P, H, W = x.shape
    OH, OW = y.shape[1], y.shape[2]
    for p in range(P):
        for i in range(kh):
            oh_lo, oh_hi = _inside(i - ph, sh, H, OH)
            for j in range(kw):
                ow_lo, ow_hi = _inside(j - pw, sw, W, OW)
                for oh in range(oh_lo, oh_hi):
                    h = oh * sh + i - ph
                    for ow in range(ow_lo, ow_hi):
                        y[p, oh, ow] += x[p, h, ow * sw + j - pw]


@_loop
def _window_sum_backward(dy, dx, kh, kw, sh, sw, ph, pw):
    """for p, i, j, oh, ow:  dx[p, oh*sh + i - ph, ow*sw + j - pw] += dy[p, oh, ow]

    col2im with every column equal to dy, skipping the padding. ``dx`` arrives zeroed.
    """
    P, H, W = dx.shape
    OH, OW = dy.shape[1], dy.shape[2]
    for p in range(P):
        for i in range(kh):
            oh_lo, oh_hi = _inside(i - ph, sh, H, OH)
            for j in range(kw):
                ow_lo, ow_hi = _inside(j - pw, sw, W, OW)
                w_lo = ow_lo * sw + j - pw
                w_hi = w_lo + (ow_hi - ow_lo) * sw
                for oh in range(oh_lo, oh_hi):
                    pixels = dx[p, oh * sh + i - ph, w_lo:w_hi:sw]  # a view: += writes dx
                    pixels += dy[p, oh, ow_lo:ow_hi]


# The 2x2 stride-2 window (LeNet's average pools, DenseNet's transitions) written out: with
# the window's size known, each output is one expression the compiler vectorises, 10x
# faster than the general loops above (benchmarks/README.md).
@_loop
def _window_sum_2x2(x, y):
    """for p, oh, ow:  y[p, oh, ow] = x[p, 2oh, 2ow] + x[p, 2oh, 2ow+1] + x[p, 2oh+1, 2ow] + x[p, 2oh+1, 2ow+1]

    added from zero in NumPy's order (so a window of -0.0 sums to 0.0, as there).
    """
    P, OH, OW = y.shape
    zero = y.dtype.type(0)
    for p in range(P):
        for oh in range(OH):
            top, bottom, out = x[p, 2 * oh], x[p, 2 * oh + 1], y[p, oh]
            for ow in range(OW):
                out[ow] = (((zero + top[2 * ow]) + top[2 * ow + 1]) + bottom[2 * ow]) + bottom[2 * ow + 1]


@_loop
def _window_sum_2x2_backward(dy, dx):
    """for p, oh, ow, i, j:  dx[p, 2oh + i, 2ow + j] = dy[p, oh, ow]  (each pixel in one
    window; a last odd row or column, in none, arrives zeroed)."""
    P, OH, OW = dy.shape
    for p in range(P):
        for oh in range(OH):
            g, top, bottom = dy[p, oh], dx[p, 2 * oh], dx[p, 2 * oh + 1]
            for ow in range(OW):
                top[2 * ow] = top[2 * ow + 1] = bottom[2 * ow] = bottom[2 * ow + 1] = g[ow]


def _is_2x2_halving(win: Window2d) -> bool:
    return (win.kh, win.kw, win.sh, win.sw, win.ph, win.pw) == (2, 2, 2, 2, 0, 0)


# ---- elementwise: one pass over flat arrays -------------------------------------------
# Every loop runs from 0 over arrays the caller sliced: an index that can be seen to be
# non-negative lets Numba drop NumPy's wraparound for negative indices, and LLVM then
# vectorises the loop (a ReLU over a range start..stop of the whole array ran 11x slower).
@_loop
def _axpy(a, x, y):
    """for k:  y[k] += a * x[k]      (a in y's dtype: float32 arithmetic, as NumPy's)"""
    for k in range(y.size):
        y[k] += a * x[k]


@_loop
def _relu(x, y):
    """for k:  y[k] = 0 if x[k] <= 0 else x[k]      (so a NaN stays NaN)"""
    for k in range(x.size):
        y[k] = 0 if x[k] <= 0 else x[k]


@_loop
def _relu_backward(gy, y, dx):
    """for k:  dx[k] = gy[k] * (y[k] > 0)"""
    for k in range(gy.size):
        dx[k] = gy[k] * (y[k] > 0)


@_loop
def _minus_abs(x, e):
    """for k:  e[k] = -|x[k]|      (the argument of the sigmoid's exp, in one pass, not two)"""
    for k in range(x.size):
        e[k] = -abs(x[k])


@_loop
def _sigmoid(x, e, one, y):
    """for k:  y[k] = (1 if x[k] >= 0 else e[k]) / (1 + e[k])      with e = exp(-|x|)

    ``e`` comes from NumPy's vectorised exp (libm's, one value at a time, is slower and
    rounds differently), and ``one`` in x's dtype keeps the arithmetic in float32."""
    for k in range(x.size):
        y[k] = (one if x[k] >= 0 else e[k]) / (one + e[k])


@_loop
def _sigmoid_backward(gy, y, one, dx):
    """for k:  dx[k] = gy[k] * y[k] * (1 - y[k])"""
    for k in range(gy.size):
        dx[k] = gy[k] * y[k] * (one - y[k])


# ---- batch normalization: per-channel sums over channels, elementwise over images -----
# Each kernel sees x as (N, C, H*W) (:func:`_as_3d`): a channel's plane is one run of
# H*W values, a loop long enough to vectorise (rows of 24 were not). The sums take the
# whole array and their channels' bounds, not a view x[:, first:last]: Numba compiles a
# view that is not contiguous for any strides, and then vectorises nothing. Sums are accumulated
# in float64 and may be reordered (``reassoc``) so that LLVM can add them in vector lanes;
# float64 keeps them more accurate than NumPy's float32 pairwise sums, in any order.
_sum_loop = numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})


@_sum_loop
def _batch_norm_stats(x, first, last, mean, var):
    """for c in first .. last-1 (a thread's channels; x whole, its layout contiguous):
        mean[c] = sum over n, k of x[n, c, k] / count        (k: the plane's H*W pixels)
        var[c] = sum over n, k of (x[n, c, k] - mean[c])**2 / count

    two passes, never E[x^2] - E[x]^2. The variance is taken around ``mean[c]`` as
    stored, rounded to x's dtype: the mean that normalising will subtract, so that x_hat
    has exactly the variance used (with the unrounded mean, float32 round-off is
    amplified where a channel barely varies).
    """
    N, _, K = x.shape
    count = N * K
    for c in range(first, last):
        total = 0.0
        for n in range(N):
            plane = x[n, c]
            for k in range(K):
                total += plane[k]
        mean[c] = total / count
        m = mean[c]
        total = 0.0
        for n in range(N):
            plane = x[n, c]
            for k in range(K):
                d = plane[k] - m  # in x's dtype, as NumPy's centered values
                total += d * d
        var[c] = total / count


@_loop
def _batch_norm_apply(x, mean, inv_std, weight, bias, x_hat, y):
    """for n, c, k:
        x_hat[n, c, k] = (x[n, c, k] - mean[c]) * inv_std[c]
        y[n, c, k] = x_hat[n, c, k] * weight[c] + bias[c]

    One pass, in x's dtype, NumPy's operations in NumPy's order: the same bits.
    """
    N, C, K = x.shape
    for n in range(N):
        for c in range(C):
            m, s, w, b = mean[c], inv_std[c], weight[c], bias[c]
            source, normalised, out = x[n, c], x_hat[n, c], y[n, c]
            for k in range(K):
                v = (source[k] - m) * s
                normalised[k] = v
                out[k] = v * w + b


@_sum_loop
def _batch_norm_sums(gy, x_hat, first, last, sum_gy, sum_gy_x_hat):
    """for c in first .. last-1:
        sum_gy[c] = sum over n, k of gy[n, c, k]
        sum_gy_x_hat[c] = sum over n, k of gy[n, c, k] * x_hat[n, c, k]

    Both sums in one pass over the channel.
    """
    N, _, K = gy.shape
    for c in range(first, last):
        a = b = 0.0
        for n in range(N):
            g_plane, x_plane = gy[n, c], x_hat[n, c]
            for k in range(K):
                g = g_plane[k]
                a += g
                b += g * x_plane[k]
        sum_gy[c], sum_gy_x_hat[c] = a, b


@_loop
def _batch_norm_grad(gy, x_hat, scale, mean_gy, mean_gy_x_hat, dx):
    """for n, c, k:
        dx[n, c, k] = scale[c] * (gy[n, c, k] - mean_gy[c] - x_hat[n, c, k] * mean_gy_x_hat[c])

    One pass, in gy's dtype.
    """
    N, C, K = gy.shape
    for n in range(N):
        for c in range(C):
            s, m, mx = scale[c], mean_gy[c], mean_gy_x_hat[c]
            g_plane, x_plane, out = gy[n, c], x_hat[n, c], dx[n, c]
            for k in range(K):
                out[k] = (g_plane[k] - m - x_plane[k] * mx) * s


def _as_3d(x):
    """(N, C, H, W) -> (N, C, H*W), (N, C) -> (N, C, 1): views of a contiguous array, the
    one layout the batch-norm kernels see."""
    return x.reshape(x.shape[0], x.shape[1], -1)


# ---- when the compiled loops run -------------------------------------------------------
def _compiled_for(array) -> bool:
    """The kernels are compiled for float32 and float64; other dtypes use NumPy's."""
    return array.dtype in _COMPILED_DTYPES


def _contiguous(*arrays) -> bool:
    return all(array.flags.c_contiguous for array in arrays)


def _compiled(when=None, otherwise=None):
    """Decorate a backend method: it runs its compiled loops when ``when(self, *args)``
    holds (by default: the first array is float32 or float64), and otherwise
    ``otherwise`` (by default the NumPy backend's method of the same name)."""
    when = when or (lambda self, array, *rest, **kwargs: _compiled_for(array))

    def decorate(method):
        fallback = otherwise or getattr(NumpyBackend, method.__name__)

        @functools.wraps(method)
        def dispatch(self, *args, **kwargs):
            if when(self, *args, **kwargs):
                return method(self, *args, **kwargs)
            return fallback(self, *args, **kwargs)

        return dispatch

    return decorate


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


def _correlate_by_taps_numpy(x_pad, weight, bias, y):
    """The direct loops' sums in NumPy, one tap at a time (dtypes without compiled loops)."""
    OH, OW = y.shape[2], y.shape[3]
    y[...] = 0 if bias is None else bias.reshape(-1, 1, 1)
    for i in range(weight.shape[2]):
        for j in range(weight.shape[3]):
            y += numpy.einsum("nchw,oc->nohw", x_pad[:, :, i : i + OH, j : j + OW], weight[:, :, i, j])
    return y


def _grad_weight_by_taps_numpy(x_pad, gy, weight_shape):
    """dW of :func:`_correlate_by_taps_numpy`, one tap at a time."""
    OH, OW = gy.shape[2], gy.shape[3]
    grad_w = numpy.zeros(weight_shape, dtype=gy.dtype)
    for i in range(weight_shape[2]):
        for j in range(weight_shape[3]):
            grad_w[:, :, i, j] = numpy.einsum("nohw,nchw->oc", gy, x_pad[:, :, i : i + OH, j : j + OW])
    return grad_w


def _widen_numpy(backend, gy, win: Window2d):
    wide = numpy.zeros((gy.shape[1], gy.shape[0], win.oh, win.padded_shape[3]), gy.dtype)
    wide[..., : win.ow] = gy.transpose(1, 0, 2, 3)
    return wide.reshape(gy.shape[1], -1)


def _narrow_numpy(wide, bias, out):
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

    def conv_shares(self, count: int, multiply_adds: int) -> list[tuple[int, int]]:
        """A convolution's batch of ``count`` images, whose products take
        ``multiply_adds``, cut into one (start, stop) per thread of the team."""
        return self.team.parts(count, multiply_adds, tuning.PARALLEL_MIN_MULTIPLY_ADDS)

    def matmul(self, a, b):
        """``a @ b`` (matrices, or stacks of them), its columns shared out among the team
        (each product on one BLAS thread)."""
        out = self.empty(a.shape[:-1] + b.shape[-1:], numpy.result_type(a, b))

        def columns(part):
            numpy.matmul(a, b[..., part[0] : part[1]], out=out[..., part[0] : part[1]])

        multiply_adds = out.size * a.shape[-1]
        parts = self.team.parts(b.shape[-1], multiply_adds, tuning.PARALLEL_MIN_MULTIPLY_ADDS)
        self.team.map(columns, parts)
        return out

    # ---- convolution: called on one chunk of a batch, on one of the team's threads ----
    def im2col(self, x, win: Window2d, out=None, value=0.0):
        """NumPy's im2col in one strided copy instead of one per kernel offset; at stride
        1, a compiled loop (``_im2col_stride_1``).

        ``sliding_window_view`` sees every kh x kw window of the padded input at once, as
        a view (N, C, OH, OW, kh, kw); one copy lays it out as the columns (C, kh, kw, N,
        OH, OW). It is as fast as the loop over offsets (and faster with many offsets),
        and one call lets go of the GIL once, not kh*kw times, so that the team's
        threads unfold their shares of a batch at once. With a stride, a compiled loop
        ran 1.1-1.2x slower than the copy; at stride 1 it runs 0.46-0.66x its time.
        """
        if _is_pointwise(win) and win.n == 1:
            return super().im2col(x, win, out, value)
        shape = (win.c, win.kh, win.kw, win.n, win.oh, win.ow)
        cols = self.empty(shape, dtype=x.dtype) if out is None else out.reshape(shape)
        if (win.sh, win.sw) == (1, 1) and _compiled_for(x):
            _im2col_stride_1(self._pad(x, win, value), cols)
            return cols.reshape(win.c * win.kh * win.kw, win.n * win.oh * win.ow)
        windows = sliding_window_view(self._pad(x, win, value), (win.kh, win.kw), axis=(2, 3))
        windows = windows[:, :, : win.sh * win.oh : win.sh, : win.sw * win.ow : win.sw]
        cols[...] = windows.transpose(1, 4, 5, 0, 2, 3)
        return cols.reshape(win.c * win.kh * win.kw, win.n * win.oh * win.ow)

    @_compiled()
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

    @_compiled(otherwise=lambda self, gy, win: _widen_numpy(self, gy, win))
    def widen(self, gy, win: Window2d):
        """dy (n, OC, OH, OW) on the wide rows, (OC, n*OH*Wp): zeros in the extra columns."""
        n, oc = gy.shape[:2]
        wide = self.empty((oc, n, win.oh, win.padded_shape[3]), gy.dtype)
        _widen(numpy.ascontiguousarray(gy), wide)
        return wide.reshape(oc, -1)

    @_compiled(otherwise=lambda self, wide, bias, out: _narrow_numpy(wide, bias, out))
    def narrow(self, wide, bias, out):
        """The wide rows' product (OC, n*OH*Wp) + bias as the output ``out`` (n, OC, OH, OW)."""
        n, oc, oh, _ = out.shape
        bias = numpy.zeros(oc, out.dtype) if bias is None else bias
        if out.flags.c_contiguous:
            _narrow(wide.reshape(oc, n, oh, -1), bias, out)
        else:
            out[...] = _narrow_numpy(wide, bias, self.empty(out.shape, out.dtype))
        return out

    @_compiled(otherwise=lambda self, cols, win, out=None: _col2im_wide_numpy(self, cols, win, out))
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

    @_compiled(otherwise=lambda self, z, win, out=None: conv.tap_sum(self, z, win, out))
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
    @_compiled(_generated_winograd, _reference_transform("transform_input"))
    def winograd_input(self, x, win: Window2d, alg: winograd.Algorithm):
        th, tw = alg.tiles(win)
        v = self.empty((alg.n**2, win.c, win.n * th * tw), dtype=x.dtype)
        kernel = _winograd_kernels.KERNELS[alg.m, alg.r][0]
        kernel(numpy.ascontiguousarray(x), v, alg.BT.astype(x.dtype), win.ph, win.pw, th, tw)
        return v

    @_compiled(_generated_winograd, _reference_transform("transform_output"))
    def winograd_output(self, m_tiles, win: Window2d, alg: winograd.Algorithm, out=None):
        shape = (win.n, m_tiles.shape[1], win.oh, win.ow)
        y = self.empty(shape, dtype=m_tiles.dtype) if out is None else out
        kernel = _winograd_kernels.KERNELS[alg.m, alg.r][1]
        kernel(numpy.ascontiguousarray(m_tiles), y, alg.AT.astype(y.dtype), *alg.tiles(win))
        return y

    @_compiled(_generated_winograd, _reference_transform("transform_output_grad"))
    def winograd_output_grad(self, gy, win: Window2d, alg: winograd.Algorithm):
        th, tw = alg.tiles(win)
        dm = self.empty((alg.n**2, gy.shape[1], win.n * th * tw), dtype=gy.dtype)
        kernel = _winograd_kernels.KERNELS[alg.m, alg.r][2]
        a_mat = numpy.ascontiguousarray(alg.AT.T, dtype=gy.dtype)
        kernel(numpy.ascontiguousarray(gy), dm, a_mat, th, tw)
        return dm

    @_compiled(_generated_winograd, _reference_transform("transform_input_grad"))
    def winograd_input_grad(self, dv, win: Window2d, alg: winograd.Algorithm):
        dx = self.empty(win.input_shape, dtype=dv.dtype)
        kernel = _winograd_kernels.KERNELS[alg.m, alg.r][3]
        b_mat = numpy.ascontiguousarray(alg.BT.T, dtype=dv.dtype)
        kernel(numpy.ascontiguousarray(dv), dx, b_mat, win.ph, win.pw, *alg.tiles(win))
        return dx

    # ---- whole layers: the team shares out planes, channels, images or elements -------
    def _share(self, count: int, work: int, run) -> None:
        """``run(part)`` for the team's parts of ``range(count)``, each part a slice."""
        self.team.map(lambda bounds: run(slice(*bounds)), self.team.parts(count, work))

    @_compiled()
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
        self._share(len(y3), y.size, pool)
        return y, argmax

    @_compiled()
    def max_pool2d_backward(self, dy, argmax, win: Window2d):
        dx = self.empty(win.input_shape, dtype=dy.dtype)
        dy3, arg3, dx3 = _planes(numpy.ascontiguousarray(dy)), _planes(argmax), _planes(dx)
        self._share(len(dx3), dx.size,
                    lambda p: _max_pool2d_backward(dy3[p], arg3[p], dx3[p], *_geometry(win)))  # fmt: skip
        return dx

    # A single input channel, stride 1: the direct loops above (engine_room/conv.py
    # chooses them), called on one share of a batch, its input already padded.
    conv_direct = True

    @_compiled(otherwise=lambda self, x_pad, weight, bias, y: _correlate_by_taps_numpy(
        x_pad, weight, bias, y))
    def correlate_direct(self, x_pad, weight, bias, y):
        """y = conv2d(x_pad, weight) + bias, stride 1, into ``y`` (one share of a batch)."""
        bias = numpy.zeros(weight.shape[0], y.dtype) if bias is None else bias
        _correlate_direct(numpy.ascontiguousarray(x_pad), weight, bias, y)
        return y

    @_compiled(otherwise=lambda self, x_pad, gy, weight_shape: _grad_weight_by_taps_numpy(
        x_pad, gy, weight_shape))
    def grad_weight_direct(self, x_pad, gy, weight_shape):
        """dW of :meth:`correlate_direct` over one share of a batch."""
        grad_w = numpy.zeros(weight_shape, dtype=gy.dtype)
        _grad_weight_direct(numpy.ascontiguousarray(x_pad), numpy.ascontiguousarray(gy), grad_w,
                            gy.dtype.type(0))
        return grad_w

    @_compiled(lambda self, x, win: _compiled_for(x) and (
        _is_2x2_halving(win) or self.team.size >= tuning.STRIDED_MIN_THREADS))
    def window_sum(self, x, win: Window2d):
        x3 = _planes(numpy.ascontiguousarray(x))
        if _is_2x2_halving(win):
            y3 = _planes(y := self.empty(win.output_shape, dtype=x.dtype))
            self._share(len(y3), y.size, lambda p: _window_sum_2x2(x3[p], y3[p]))
            return y
        y3 = _planes(y := self.zeros(win.output_shape, dtype=x.dtype))
        self._share(len(y3), y.size, lambda p: _window_sum(x3[p], y3[p], *_geometry(win)))
        return y

    @_compiled()
    def window_sum_backward(self, dy, win: Window2d):
        dy3 = _planes(numpy.ascontiguousarray(dy))
        halving = _is_2x2_halving(win)
        odd = win.h % 2 or win.w % 2  # a last row or column no window covers stays zero
        dx = self.zeros(win.input_shape, dy.dtype) if odd or not halving else self.empty(
            win.input_shape, dy.dtype)  # fmt: skip
        dx3 = _planes(dx)
        if halving:
            self._share(len(dx3), dx.size, lambda p: _window_sum_2x2_backward(dy3[p], dx3[p]))
        else:
            self._share(len(dx3), dx.size,
                        lambda p: _window_sum_backward(dy3[p], dx3[p], *_geometry(win)))  # fmt: skip
        return dx

    @_compiled(lambda self, a, x, y: _contiguous_floats(self, y, x) and x.dtype == y.dtype)
    def axpy(self, a, x, y) -> None:
        a, x1, y1 = y.dtype.type(a), x.reshape(-1), y.reshape(-1)
        self._share(y.size, y.size, lambda k: _axpy(a, x1[k], y1[k]))

    @_compiled(_contiguous_floats)
    def relu(self, x):
        y = self.empty(x.shape, x.dtype)
        x1, y1 = x.reshape(-1), y.reshape(-1)
        self._share(x.size, x.size, lambda k: _relu(x1[k], y1[k]))
        return y

    @_compiled(_contiguous_floats)
    def relu_backward(self, gy, y):
        dx = self.empty(gy.shape, gy.dtype)
        gy1, y1, dx1 = gy.reshape(-1), y.reshape(-1), dx.reshape(-1)
        self._share(gy.size, gy.size, lambda k: _relu_backward(gy1[k], y1[k], dx1[k]))
        return dx

    @_compiled(_contiguous_floats)
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

        self._share(x.size, x.size, part)
        return y

    @_compiled(_contiguous_floats)
    def sigmoid_backward(self, gy, y):
        dx, one = self.empty(gy.shape, gy.dtype), gy.dtype.type(1)
        gy1, y1, dx1 = gy.reshape(-1), y.reshape(-1), dx.reshape(-1)
        self._share(gy.size, gy.size, lambda k: _sigmoid_backward(gy1[k], y1[k], one, dx1[k]))
        return dx

    @_compiled(_batch_norm_sized)
    def batch_norm_stats(self, x):
        mean = self.empty(x.shape[1], dtype=x.dtype)
        var = self.empty(x.shape[1], dtype=x.dtype)
        x3 = _as_3d(x)
        self._share(x.shape[1], x.size, lambda c: _batch_norm_stats(x3, c.start, c.stop, mean, var))
        return mean, var

    @_compiled(_batch_norm_on_maps)
    def batch_norm_apply(self, x, mean, inv_std, weight=None, bias=None):
        x_hat = self.empty(x.shape, dtype=x.dtype)
        if weight is None:  # y = x_hat: weight 1, bias 0, written to x_hat twice
            weight, bias, y = numpy.ones_like(mean), numpy.zeros_like(mean), x_hat
        else:
            y = self.empty(x.shape, dtype=x.dtype)
        x3, x_hat3, y3 = _as_3d(x), _as_3d(x_hat), _as_3d(y)
        self._share(len(x), x.size, lambda n: _batch_norm_apply(
            x3[n], mean, inv_std, weight, bias, x_hat3[n], y3[n]))  # fmt: skip
        return x_hat, y

    @_compiled(_batch_norm_sized)
    def batch_norm_sums(self, gy, x_hat):
        sum_gy = self.empty(gy.shape[1], dtype=gy.dtype)
        sum_gy_x_hat = self.empty(gy.shape[1], dtype=gy.dtype)
        gy3, x_hat3 = _as_3d(gy), _as_3d(x_hat)
        self._share(gy.shape[1], gy.size, lambda c: _batch_norm_sums(
            gy3, x_hat3, c.start, c.stop, sum_gy, sum_gy_x_hat))  # fmt: skip
        return sum_gy, sum_gy_x_hat

    @_compiled(_batch_norm_on_maps)
    def batch_norm_grad(self, gy, x_hat, scale, mean_gy, mean_gy_x_hat):
        dx = self.empty(gy.shape, dtype=gy.dtype)
        gy3, x_hat3, dx3 = _as_3d(gy), _as_3d(x_hat), _as_3d(dx)
        self._share(len(gy), gy.size, lambda n: _batch_norm_grad(
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
            x_pad = self._pad(x, win)
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


def _planes(x):
    """(N, C, H, W) -> (N*C, H, W), a view of a contiguous array: the pooling loops' layout."""
    return x.reshape(-1, x.shape[-2], x.shape[-1])


def _geometry(win: Window2d) -> tuple[int, ...]:
    """The window as the plain ints the compiled pooling kernels take."""
    return win.kh, win.kw, win.sh, win.sw, win.ph, win.pw
