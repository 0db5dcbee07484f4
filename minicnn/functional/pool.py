"""Pooling (D2L 7.5): the chapter's loop :func:`pool2d`, the layers, and
:func:`max_pool2d_simple` (im2col and a max, its backward derived by autograd).

Max and average pooling slide a window exactly like a convolution (same kernel, stride
and padding arithmetic, :class:`~minicnn.backend.window.Window2d`) but reduce each
window per channel instead of multiplying it with weights. ``stride`` defaults to the
kernel size, so windows tile the input without overlap unless asked to.
"""

from __future__ import annotations

from ..backend import Window2d, backend_of, get_array_module, pair
from ..tensor import Function, Tensor, as_tensor
from .checks import as_array as _array
from .checks import require_ndim as _require_ndim
from .conv import im2col
from .shape import stack


def pool2d(X, pool_size, mode: str = "max") -> Tensor:
    """The chapter's loop: ``Y[i, j] = max (or mean) of X[i : i + ph, j : j + pw]`` for a
    matrix ``X`` (h, w), stride 1, no padding. Written with Tensor operations, as
    :func:`~minicnn.functional.corr2d` is, so autograd derives its gradient: a window's
    maximum sends it to the (first) largest element, its mean shares it out equally."""
    X = as_tensor(X)
    _require_ndim("pool2d", "X", X, 2, "(h, w)")
    if mode not in ("max", "avg"):
        raise ValueError(f"pool2d: mode must be 'max' or 'avg', got {mode!r}")
    p_h, p_w = pair(pool_size, "pool_size", "pool2d")
    if p_h > X.shape[0] or p_w > X.shape[1]:
        raise ValueError(f"pool2d: window {(p_h, p_w)} is larger than X {tuple(X.shape)}")
    if X.dtype.kind != "f":  # a mean of integers is not an integer
        X = X.astype("float64")
    rows = []
    for i in range(X.shape[0] - p_h + 1):
        row = []
        for j in range(X.shape[1] - p_w + 1):
            window = X[i : i + p_h, j : j + p_w].reshape(-1)
            row.append(window.max(axis=0) if mode == "max" else window.mean())
        rows.append(stack(row))
    return stack(rows)


class MaxPool2d(Function):
    """``y[n, c, oh, ow] = max over (i, j) of x_pad[n, c, oh*sh + i, ow*sw + j]``.

    The gradient of each output goes to the one input that won its window (the first
    maximum on ties, as in PyTorch); overlapping windows add up.
    """

    name = "max_pool2d"

    def __init__(self, kernel_size, stride, padding):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        self.win = _pool_window(self.name, x, self.kernel_size, self.stride, self.padding)
        self.backend = backend_of(x)
        y, self.argmax = self.backend.max_pool2d(x, self.win)
        return y

    def backward(self, gy):
        return self.backend.max_pool2d_backward(gy, self.argmax, self.win)


class AvgPool2d(Function):
    """``y[n, c, oh, ow] = (sum over (i, j) of x_pad[n, c, oh*sh + i, ow*sw + j]) / divisor``.

    The divisor is kh*kw (``count_include_pad=True``, PyTorch's default: padding counts
    as zeros) or the number of real pixels in the window. Each input pixel receives
    dy / divisor from every window it is in.
    """

    name = "avg_pool2d"

    def __init__(self, kernel_size, stride, padding, count_include_pad):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.count_include_pad = count_include_pad

    def forward(self, x):
        win = self.win = _pool_window(self.name, x, self.kernel_size, self.stride, self.padding)
        self.backend = backend_of(x)
        if self.count_include_pad or (win.ph == 0 and win.pw == 0):
            self.divisor = win.kh * win.kw
        else:  # count the real pixels under each window: a window sum of ones
            one_image = Window2d(1, 1, win.h, win.w, win.kh, win.kw, win.sh, win.sw, win.ph, win.pw)
            ones = self.backend.xp.ones(one_image.input_shape, dtype=x.dtype)
            self.divisor = self.backend.window_sum(ones, one_image)
        return self.backend.window_sum(x, win) / self.divisor

    def backward(self, gy):
        return self.backend.window_sum_backward(gy / self.divisor, self.win)


