"""Element-wise operations and activations, with NumPy broadcasting.

When ``a`` of shape (2, 3) meets ``b`` of shape (3,), ``b`` is used twice per column, so
its gradient is the sum over the broadcast axis: :func:`sum_to` is the backward of
broadcasting.
"""

from __future__ import annotations

import numpy

from ..backend import backend_of, get_array_module
from ..tensor import Function


def sum_to(grad, shape: tuple[int, ...]):
    """Sum ``grad`` down to ``shape``, undoing NumPy broadcasting.

    Axes that broadcasting added in front are summed away; axes where ``shape`` has 1
    and ``grad`` has more are summed with ``keepdims``.
    """
    if grad.shape == tuple(shape):
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + k for k, n in enumerate(shape) if n == 1 and grad.shape[lead + k] != 1
    )
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


class _Broadcasting(Function):
    """A binary operation whose inputs broadcast against each other."""

    input_names = ("a", "b")

    def forward(self, a, b):
        try:
            numpy.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ValueError(
                f"{self.op_name}: shapes {tuple(a.shape)} and {tuple(b.shape)} do not broadcast"
            ) from None
        self.a_shape, self.b_shape = a.shape, b.shape
        return self.compute(a, b)


class Add(_Broadcasting):
    def compute(self, a, b):
        return a + b

    def backward(self, gy):
        return sum_to(gy, self.a_shape), sum_to(gy, self.b_shape)


class Sub(_Broadcasting):
    def compute(self, a, b):
        return a - b

    def backward(self, gy):
        return sum_to(gy, self.a_shape), sum_to(-gy, self.b_shape)


class Mul(_Broadcasting):
    def compute(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, gy):
        grad_a = sum_to(gy * self.b, self.a_shape) if self.needs_input_grad[0] else None
        grad_b = sum_to(gy * self.a, self.b_shape) if self.needs_input_grad[1] else None
        return grad_a, grad_b


class Div(_Broadcasting):
    def compute(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, gy):
        grad_a = sum_to(gy / self.b, self.a_shape) if self.needs_input_grad[0] else None
        grad_b = (
            sum_to(-gy * self.a / (self.b * self.b), self.b_shape)
            if self.needs_input_grad[1]
            else None
        )
        return grad_a, grad_b


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Pow(Function):
    """``x ** c`` for a constant number ``c``: d/dx = c * x ** (c - 1)."""

    def __init__(self, exponent):
        self.exponent = exponent

    def forward(self, x):
        self.x = x
        return x**self.exponent

    def backward(self, gy):
        c = self.exponent
        return gy * c * self.x ** (c - 1)


class Exp(Function):
    def forward(self, x):
        self.y = get_array_module(x).exp(x)
        return self.y

    def backward(self, gy):
        return gy * self.y


class Log(Function):
    def forward(self, x):
        self.x = x
        return get_array_module(x).log(x)

    def backward(self, gy):
        return gy / self.x


class ReLU(Function):
    """``max(x, 0)``; the gradient passes where x > 0 (0 at x = 0, as in PyTorch).

    Backward reads the output (y > 0 exactly where x > 0), which the next layer keeps
    anyway, instead of keeping a mask of its own.
    """

    name = "relu"

    def forward(self, x):
        self.backend = backend_of(x)
        self.y = self.backend.relu(x)  # max(x, 0), not x * mask: -inf * 0 is nan
        return self.y

    def backward(self, gy):
        return self.backend.relu_backward(gy, self.y)  # gy * (y > 0)


class Sigmoid(Function):
    """``1 / (1 + exp(-x))``, computed from ``e = exp(-|x|)`` as ``1 / (1 + e)`` for x >= 0
    and ``e / (1 + e)`` for x < 0, so it never overflows and keeps full relative precision
    for very negative x (``(1 + tanh(x/2)) / 2`` cancels to 0 there); d/dx = y (1 - y).
    """

    def forward(self, x):
        self.backend = backend_of(x)
        self.y = self.backend.sigmoid(x)
        return self.y

    def backward(self, gy):
        return self.backend.sigmoid_backward(gy, self.y)  # gy * y * (1 - y)


class Tanh(Function):
    def forward(self, x):
        self.y = get_array_module(x).tanh(x)
        return self.y

    def backward(self, gy):
        return gy * (1 - self.y * self.y)


class AsType(Function):
    """Change dtype (float32 <-> float64); the gradient changes back."""

    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        self.source_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy):
        return gy.astype(self.source_dtype)


def add(a, b):
    return Add()(a, b)


def sub(a, b):
    return Sub()(a, b)


def mul(a, b):
    return Mul()(a, b)


def div(a, b):
    return Div()(a, b)


def neg(x):
    return Neg()(x)


def pow(x, exponent):
    """``x ** exponent`` for a number ``exponent``."""
    if isinstance(exponent, numpy.generic) and exponent.ndim == 0:
        exponent = exponent.item()  # a Python number, so float32 stays float32 (NEP 50)
    if not isinstance(exponent, int | float) or isinstance(exponent, bool):
        raise TypeError(f"pow: exponent must be a number, got {type(exponent).__name__}")
    return Pow(exponent)(x)


def exp(x):
    return Exp()(x)


def log(x):
    return Log()(x)


def relu(x):
    return ReLU()(x)


def sigmoid(x):
    return Sigmoid()(x)


def tanh(x):
    return Tanh()(x)


def astype(x, dtype):
    return AsType(numpy.dtype(dtype))(x)
