"""Reductions: sum and mean over some axes (all of them by default), max over one."""

from __future__ import annotations

from ..backend import get_array_module
from ..tensor import Function


def _normalize_axes(op: str, axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"{op}: axis {a} is out of range for a {ndim}-D input")
    return tuple(sorted(a % ndim for a in axes))


class Sum(Function):
    """``y = x.sum(axes)``; every summed element receives the output's gradient."""

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.x_shape = x.shape
        self.axes = _normalize_axes(self.op_name, self.axis, x.ndim)
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy):
        if not self.keepdims:  # put the summed axes back as length 1, then broadcast
            gy = gy.reshape([1 if k in self.axes else n for k, n in enumerate(self.x_shape)])
        return get_array_module(gy).broadcast_to(gy, self.x_shape)


class Mean(Sum):
    """``y = x.mean(axes)`` = sum / count; each element receives gy / count."""

    def forward(self, x):
        y = super().forward(x)
        self.count = x.size // (y.size or 1)
        return y / self.count

    def backward(self, gy):
        return super().backward(gy / self.count)


class Max(Function):
    """``y = x.max(axis)`` over one axis; each output's gradient goes to the element that
    was the maximum (the first, when several tie; a NaN wins, as in NumPy)."""

    name = "max"

    def __init__(self, axis: int, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        (self.axis,) = _normalize_axes(self.op_name, self.axis, x.ndim)
        self.x_shape = x.shape
        self.argmax = x.argmax(axis=self.axis)
        return x.max(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        xp = get_array_module(gy)
        if self.keepdims:
            gy = gy.squeeze(self.axis)
        positions = xp.arange(self.x_shape[self.axis]).reshape(
            [-1 if k == self.axis else 1 for k in range(len(self.x_shape))]
        )
        winners = xp.expand_dims(self.argmax, self.axis) == positions  # one True per window
        return xp.where(winners, xp.expand_dims(gy, self.axis), gy.dtype.type(0))


def sum(x, axis=None, keepdims=False):  # noqa: A001 - the name the reader expects
    return Sum(axis, keepdims)(x)


def mean(x, axis=None, keepdims=False):
    return Mean(axis, keepdims)(x)


def max(x, axis: int, keepdims=False):  # noqa: A001 - the name the reader expects
    """The maximum over one axis, with a gradient."""
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise TypeError(f"max: axis must be one int, got {axis!r}")
    return Max(axis, keepdims)(x)
