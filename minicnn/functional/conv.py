"""Convolution (strictly, cross-correlation), three ways.

First the chapter's plain loops (D2L 7.2-7.4): :func:`corr2d` slides a kernel over a
matrix one output element at a time; :func:`corr2d_multi_in` sums it over input
channels; :func:`corr2d_multi_in_out` repeats that per output channel;
:func:`corr2d_multi_in_out_1x1` shows a 1x1 convolution is a matrix product. They are
written with Tensor operations, so autograd derives their gradients (the book's
``Conv2D`` trains on :func:`corr2d`); they are easy to read and slow, and the tests
hold the layer equal to them.

Then :func:`conv2d`, the layer (:class:`Conv2d`): im2col unfolds every receptive field
into one column of a matrix, so a layer becomes a matrix product (a chunk of images at
a time)::

    cols = im2col(x)                      # (C*kh*kw, N*OH*OW)
    y    = weight.reshape(OC, -1) @ cols   # (OC, N*OH*OW) -> reshaped to (N, OC, OH, OW)

and its backward is two more products plus col2im, the adjoint of im2col, written out.

Last :func:`conv2d_simple`, the same layer built from an :class:`Im2col` Function (whose
backward is col2im) and a matrix product, so that autograd derives conv's backward by
itself (DeZero's pairing). Read after this file: engine_room/conv.py, where the numba
and cupy backends compute some layers another, faster way.
"""

from __future__ import annotations

from dataclasses import replace

from ..backend import Window2d, backend_of
from ..tensor import Function, Tensor, as_tensor
from .checks import as_array as _array
from .checks import require_ndim as _require_ndim
from .shape import stack


# ---- the chapter's loops: readable references ---------------------------------------
def corr2d(X, K) -> Tensor:
    """2-D cross-correlation of matrix ``X`` (h, w) with kernel ``K`` (kh, kw)::

        Y[i, j] = sum over (a, b) of X[i + a, j + b] * K[a, b]

    for an output of shape (h - kh + 1, w - kw + 1). Written as the book writes it, one
    output element at a time, but with Tensor operations (a slice, a product, a sum, then
    a stack), so that autograd derives its backward and the book's ``Conv2D`` can learn
    a kernel with it (D2L 7.2.4). Every output element is a small graph of its own: slow,
    which is why the layer (:func:`conv2d`) unfolds the windows into one matrix product.
    """
    X, K = as_tensor(X), as_tensor(K)
    _require_ndim("corr2d", "X", X, 2, "(h, w)")
    _require_ndim("corr2d", "K", K, 2, "(kh, kw)")
    h, w = K.shape
    if h > X.shape[0] or w > X.shape[1]:
        raise ValueError(f"corr2d: kernel {tuple(K.shape)} is larger than X {tuple(X.shape)}")
    rows = []
    for i in range(X.shape[0] - h + 1):
        row = [(X[i : i + h, j : j + w] * K).sum() for j in range(X.shape[1] - w + 1)]
        rows.append(stack(row))
    return stack(rows)


def corr2d_multi_in(X, K) -> Tensor:
    """Several input channels: ``X`` (C, h, w), ``K`` (C, kh, kw); the sum of the
    per-channel cross-correlations."""
    X, K = as_tensor(X), as_tensor(K)
    _require_ndim("corr2d_multi_in", "X", X, 3, "(C, h, w)")
    _require_ndim("corr2d_multi_in", "K", K, 3, "(C, kh, kw)")
    if X.shape[0] != K.shape[0]:
        raise ValueError(
            f"corr2d_multi_in: X has {X.shape[0]} channels but K has {K.shape[0]} "
            f"(X {tuple(X.shape)}, K {tuple(K.shape)})"
        )
    return sum(corr2d(X[c], K[c]) for c in range(len(X)))


def corr2d_multi_in_out(X, K) -> Tensor:
    """Several output channels: ``K`` (OC, C, kh, kw); one multi-input result per output
    channel, stacked."""
    X, K = as_tensor(X), as_tensor(K)
    _require_ndim("corr2d_multi_in_out", "K", K, 4, "(OC, C, kh, kw)")
    return stack([corr2d_multi_in(X, K[o]) for o in range(len(K))])


