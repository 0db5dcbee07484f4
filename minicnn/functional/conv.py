"""Convolution (strictly, cross-correlation), two ways.

First the chapter's plain loops (D2L 6.2-6.4): :func:`corr2d` slides a kernel over a
matrix one output element at a time; :func:`corr2d_multi_in` sums it over input
channels; :func:`corr2d_multi_in_out` repeats that per output channel;
:func:`corr2d_multi_in_out_1x1` shows a 1x1 convolution is a matrix product. They are
easy to read and slow, and the tests hold the fast path equal to them.

Then :func:`conv2d`, the fast path: im2col unfolds every receptive field of the batch
into one column of a matrix, so the whole layer becomes a single matrix product::

    cols = im2col(x)                      # (C*kh*kw, N*OH*OW)
    y    = weight.reshape(OC, -1) @ cols   # (OC, N*OH*OW) -> reshaped to (N, OC, OH, OW)

and its backward is two more products plus col2im, the adjoint of im2col.
"""

from __future__ import annotations

from ..backend import Window2d, backend_of, get_array_module
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
class Conv2d(Function):
    """``y[n, o] = bias[o] + sum over c, i, j of weight[o, c, i, j] * x_pad[n, c, oh*sh + i, ow*sw + j]``.

    Forward:  y = W @ cols            with W = weight.reshape(OC, C*kh*kw)
    Backward: dW = dy @ cols^T,  db = dy summed over (N, OH, OW),  dx = col2im(W^T @ dy)
    where dy is the output gradient laid out as (OC, N*OH*OW), like y.
    """

    name = "conv2d"
    input_names = ("input", "weight", "bias")

    def __init__(self, stride, padding):
        self.stride, self.padding = stride, padding

    def forward(self, x, weight, bias=None):
        win = self._window(x, weight, bias)
        self.backend, self.win, self.weight = backend_of(x), win, weight
        out_channels = weight.shape[0]
        self.cols = self.backend.im2col(x, win)
        y = weight.reshape(out_channels, -1) @ self.cols
        if bias is not None:
            y += bias.reshape(out_channels, 1)
        y = y.reshape(out_channels, win.n, win.oh, win.ow).transpose(1, 0, 2, 3)
        return self.backend.xp.ascontiguousarray(y)

    def backward(self, gy):
        weight, win = self.weight, self.win
        out_channels = weight.shape[0]
        gy = gy.transpose(1, 0, 2, 3).reshape(out_channels, -1)  # (OC, N*OH*OW)
        grad_x = grad_w = None
        if self.needs_input_grad[0]:
            grad_x = self.backend.col2im(weight.reshape(out_channels, -1).T @ gy, win)
        if self.needs_input_grad[1]:
            grad_w = (gy @ self.cols.T).reshape(weight.shape)
        if len(self.needs_input_grad) == 3:
            return grad_x, grad_w, gy.sum(axis=1)
        return grad_x, grad_w

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


def conv2d(input, weight, bias=None, stride=1, padding=0):
    """2-D convolution of ``input`` (N, C, H, W) with ``weight`` (OC, C, kh, kw), as
    ``torch.nn.functional.conv2d``; ``stride`` and ``padding`` are ints or pairs."""
    args = (input, weight) if bias is None else (input, weight, bias)
    return Conv2d(stride, padding)(*args)
