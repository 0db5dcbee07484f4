"""Convolution (strictly, cross-correlation), two ways.

First the chapter's plain loops (D2L 6.2-6.4): :func:`corr2d` slides a kernel over a
matrix one output element at a time; :func:`corr2d_multi_in` sums it over input
channels; :func:`corr2d_multi_in_out` repeats that per output channel;
:func:`corr2d_multi_in_out_1x1` shows a 1x1 convolution is a matrix product. They are
easy to read and slow, and the tests hold the fast path equal to them.

Then :func:`conv2d`, the fast path: im2col unfolds every receptive field into one column
of a matrix, so a layer becomes a matrix product (done a chunk of images at a time)::

    cols = im2col(x)                      # (C*kh*kw, N*OH*OW)
    y    = weight.reshape(OC, -1) @ cols   # (OC, N*OH*OW) -> reshaped to (N, OC, OH, OW)

and its backward is two more products plus col2im, the adjoint of im2col. A backend
that sets ``conv_winograd`` (Numba's, the fast path) computes wide 3x3 and 5x5 stride-1
layers with Winograd's F(2x2, 3x3) and F(2x2, 5x5) instead (:func:`_correlate_winograd`,
backend/winograd.py): the same sums in 16/36 and 36/100 of the multiplications.
"""

from __future__ import annotations

from dataclasses import replace

from ..backend import Window2d, backend_of, get_array_module, winograd
from ..tensor import Function, Tensor


# ---- the chapter's loops: readable references ---------------------------------------
def _array(x):
    return x.data if isinstance(x, Tensor) else x


def _require_ndim(op: str, name: str, array, ndim: int, layout: str) -> None:
    if array.ndim != ndim:
        raise ValueError(
            f"{op}: expected {name} with {ndim} dimensions {layout}, got shape {tuple(array.shape)}"
        )


def corr2d(X, K) -> Tensor:
    """2-D cross-correlation of matrix ``X`` (h, w) with kernel ``K`` (kh, kw)::

        Y[i, j] = sum over (a, b) of X[i + a, j + b] * K[a, b]

    for an output of shape (h - kh + 1, w - kw + 1). No gradient: a reference to read.
    """
    X, K = _array(X), _array(K)
    _require_ndim("corr2d", "X", X, 2, "(h, w)")
    _require_ndim("corr2d", "K", K, 2, "(kh, kw)")
    h, w = K.shape
    if h > X.shape[0] or w > X.shape[1]:
        raise ValueError(f"corr2d: kernel {tuple(K.shape)} is larger than X {tuple(X.shape)}")
    xp = get_array_module(X)
    Y = xp.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1), dtype=xp.result_type(X, K))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i : i + h, j : j + w] * K).sum()
    return Tensor(Y)


def corr2d_multi_in(X, K) -> Tensor:
    """Several input channels: ``X`` (C, h, w), ``K`` (C, kh, kw); sum of the per-channel
    cross-correlations."""
    X, K = _array(X), _array(K)
    _require_ndim("corr2d_multi_in", "X", X, 3, "(C, h, w)")
    _require_ndim("corr2d_multi_in", "K", K, 3, "(C, kh, kw)")
    if X.shape[0] != K.shape[0]:
        raise ValueError(
            f"corr2d_multi_in: X has {X.shape[0]} channels but K has {K.shape[0]} "
            f"(X {tuple(X.shape)}, K {tuple(K.shape)})"
        )
    return Tensor(sum(corr2d(x, k).data for x, k in zip(X, K, strict=True)))


def corr2d_multi_in_out(X, K) -> Tensor:
    """Several output channels: ``K`` (OC, C, kh, kw); one multi-input result per output
    channel, stacked."""
    X, K = _array(X), _array(K)
    _require_ndim("corr2d_multi_in_out", "K", K, 4, "(OC, C, kh, kw)")
    xp = get_array_module(X)
    return Tensor(xp.stack([corr2d_multi_in(X, k).data for k in K]))


