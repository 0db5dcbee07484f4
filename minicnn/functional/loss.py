"""Softmax, its logarithm, and the cross-entropy loss (D2L 4.1-4.4)."""

from __future__ import annotations

from ..backend import backend_of, get_array_module
from ..tensor import Function, Tensor


def _log_softmax(x, axis):
    """``x - logsumexp(x)``, shifted by the maximum first so exp never overflows."""
    xp = get_array_module(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


class LogSoftmax(Function):
    """``y = x - log(sum(exp(x)))`` along ``dim``; dx = dy - softmax(x) * sum(dy)."""

    name = "log_softmax"

    def __init__(self, dim):
        self.dim = dim

    def forward(self, x):
        if not -x.ndim <= self.dim < x.ndim:
            raise ValueError(
                f"log_softmax: dim {self.dim} is out of range for shape {tuple(x.shape)}"
            )
        self.y = _log_softmax(x, self.dim)
        return self.y

    def backward(self, gy):
        xp = get_array_module(gy)
        return gy - xp.exp(self.y) * gy.sum(axis=self.dim, keepdims=True)


class CrossEntropy(Function):
    """``loss = mean over n of -log softmax(x[n])[target[n]]`` (or the sum, or per example).

    Fused backward: dx[n] = (softmax(x[n]) - onehot(target[n])) * dloss[n].

    A target outside [0, classes) is an error on the CPU. On a GPU it makes its loss NaN
    instead (as PyTorch's CUDA kernels assert later, not at the call): checking there
    would copy the targets' range to the host and wait for the device, every step.
    """

    name = "cross_entropy"
    input_names = ("input",)  # the target is an argument of __init__, not a graph input

    def __init__(self, target, reduction):
        self.target, self.reduction = target, reduction

    def forward(self, x):
        xp = get_array_module(x)
        target = self.target
        self._check(x, target)
        n = x.shape[0]
        self.log_p = _log_softmax(x, 1)
        losses = -self.log_p[xp.arange(n), target]
        if _on_device(x):
            losses = xp.where((target >= 0) & (target < x.shape[1]), losses, xp.nan)
        if self.reduction == "none":
            return losses
        return losses.sum() / n if self.reduction == "mean" else losses.sum()

    def backward(self, gy):
        xp = get_array_module(gy)
        n = self.log_p.shape[0]
        grad = xp.exp(self.log_p)
        grad[xp.arange(n), self.target] -= 1
        if self.reduction == "none":
            return grad * gy[:, None]
        return grad * (gy / n if self.reduction == "mean" else gy)

    def _check(self, x, target):
        if x.ndim != 2:
            raise ValueError(
                f"cross_entropy: expected input of shape (N, classes), got {tuple(x.shape)}"
            )
        if target.ndim != 1 or target.shape[0] != x.shape[0]:
            raise ValueError(
                f"cross_entropy: expected target of shape ({x.shape[0]},) for input "
                f"{tuple(x.shape)}, got {tuple(target.shape)}"
            )
        if type(target) is not type(x):
            raise TypeError(
                f"cross_entropy: input is a {type(x).__module__} array but target is a "
                f"{type(target).__module__} one; put both on one device"
            )
        if target.dtype.kind not in "iu":
            raise TypeError(
                f"cross_entropy: target must hold integer class indices, got dtype {target.dtype}"
            )
        if _on_device(x):
            return  # the range is checked on the device, in forward
        if target.size and (int(target.min()) < 0 or int(target.max()) >= x.shape[1]):
            raise ValueError(
                f"cross_entropy: target values must lie in [0, {x.shape[1] - 1}], got "
                f"min {int(target.min())}, max {int(target.max())}"
            )


def _on_device(x) -> bool:
    return backend_of(x).device != "cpu"


def log_softmax(input, dim):
    return LogSoftmax(dim)(input)


def softmax(input, dim):
    """``exp(log_softmax(input, dim))``."""
    return log_softmax(input, dim).exp()


def cross_entropy(input, target, reduction="mean"):
    """As ``torch.nn.functional.cross_entropy`` with class-index targets."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(
            f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}"
        )
    target = target.data if isinstance(target, Tensor) else target
    if not hasattr(target, "ndim"):
        target = get_array_module(input.data if isinstance(input, Tensor) else input).asarray(
            target
        )
    return CrossEntropy(target, reduction)(input)