class AdaptiveAvgPool2d(Function):
    """Average pooling to a fixed output size, whatever the input size.

    Output row ``oh`` averages input rows ``floor(oh*H/OH)`` to ``ceil((oh+1)*H/OH) - 1``
    (PyTorch's bins; likewise for columns), so bins may overlap when OH does not divide H.
    """

    name = "adaptive_avg_pool2d"

    def __init__(self, output_size):
        self.output_size = output_size

    def forward(self, x):
        if x.ndim != 4:
            raise ValueError(
                f"adaptive_avg_pool2d: expected a 4-D input (N, C, H, W), got shape {tuple(x.shape)}"
            )
        self.x_shape = x.shape
        self.bins = list(self._bins(x.shape[2:]))
        out_h, out_w = self.out_size
        if (out_h, out_w) == (1, 1):  # global average pooling, the networks' head
            return x.mean(axis=(2, 3), keepdims=True)
        xp = get_array_module(x)
        y = xp.empty(x.shape[:2] + (out_h, out_w), dtype=x.dtype)
        for oh, ow, rows, cols in self.bins:
            y[:, :, oh, ow] = x[:, :, rows, cols].mean(axis=(2, 3))
        return y

    def backward(self, gy):
        xp = get_array_module(gy)
        if self.out_size == (1, 1):
            h, w = self.x_shape[2:]
            return xp.broadcast_to(gy / (h * w), self.x_shape).copy()
        gx = xp.zeros(self.x_shape, dtype=gy.dtype)
        for oh, ow, rows, cols in self.bins:
            count = (rows.stop - rows.start) * (cols.stop - cols.start)
            gx[:, :, rows, cols] += gy[:, :, oh, ow, None, None] / count
        return gx

    def _bins(self, in_size):
        h, w = in_size
        size = self.output_size
        size = (size, size) if isinstance(size, int) else tuple(size)
        out_h, out_w = (h if size[0] is None else size[0]), (w if size[1] is None else size[1])
        if out_h <= 0 or out_w <= 0:
            raise ValueError(f"adaptive_avg_pool2d: output_size must be positive, got {size}")
        self.out_size = (out_h, out_w)
        for oh in range(out_h):
            rows = slice(oh * h // out_h, _ceil_div((oh + 1) * h, out_h))
            for ow in range(out_w):
                yield oh, ow, rows, slice(ow * w // out_w, _ceil_div((ow + 1) * w, out_w))


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _data_4d(op: str, x):
    """The array of a Tensor (or the array itself), after a check that it is 4-D."""
    x = _array(x)
    _require_ndim(op, "input", x, 4, "(N, C, H, W)")
    return x


def _pool_window(op: str, x, kernel_size, stride, padding) -> Window2d:
    stride = kernel_size if stride is None else stride
    return Window2d.of(op, x.shape, kernel_size, stride, padding, max_padding="half")


def max_pool2d_simple(input, kernel_size, stride=None, padding=0):
    """:func:`max_pool2d` as operations autograd already knows (DeZero's
    ``pooling_simple``)::

        cols = im2col(x), padding -inf         # (C*kh*kw, N*OH*OW): backward is col2im
        y    = max over each window's kh*kw    # Max: dy goes to the first maximum
        y    -> (N, C, OH, OW)

    The same values and gradients as :class:`MaxPool2d`, whose backward is written out.
    """
    win = _pool_window("max_pool2d_simple", _data_4d("max_pool2d_simple", input), kernel_size,
                       stride, padding)  # fmt: skip
    cols = im2col(input, (win.kh, win.kw), (win.sh, win.sw), (win.ph, win.pw), float("-inf"))
    y = cols.reshape(win.c, win.kh * win.kw, -1).max(axis=1)  # (C, N*OH*OW)
    return y.reshape(win.c, win.n, win.oh, win.ow).transpose(1, 0, 2, 3)


def max_pool2d(input, kernel_size, stride=None, padding=0):
    """Max pooling, as ``torch.nn.functional.max_pool2d``; ``stride`` defaults to the kernel."""
    return MaxPool2d(kernel_size, stride, padding)(input)


def avg_pool2d(input, kernel_size, stride=None, padding=0, count_include_pad=True):
    """Average pooling, as ``torch.nn.functional.avg_pool2d``; ``stride`` defaults to the kernel."""
    return AvgPool2d(kernel_size, stride, padding, count_include_pad)(input)


def adaptive_avg_pool2d(input, output_size):
    """Average pooling to ``output_size`` (int or pair), as ``torch.nn.functional.adaptive_avg_pool2d``."""
    return AdaptiveAvgPool2d(output_size)(input)
