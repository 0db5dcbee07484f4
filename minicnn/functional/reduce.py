"""Reductions: sum and mean over some axes (all of them by default)."""

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
        self.count = x.size // max(y.size, 1)
        return y / self.count

    def backward(self, gy):
        return super().backward(gy / self.count)


def sum(x, axis=None, keepdims=False):  # noqa: A001 - the name the reader expects
    return Sum(axis, keepdims)(x)


def mean(x, axis=None, keepdims=False):
    return Mean(axis, keepdims)(x)