def corr2d_multi_in_out_1x1(X, K) -> Tensor:
    """A 1x1 convolution is a matrix product: (OC, C) @ (C, h*w), reshaped to (OC, h, w)."""
    X, K = _array(X), _array(K)
    _require_ndim("corr2d_multi_in_out_1x1", "X", X, 3, "(C, h, w)")
    _require_ndim("corr2d_multi_in_out_1x1", "K", K, 4, "(OC, C, 1, 1)")
    c, h, w = X.shape
    oc = K.shape[0]
    if K.shape[1:] != (c, 1, 1):
        raise ValueError(
            f"corr2d_multi_in_out_1x1: expected K of shape (OC, {c}, 1, 1) for X {tuple(X.shape)}, "
            f"got {tuple(K.shape)}"
        )
    return Tensor((K.reshape(oc, c) @ X.reshape(c, h * w)).reshape(oc, h, w))


# ---- the fast path: im2col + one matrix product --------------------------------------
# Columns are unfolded a chunk of images at a time, about this many bytes of them: the
# chunk stays in cache between im2col writing it and the matrix product reading it, and
# memory no longer grows with the batch (a whole batch's columns are kh*kw copies of it).
CHUNK_BYTES = 4 * 2**20
# Winograd's transformed tiles, a chunk of images at a time: large enough for 16 matrix
# products that BLAS runs at full speed, small enough to bound the memory.
WINOGRAD_CHUNK_BYTES = 16 * 2**20
# Winograd pays for its transforms when its products are large: both channel counts at
# least WINOGRAD_MIN_CHANNELS, and an output at least WINOGRAD_MIN_SIDE on each side (a
# 3x3 output needs four 2x2 blocks, 16 outputs' work for 9). Measured layer by layer on
# the networks' shapes (benchmarks/bench_ops.py): below these, im2col is as fast or faster.
WINOGRAD_MIN_CHANNELS = 64
WINOGRAD_MIN_SIDE = 4


