"""Matrix products: ``matmul`` and the fully connected layer's ``linear``."""

from __future__ import annotations

import numpy

from ..backend import backend_of
from ..tensor import Function
from .elementwise import sum_to


class MatMul(Function):
    """``y = a @ b`` for 2-D (or batched, broadcasting) matrices.

    dL/da = gy @ b^T and dL/db = a^T @ gy, summed over broadcast batch axes.
    """

    input_names = ("a", "b")

    def forward(self, a, b):
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError(
                f"matmul: both inputs need at least 2 dimensions, got shapes "
                f"{tuple(a.shape)} and {tuple(b.shape)}"
            )
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(
                f"matmul: inner dimensions differ: a is {tuple(a.shape)}, b is {tuple(b.shape)}"
            )
        try:
            numpy.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ValueError(
                f"matmul: batch dimensions do not broadcast: a is {tuple(a.shape)}, "
                f"b is {tuple(b.shape)}"
            ) from None
        self.a, self.b = a, b
        return a @ b

    def backward(self, gy):
        a, b = self.a, self.b
        grad_a = sum_to(gy @ b.swapaxes(-1, -2), a.shape) if self.needs_input_grad[0] else None
        grad_b = sum_to(a.swapaxes(-1, -2) @ gy, b.shape) if self.needs_input_grad[1] else None
        return grad_a, grad_b


class Linear(Function):
    """``y = x @ W^T + b`` with x (N, in), W (out, in), b (out,).

    dL/dx = gy @ W,  dL/dW = gy^T @ x,  dL/db = gy summed over the batch.
    """

    input_names = ("input", "weight", "bias")

    def forward(self, x, weight, bias=None):
        if x.ndim != 2:
            raise ValueError(
                f"linear: expected a 2-D input (N, in_features), got shape {tuple(x.shape)}; "
                "flatten it first"
            )
        if weight.ndim != 2 or x.shape[1] != weight.shape[1]:
            raise ValueError(
                f"linear: input has {x.shape[1]} features (shape {tuple(x.shape)}) but weight "
                f"has shape {tuple(weight.shape)} (out_features, in_features)"
            )
        if bias is not None and bias.shape != (weight.shape[0],):
            raise ValueError(
                f"linear: bias shape {tuple(bias.shape)} does not match {weight.shape[0]} outputs"
            )
        self.x, self.weight, self.backend = x, weight, backend_of(x)
        y = self.backend.matmul(x, weight.T)
        if bias is not None:
            y += bias
        return y

    def backward(self, gy):
        grad_x = self.backend.matmul(gy, self.weight) if self.needs_input_grad[0] else None
        grad_w = self.backend.matmul(gy.T, self.x) if self.needs_input_grad[1] else None
        if len(self.needs_input_grad) == 3:
            return grad_x, grad_w, gy.sum(axis=0)
        return grad_x, grad_w


def matmul(a, b):
    return MatMul()(a, b)


def linear(input, weight, bias=None):
    """``input @ weight.T + bias``, as ``torch.nn.functional.linear``."""
    args = (input, weight) if bias is None else (input, weight, bias)
    return Linear()(*args)
