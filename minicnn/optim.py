"""Optimizers: they read each parameter's ``.grad`` and update ``.data`` in place.

Formulas are PyTorch's (``torch.optim``), so one step of each equals torch's.
"""

from __future__ import annotations

import math

import numpy

from .tensor import Tensor, no_grad


class Optimizer:
    def __init__(self, params, defaults: dict):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        for k, p in enumerate(self.params):
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"{type(self).__name__}: parameter {k} is a {type(p).__name__}, not a Tensor "
                    "(pass model.parameters())"
                )
        self.defaults = defaults
        for name, value in defaults.items():
            setattr(self, name, value)
        self.state: dict[int, dict] = {}  # parameter index -> its buffers

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        with no_grad():
            for index, p in enumerate(self.params):
                if p.grad is not None:
                    self.update(p, p.grad.data, self.state.setdefault(index, {}))

    def update(self, param: Tensor, grad, state: dict) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Hyper-parameters and per-parameter buffers as NumPy arrays (for checkpoints)."""
        return {
            "hyperparameters": {name: getattr(self, name) for name in self.defaults},
            "state": {
                index: {k: _host_copy(v) for k, v in buffers.items()}
                for index, buffers in self.state.items()
            },
        }

    def load_state_dict(self, state_dict: dict) -> None:
        for name, value in state_dict["hyperparameters"].items():
            setattr(self, name, value)
        self.state = {}
        for index, buffers in state_dict["state"].items():
            backend = self.params[int(index)].backend
            self.state[int(index)] = {
                k: backend.asarray(v).copy() if isinstance(v, numpy.ndarray) else v
                for k, v in buffers.items()
            }


class SGD(Optimizer):
    """Stochastic gradient descent (D2L 12.4), optionally with momentum and weight decay::

        g = grad + weight_decay * p
        v = momentum * v + g          (v = g on the first step)
        p = p - lr * v                (p - lr * (g + momentum * v) with Nesterov)

    The book's recipe is plain SGD: ``p = p - lr * grad``.
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False):  # fmt: skip
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(
                f"SGD: lr, momentum and weight_decay must be >= 0, got {lr}, {momentum}, {weight_decay}"
            )
        if nesterov and momentum == 0:
            raise ValueError("SGD: nesterov=True needs a momentum > 0")
        super().__init__(
            params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
        )

    def update(self, param, grad, state):
        if self.weight_decay:
            grad = grad + self.weight_decay * param.data
        if self.momentum:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = grad.copy()
            else:
                state["momentum_buffer"] *= self.momentum
                state["momentum_buffer"] += grad
            velocity = state["momentum_buffer"]
            grad = grad + self.momentum * velocity if self.nesterov else velocity
        param.backend.axpy(-self.lr, grad, param.data)  # p -= lr * grad, in place


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015)::

        m = beta1 * m + (1 - beta1) * g          v = beta2 * v + (1 - beta2) * g^2
        p = p - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):  # fmt: skip
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError(
                f"Adam: lr, eps and weight_decay must be >= 0, got {lr}, {eps}, {weight_decay}"
            )
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"Adam: betas must be two numbers in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def update(self, param, grad, state):
        beta1, beta2 = self.betas
        if self.weight_decay:
            grad = grad + self.weight_decay * param.data
        if not state:
            state["step"] = 0
            state["exp_avg"] = param.backend.xp.zeros_like(param.data)
            state["exp_avg_sq"] = param.backend.xp.zeros_like(param.data)
        state["step"] += 1
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * grad * grad
        bias_correction1 = 1 - beta1 ** state["step"]
        bias_correction2 = 1 - beta2 ** state["step"]
        denom = param.backend.xp.sqrt(v) / math.sqrt(bias_correction2) + self.eps
        param.data -= (self.lr / bias_correction1) * (m / denom)


def _host_copy(value):
    """A NumPy copy of a buffer (the optimizer keeps updating its own in place)."""
    if hasattr(value, "__cuda_array_interface__"):
        return value.get()
    return value.copy() if isinstance(value, numpy.ndarray) else value