class Conv2d(Function):
    """``y[n, o] = bias[o] + sum over c, i, j of weight[o, c, i, j] * x_pad[n, c, oh*sh + i, ow*sw + j]``.

    A chunk of images at a time, with W = weight.reshape(OC, C*kh*kw)::

        cols = im2col(x[chunk])                          # (C*kh*kw, b*OH*OW)
        Forward:   y[chunk] = W @ cols + bias            # (OC, b*OH*OW) -> (b, OC, OH, OW)
        Backward:  dW += dy[chunk] @ cols^T              # dy[chunk] laid out like W @ cols
                   dx[chunk] = col2im(W^T @ dy[chunk])
                   db = dy summed over (N, OH, OW)

    The chunks are independent, so a backend with several threads (the numba backend's
    team, backend/team.py) cuts the batch into one share per thread and runs the shares'
    chunk loops at once (``backend.map`` over :func:`_shares`; on the NumPy backend, one
    share and a plain loop). Each share adds up its own dW; the shares' sums are added
    last.

    Backward unfolds each chunk again rather than keeping the columns of the forward
    pass: they would be the largest memory of a training step, and unfolding costs little
    beside the matrix products. With stride 1 and fewer output than input channels, y
    is computed tap by tap (:func:`_correlate_by_taps`), and with no more output than input
    channels dx is computed as what it also is, a convolution of dy (:meth:`_grad_input`).
    """

    name = "conv2d"
    input_names = ("input", "weight", "bias")

    def __init__(self, stride, padding):
        self.stride, self.padding = stride, padding

    def forward(self, x, weight, bias=None):
        self.win = self._window(x, weight, bias)
        self.backend, self.x, self.weight = backend_of(x), x, weight
        self.winograd = _winograd_algorithm(self.backend, self.win, weight)
        if self.winograd:
            return _correlate_winograd(self.backend, x, weight, self.win, self.winograd, bias)
        return _correlate(self.backend, x, weight, self.win, bias)

    def backward(self, gy):
        need_x, need_w = self.needs_input_grad[:2]
        if self.winograd:
            grad_x, grad_w = _winograd_backward(self.backend, gy, self.x, self.weight, self.win,
                                                self.winograd, need_x, need_w)  # fmt: skip
        else:
            grad_x = self._grad_input(gy) if need_x else None
            grad_w = self._grad_weight(gy) if need_w else None
        if len(self.needs_input_grad) == 3:
            return grad_x, grad_w, gy.sum(axis=(0, 2, 3))
        return grad_x, grad_w

    def _grad_weight(self, gy):
        """dW = sum over chunks of dy[chunk] @ im2col(x[chunk])^T.

        Computed transposed, dW^T += cols @ dy[chunk]^T: the same products, which BLAS
        runs faster with the long C*kh*kw side first.
        """
        backend, weight = self.backend, self.weight

        def sum_of_share(share):
            images, part = share
            x, gy_share = self.x[images], gy[images]
            grad_wt = backend.xp.zeros((weight[0].size, weight.shape[0]), dtype=weight.dtype)
            for chunk, _, cols in _unfold(backend, x, part, weight.nbytes):
                grad_wt += cols @ _as_columns(backend, gy_share[chunk]).T
            return grad_wt

        grad_wt = sum(backend.map(sum_of_share, _shares(backend, self.win)))
        return grad_wt.T.reshape(weight.shape)

    def _grad_input(self, gy):
        """dx = col2im(W^T @ dy), chunk by chunk.

        With stride 1, dx is also a convolution: of dy, padded by (kh-1-ph, kw-1-pw),
        with the kernel turned 180 degrees and its in and out channels swapped::

            dx[n, c, h, w] = sum over o, i, j of weight[o, c, kh-1-i, kw-1-j] * dy_pad[n, o, h + i, w + j]

        That way unfolds dy (OC*kh*kw rows) instead of folding back C*kh*kw rows: less
        memory traffic when OC < C (DenseNet's narrow layers), and with OC = C (ResNet's)
        a matrix product over OC*kh*kw instead of OC, which BLAS runs faster.
        """
        win, weight = self.win, self.weight
        out_channels, _, kh, kw = weight.shape
        if (win.sh, win.sw) == (1, 1) and win.ph < kh and win.pw < kw and out_channels <= win.c:
            flipped = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
            gy_win = Window2d(win.n, out_channels, win.oh, win.ow, kh, kw, 1, 1,
                              kh - 1 - win.ph, kw - 1 - win.pw)  # fmt: skip
            return _correlate(self.backend, gy, flipped, gy_win)
        w = weight.reshape(out_channels, -1)
        grad_x = self.backend.empty(win.input_shape, gy.dtype)

        def compute(share):
            images, part = share
            gy_share, grad_x_share = gy[images], grad_x[images]
            for chunk, chunk_win in _chunks(self.backend, part, gy.itemsize, weight.nbytes):
                cols = self.backend.matmul(w.T, _as_columns(self.backend, gy_share[chunk]))
                self.backend.col2im(cols, chunk_win, out=grad_x_share[chunk])

        self.backend.map(compute, _shares(self.backend, win))
        return grad_x

    def _window(self, x, weight, bias) -> Window2d:
        if x.ndim != 4:
            raise ValueError(
                f"conv2d: expected a 4-D input (N, C, H, W), got shape {tuple(x.shape)}"
            )
        if weight.ndim != 4:
            raise ValueError(
                f"conv2d: expected a 4-D weight (out_channels, in_channels, kh, kw), "
                f"got shape {tuple(weight.shape)}"
            )
        if x.shape[1] != weight.shape[1]:
            raise ValueError(
                f"conv2d: input has {x.shape[1]} channels but weight {tuple(weight.shape)} "
                f"expects {weight.shape[1]} (input shape {tuple(x.shape)})"
            )
        if bias is not None and bias.shape != (weight.shape[0],):
            raise ValueError(
                f"conv2d: bias shape {tuple(bias.shape)} does not match {weight.shape[0]} "
                "output channels"
            )
        return Window2d.of("conv2d", x.shape, weight.shape[2:], self.stride, self.padding)


def _correlate(backend, x, weight, win: Window2d, bias=None):
    """``W @ im2col(x) + bias`` chunk by chunk, laid out as (N, OC, OH, OW)."""
    out_channels, _, kh, kw = weight.shape
    if (win.sh, win.sw) == (1, 1) and kh * kw > 1 and out_channels < win.c:
        return _correlate_by_taps(backend, x, weight, win, bias)
    w = weight.reshape(weight.shape[0], -1)
    y = backend.empty((win.n, w.shape[0], win.oh, win.ow), x.dtype)

    def compute(share):
        images, part = share
        y_share = y[images]
        for chunk, chunk_win, cols in _unfold(backend, x[images], part, w.nbytes):
            out = backend.matmul(w, cols)
            if bias is not None:
                out += bias.reshape(-1, 1)
            out = out.reshape(w.shape[0], chunk_win.n, win.oh, win.ow)
            y_share[chunk] = out.transpose(1, 0, 2, 3)

    backend.map(compute, _shares(backend, win))
    return y


