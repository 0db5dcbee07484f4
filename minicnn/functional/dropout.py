"""Dropout (D2L 5.6), inverted: zero each value with probability p and scale the
survivors by 1 / (1 - p) in training, so that evaluation is the identity."""

from __future__ import annotations

from ..backend import backend_of
from ..tensor import Function


class Dropout(Function):
    """``y = x * mask / (1 - p)`` with ``mask`` ~ Bernoulli(1 - p); dx = dy * mask / (1 - p)."""

    def __init__(self, p):
        self.p = p

    def forward(self, x):
        if self.p == 1:
            self.scale = backend_of(x).xp.zeros_like(x)
            return x * self.scale
        draws = backend_of(x).generator().random(x.shape, dtype=x.dtype)
        self.scale = (draws >= self.p) * x.dtype.type(1 / (1 - self.p))
        return x * self.scale

    def backward(self, gy):
        return gy * self.scale


def dropout(input, p=0.5, training=True):
    """As ``torch.nn.functional.dropout``: identity unless ``training``."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be between 0 and 1, got {p}")
    if not training or p == 0:
        return input
    return Dropout(p)(input)
