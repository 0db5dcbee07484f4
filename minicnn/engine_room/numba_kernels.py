"""The numba backend's compiled loops: NumPy's kernels written out one element at a time.

Read this after the textbook path (backend/numpy_.py), beside engine_room/numba_.py,
whose :class:`~minicnn.engine_room.numba_.NumbaBackend` allocates each operation's
outputs, cuts the operation into parts and calls these loops on them. Each loop's
docstring shows what it computes, as the loop over indices that NumPy's kernel
vectorises. They are grouped by operation: convolution (col2im, im2col at stride 1, the
wide rows, tap_sum), the direct convolution, max pooling, average pooling, the
elementwise passes and batch norm. (Winograd's transforms are generated into
``_winograd_kernels.py`` by ``winograd_codegen.py``.)

Three rules shape every kernel:

- A loop runs on one thread and releases the GIL (``nogil=True``). The backend's
  :class:`~minicnn.engine_room.team.ThreadTeam` runs several at once, each on its own part of
  what the operation *writes*, a slice of the arrays: a range of (n, c) planes, of
  images, of channels or of elements, or a range of a convolution's batch. No two parts
  ever write the same element, so there are no races, no locks, and the same result on
  every run. (Overlapping pooling windows never cross planes, so the pixels they have
  in common always belong to one part.) Numba's own thread pool is never started.
- Each element's terms are added in the order NumPy's kernels add them (ascending
  kernel offset i*kw + j), in the array's dtype, so the two backends agree to the last
  bit. Two exceptions agree to round-off instead: batch norm's sums, accumulated in
  float64 (inputs with few values per channel keep NumPy's kernels), and the direct
  loops' weight gradient (``_grad_weight_direct``), whose dot products LLVM may add in
  vector lanes (``fastmath={"reassoc"}``), as BLAS's sdot does.
- A loop writes into the outputs it is given and allocates none: the backend allocates
  them in Python (engine_room/numba_.py). The loops skip the padding, whose
  contribution is zero (or -inf for max pooling).

With ``NUMBA_DISABLE_JIT=1`` the kernels run as plain, slow Python, to step through in a
debugger. ``cache=True`` stores the machine code in ``__pycache__`` (Numba caches per
source file, this one's and ``_winograd_kernels.py``'s), so only the first process on a
machine pays for compiling (see :meth:`NumbaBackend.warm_up
<minicnn.engine_room.numba_.NumbaBackend.warm_up>` and ``benchmarks/bench_compile.py``).
"""

from __future__ import annotations

import numba
import numpy

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
# Each kernel sees x as (N, C, H*W) (numba_.py's ``_as_3d``): a channel's plane is one run of
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