def _correlate_by_taps(backend, x, weight, win: Window2d, bias=None):
    """The same convolution (stride 1), computed the other way round: every kernel tap's
    product at every input pixel first, then each output adds up the kh*kw it needs::

        z[(i, j, o), n, h, w] = sum over c of weight[o, c, i, j] * x[n, c, h, w]      # one GEMM
        y[n, o, oh, ow] = sum over i, j of z[(i, j, o), n, oh + i - ph, ow + j - pw]  # tap_sum

    The product reads x itself instead of its kh*kw-fold columns and writes kh*kw*OC rows
    instead of im2col's C*kh*kw: less memory traffic when OC < C (DenseNet's growth layers).
    """
    out_channels, in_channels, kh, kw = weight.shape
    taps = weight.transpose(2, 3, 0, 1).reshape(kh * kw * out_channels, in_channels)
    y = backend.empty((win.n, out_channels, win.oh, win.ow), x.dtype)

    def compute(share):
        images, part = share
        x_share, y_share = x[images], y[images]
        for chunk, chunk_win in _chunks(backend, part, x.itemsize, weight.nbytes):
            z = backend.matmul(taps, _as_columns(backend, x_share[chunk]))  # (kh*kw*OC, b*H*W)
            backend.tap_sum(z, chunk_win, out=y_share[chunk])
            if bias is not None:
                y_share[chunk] += bias.reshape(-1, 1, 1)

    backend.map(compute, _shares(backend, win))
    return y


def _winograd_algorithm(backend, win: Window2d, weight) -> winograd.Algorithm | None:
    """The Winograd algorithm to compute this layer with, or None for im2col."""
    algorithm = winograd.choose(win) if getattr(backend, "conv_winograd", False) else None
    wide = min(win.c, weight.shape[0]) >= WINOGRAD_MIN_CHANNELS
    if algorithm is None or not wide or min(win.oh, win.ow) < WINOGRAD_MIN_SIDE:
        return None
    return algorithm


def _correlate_winograd(backend, x, weight, win: Window2d, alg: winograd.Algorithm, bias=None):
    """The same stride-1 convolution by Winograd's F(m x m, r x r), chunk by chunk::

        U = G weight GT                   # (n*n, OC, C), once
        V = BT x_tile B                   # (n*n, C, b*TH*TW)   backend.winograd_input
        y[chunk] = AT (U @ V) A + bias    # n*n products         backend.winograd_output
    """
    u = winograd.transform_weight(backend.xp, weight, alg)
    y = backend.empty((win.n, weight.shape[0], win.oh, win.ow), x.dtype)

    def compute(share):
        images, part = share
        x_share, y_share = x[images], y[images]
        for chunk, chunk_win in _winograd_chunks(part, alg, weight.shape[0], x.itemsize):
            v = backend.winograd_input(x_share[chunk], chunk_win, alg)
            backend.winograd_output(backend.matmul(u, v), chunk_win, alg, out=y_share[chunk])
            if bias is not None:
                y_share[chunk] += bias.reshape(-1, 1, 1)

    backend.map(compute, _shares(backend, win))
    return y


def _winograd_backward(backend, gy, x, weight, win: Window2d, alg, need_x, need_w):
    """(dx, dW) of :func:`_correlate_winograd`: each step's adjoint, in reverse::

        dM = A dy AT                    # (n*n, OC, b*TH*TW)  backend.winograd_output_grad
        dU += dM @ V^T                  # (n*n, OC, C), V recomputed from x
        dx[chunk] = B (U^T @ dM) BT     # added back where tiles overlap: winograd_input_grad
        dW = GT dU G
    """
    xp = backend.xp
    u = winograd.transform_weight(xp, weight, alg)
    grad_x = backend.empty(win.input_shape, gy.dtype) if need_x else None

    def compute(share):  # dx of the share's images, and the share's sum of dU
        images, part = share
        x_share, gy_share = x[images], gy[images]
        grad_u = xp.zeros_like(u) if need_w else None
        for chunk, chunk_win in _winograd_chunks(part, alg, weight.shape[0], gy.itemsize):
            grad_m = backend.winograd_output_grad(gy_share[chunk], chunk_win, alg)
            if need_w:
                v = backend.winograd_input(x_share[chunk], chunk_win, alg)
                grad_u += grad_m @ v.transpose(0, 2, 1)
            if need_x:
                grad_v = backend.matmul(u.transpose(0, 2, 1), grad_m)
                grad_x[images][chunk] = backend.winograd_input_grad(grad_v, chunk_win, alg)
        return grad_u

    grad_us = backend.map(compute, _shares(backend, win))
    grad_w = winograd.transform_weight_grad(xp, sum(grad_us), alg) if need_w else None
    return grad_x, grad_w