def corr2d_multi_in_out_1x1(X, K) -> Tensor:
    """A 1x1 convolution is a matrix product: (OC, C) @ (C, h*w), reshaped to (OC, h, w)."""
    X, K = as_tensor(X), as_tensor(K)
    _require_ndim("corr2d_multi_in_out_1x1", "X", X, 3, "(C, h, w)")
    _require_ndim("corr2d_multi_in_out_1x1", "K", K, 4, "(OC, C, 1, 1)")
    c, h, w = X.shape
    oc = K.shape[0]
    if K.shape[1:] != (c, 1, 1):
        raise ValueError(
            f"corr2d_multi_in_out_1x1: expected K of shape (OC, {c}, 1, 1) for X {tuple(X.shape)}, "
            f"got {tuple(K.shape)}"
        )
    return (K.reshape(oc, c) @ X.reshape(c, h * w)).reshape(oc, h, w)


# ---- the layer: im2col + one matrix product ----------------------------------------
#: The columns are unfolded a chunk of images at a time, at most this many bytes of them:
#: a whole batch's columns are kh*kw copies of it (VGG-11's first layer at batch 128:
#: 2.7 GB), a chunk's are a bounded buffer.
CHUNK_BYTES = 16 * 2**20


class Conv2d(Function):
    """``y[n, o] = bias[o] + sum over c, i, j of weight[o, c, i, j] * x_pad[n, c, oh*sh + i, ow*sw + j]``.

    The chapter's algorithm, a chunk of images at a time, with W = weight.reshape(OC, C*kh*kw)::

        cols = im2col(x[chunk])                          # (C*kh*kw, b*OH*OW)
        Forward:   y[chunk] = W @ cols + bias            # (OC, b*OH*OW) -> (b, OC, OH, OW)
        Backward:  dW += dy[chunk] @ cols^T              # dy[chunk] laid out like W @ cols
                   dx[chunk] = col2im(W^T @ dy[chunk])
                   db = dy summed over (N, OH, OW)

    Backward unfolds each chunk again rather than keeping the forward pass's columns,
    the largest memory of a training step otherwise.

    A backend with an engine room (numba, cupy) may compute the same sums another way
    that is faster for this layer's shape: ``backend.conv2d_plan`` chooses, in forward,
    a row of engine_room/conv.py's table for each pass (``self.algorithm`` names both).
    ``mc.config.reference = True`` turns every row off and keeps every layer on the
    algorithm here; ``mc.config.turned_off("winograd")`` turns off one.
    """

    name = "conv2d"
    input_names = ("input", "weight", "bias")

    def __init__(self, stride, padding):
        self.stride, self.padding = stride, padding

    # What the passes compute with: the chapter's, or the engine room's rows (forward's
    # name; both passes', as mc.summary and the graph show them)
    algorithm = description = "im2col"

    def release(self) -> None:
        """Drop the saved arrays, as every Function does; keep the algorithms' names."""
        names = self.algorithm, self.description
        super().release()
        self.algorithm, self.description = names

    def forward(self, x, weight, bias=None):
        self.win = self._window(x, weight, bias)
        self.backend, self.x, self.weight = backend_of(x), x, weight
        self.plan = self.backend.conv2d_plan(self.win, weight.shape)
        if self.plan is not None:  # its names kept: backward frees the plan, not the names
            self.algorithm, self.description = self.plan.algorithm, self.plan.description
            if self.plan.forward_algorithm is not None:
                return self.plan.forward(x, weight, bias)
        w = weight.reshape(weight.shape[0], -1)  # (OC, C*kh*kw)
        y = self.backend.xp.empty((self.win.n, w.shape[0], self.win.oh, self.win.ow), x.dtype)
        for images, chunk in _chunks(self.win, x.itemsize):
            cols = self.backend.im2col(x[images], chunk)  # (C*kh*kw, b*OH*OW)
            out = w @ cols  # (OC, b*OH*OW)
            if bias is not None:
                out += bias.reshape(-1, 1)
            y[images] = out.reshape(w.shape[0], chunk.n, chunk.oh, chunk.ow).transpose(1, 0, 2, 3)
        return y

    def backward(self, gy):
        need_x, need_w = self.needs_input_grad[:2]
        if self.plan is not None and self.plan.backward_algorithm is not None:
            grad_x, grad_w = self.plan.backward(gy, self.x, self.weight, need_x, need_w)
        else:
            grad_x, grad_w = self._backward_im2col(gy, need_x, need_w)
        if len(self.needs_input_grad) == 3:
            return grad_x, grad_w, gy.sum(axis=(0, 2, 3))
        return grad_x, grad_w

    def _backward_im2col(self, gy, need_x, need_w):
        xp, weight = self.backend.xp, self.weight
        w = weight.reshape(weight.shape[0], -1)  # (OC, C*kh*kw)
        grad_w = xp.zeros_like(w) if need_w else None
        grad_x = xp.empty(self.win.input_shape, gy.dtype) if need_x else None
        for images, chunk in _chunks(self.win, gy.itemsize):
            dy = gy[images].transpose(1, 0, 2, 3).reshape(w.shape[0], -1)  # (OC, b*OH*OW)
            if need_w:
                grad_w += dy @ self.backend.im2col(self.x[images], chunk).T
            if need_x:
                grad_x[images] = self.backend.col2im(w.T @ dy, chunk)
        return grad_x, (grad_w.reshape(weight.shape) if need_w else None)

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


def conv2d_algorithm(input, weight_shape, stride=1, padding=0) -> str:
    """The algorithm :func:`conv2d` computes with, for this input (an array or a Tensor,
    whose backend decides) and this weight's shape: "im2col" (the chapter's, forward and
    backward), or the engine room's choice for the shape ("taps", "direct",
    "Winograd F(2x2, 3x3)", "im2col, dx by conv", ...)."""
    data = _array(input)
    win = Window2d.of("conv2d", data.shape, tuple(weight_shape)[2:], stride, padding)
    plan = backend_of(data).conv2d_plan(win, tuple(weight_shape))
    return "im2col" if plan is None else plan.description


def _chunks(win: Window2d, itemsize: int):
    """(slice of images, their window) for chunks of images whose columns take at most
    CHUNK_BYTES (one image at least), covering the batch."""
    per_image = win.c * win.kh * win.kw * win.oh * win.ow * itemsize
    size = max(1, CHUNK_BYTES // per_image)
    for start in range(0, win.n, size):
        chunk = replace(win, n=min(size, win.n - start))
        yield slice(start, start + chunk.n), chunk


def conv2d(input, weight, bias=None, stride=1, padding=0):
    """2-D convolution of ``input`` (N, C, H, W) with ``weight`` (OC, C, kh, kw), as
    ``torch.nn.functional.conv2d``; ``stride`` and ``padding`` are ints or pairs."""
    args = (input, weight) if bias is None else (input, weight, bias)
    return Conv2d(stride, padding)(*args)


# ---- DeZero's pairing: the layer from an Im2col Function and a matrix product --------
class Im2col(Function):
    """Every receptive field of ``x`` (N, C, H, W) as a column: (C*kh*kw, N*OH*OW).

    ``cols[(c*kh + i)*kw + j, (n*OH + oh)*OW + ow] = x_pad[n, c, oh*sh + i, ow*sw + j]``
    (``backend.im2col``; ``pad_value`` fills the padding). Its backward is its adjoint,
    col2im: each column's gradient is added back where the column was read from, so a
    pixel in several windows receives the sum of their gradients.
    """

    name = "im2col"

    def __init__(self, kernel_size, stride, padding, pad_value=0.0):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.pad_value = pad_value

    def forward(self, x):
        _require_ndim(self.name, "input", x, 4, "(N, C, H, W)")
        self.win = Window2d.of(self.name, x.shape, self.kernel_size, self.stride, self.padding)
        self.backend = backend_of(x)
        return self.backend.im2col(x, self.win, value=self.pad_value).copy()

    def backward(self, gcols):
        return self.backend.col2im(gcols, self.win)


def im2col(input, kernel_size, stride=1, padding=0, pad_value=0.0):
    """The columns of :class:`Im2col`, with a gradient."""
    return Im2col(kernel_size, stride, padding, pad_value)(input)


def conv2d_simple(input, weight, bias=None, stride=1, padding=0):
    """:func:`conv2d` as three operations autograd already knows, so that it derives
    conv's backward by itself (DeZero's ``conv2d_simple``)::

        cols = im2col(x)                          # Im2col: backward is col2im
        y    = W @ cols + bias                    # matmul, add: backward dW = dy @ cols^T,
                                                  #   dcols = W^T @ dy
        y    -> (N, OC, OH, OW)                   # reshape, transpose

    The same sums as :class:`Conv2d`, whose backward writes those steps out by hand.
    """
    weight = weight if isinstance(weight, Tensor) else Tensor(weight)
    n, out_channels = input.shape[0], weight.shape[0]
    cols = im2col(input, weight.shape[2:], stride, padding)  # (C*kh*kw, N*OH*OW)
    y = weight.reshape(out_channels, -1) @ cols  # (OC, N*OH*OW)
    if bias is not None:
        y = y + bias.reshape(out_channels, 1)
    win = Window2d.of("conv2d_simple", input.shape, weight.shape[2:], stride, padding)
    return y.reshape(out_channels, n, win.oh, win.ow).transpose(1, 0, 2, 3)