def _winograd_chunks(win: Window2d, alg, out_channels: int, itemsize: int):
    """(slice of images, their window) with about WINOGRAD_CHUNK_BYTES of tiles each."""
    th, tw = alg.tiles(win)
    per_image = alg.n**2 * max(win.c, out_channels) * th * tw * itemsize
    yield from _split(win, max(1, min(win.n, WINOGRAD_CHUNK_BYTES // per_image)))


def _shares(backend, win: Window2d):
    """(slice of images, their window): the batch cut into one share per thread of the
    backend (one share, the whole batch, on the NumPy backend or for a small layer)."""
    columns = win.c * win.kh * win.kw * win.n * win.oh * win.ow
    for start, stop in backend.conv_shares(win.n, columns):
        yield slice(start, stop), replace(win, n=stop - start)


def _as_columns(backend, gy):
    """(b, C, H, W) -> (C, b*H*W), the layout of ``W @ cols``: ``gy`` itself when b = 1,
    else a copy into memory from the backend."""
    if gy.shape[0] == 1:
        return gy.reshape(gy.shape[1], -1)
    columns = backend.empty((gy.shape[1], gy.size // gy.shape[1]), gy.dtype)
    columns.reshape(gy.shape[1], gy.shape[0], *gy.shape[2:])[...] = gy.transpose(1, 0, 2, 3)
    return columns


def _chunks(backend, win: Window2d, itemsize: int, weight_bytes: int):
    """(slice of images, their window) for chunks of equal size covering the batch.

    On the CPU a chunk holds about CHUNK_BYTES of columns (so it stays in cache), and at
    least as many as the weight has bytes: BLAS copies the weight into its own layout for
    every product. A 1x1 window goes one image at a time, as its columns need no
    unfolding then (unless the image is so small that many tiny products would cost more
    than the copy). A GPU has no such cache to fit but pays for every kernel launch, so
    there a chunk is as large as ``backend.conv_chunk_bytes`` allows.
    """
    per_image = win.c * win.kh * win.kw * win.oh * win.ow * itemsize
    budget = getattr(backend, "conv_chunk_bytes", CHUNK_BYTES)
    size = max(1, min(win.n, max(budget, weight_bytes) // per_image))
    pointwise = (win.kh, win.kw, win.sh, win.sw, win.ph, win.pw) == (1, 1, 1, 1, 0, 0)
    if pointwise and win.oh * win.ow >= 32 and backend.device == "cpu":
        size = 1  # one image's columns are the image itself, a view
    yield from _split(win, size)


def _split(win: Window2d, size: int):
    """Chunks of at most ``size`` images covering the batch, as even as they can be."""
    size = -(-win.n // -(-win.n // size))  # as many chunks, evened out
    for start in range(0, win.n, size):
        part = replace(win, n=min(size, win.n - start))
        yield slice(start, start + part.n), part


def _unfold(backend, x, win: Window2d, weight_bytes: int):
    """(slice of images, their window, their columns) for each chunk, in one reused buffer."""
    buffer = None
    for images, part in _chunks(backend, win, x.itemsize, weight_bytes):
        size = part.c * part.kh * part.kw * part.n * part.oh * part.ow
        if buffer is None:
            buffer = backend.empty(size, x.dtype)
        yield images, part, backend.im2col(x[images], part, out=buffer[:size])


def conv2d(input, weight, bias=None, stride=1, padding=0):
    """2-D convolution of ``input`` (N, C, H, W) with ``weight`` (OC, C, kh, kw), as
    ``torch.nn.functional.conv2d``; ``stride`` and ``padding`` are ints or pairs."""
    args = (input, weight) if bias is None else (input, weight, bias)
    return Conv2d(stride, padding)(*args)
