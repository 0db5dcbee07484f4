"""Batch normalization (D2L 8.5), with PyTorch's conventions.

Per channel c, over the batch (and, for images, every pixel)::

    mean = x.mean(axes)            var = ((x - mean) ** 2).mean(axes)     # biased
    x_hat = (x - mean) / sqrt(var + eps)
    y = weight * x_hat + bias

In training the batch statistics are used and the running ones move towards them:
``running = (1 - momentum) * running + momentum * batch``, where the running variance
tracks the *unbiased* batch variance (var * m / (m - 1), m values per channel). In
evaluation the running statistics stand in for the batch's.
"""

from __future__ import annotations

from ..backend import backend_of
from ..tensor import Function, Tensor


class BatchNorm(Function):
    """Training-mode backward, fused: with m values per channel,

        dx = weight / sqrt(var + eps) * (dy - mean(dy) - x_hat * mean(dy * x_hat))
        dweight = sum(dy * x_hat),   dbias = sum(dy)

    (means and sums per channel, over the normalised axes). In evaluation the statistics
    are constants, so dx = dy * weight / sqrt(running_var + eps). The per-channel sums and
    the elementwise passes are the backend's (``batch_norm_*``): NumPy array expressions,
    or one compiled loop each with Numba.
    """

    name = "batch_norm"
    input_names = ("input", "weight", "bias")

    def __init__(self, running_mean, running_var, training, momentum, eps, affine):
        self.running_mean, self.running_var = running_mean, running_var
        self.training, self.momentum, self.eps, self.affine = training, momentum, eps, affine

    def forward(self, x, weight=None, bias=None):
        self.backend = backend = backend_of(x)
        self._layout(x, weight, bias)
        if self.training:
            count = x.size // x.shape[1]
            if count <= 1:
                raise ValueError(
                    f"batch_norm: training needs more than 1 value per channel, got input shape "
                    f"{tuple(x.shape)}"
                )
            mean, var = backend.batch_norm_stats(x)
            self._update_running(mean, var, count)
        else:
            mean, var = self.running_mean, self.running_var
        self.inv_std = 1 / backend.xp.sqrt(var + x.dtype.type(self.eps))
        self.weight = weight
        self.x_hat, y = backend.batch_norm_apply(x, mean, self.inv_std, weight, bias)
        return y

    def backward(self, gy):
        scale = self.inv_std if self.weight is None else self.weight * self.inv_std
        sum_gy, sum_gy_x_hat = self.backend.batch_norm_sums(gy, self.x_hat)
        if self.training:
            count = gy.size // gy.shape[1]
            grad_x = self.backend.batch_norm_grad(
                gy, self.x_hat, scale, sum_gy / count, sum_gy_x_hat / count
            )
        else:
            zeros = self.backend.xp.zeros_like(scale)
            grad_x = self.backend.batch_norm_grad(gy, self.x_hat, scale, zeros, zeros)
        if not self.affine:
            return grad_x
        return grad_x, sum_gy_x_hat, sum_gy

    def _layout(self, x, weight, bias):
        """Check the shapes and dtypes of the input and the per-channel vectors."""
        if x.ndim not in (2, 4):
            raise ValueError(
                f"batch_norm: expected a 2-D (N, C) or 4-D (N, C, H, W) input, got shape "
                f"{tuple(x.shape)}"
            )
        channels = x.shape[1]
        for name, value in (
            ("weight", weight),
            ("bias", bias),
            ("running_mean", self.running_mean),
            ("running_var", self.running_var),
        ):
            if value is not None and tuple(value.shape) != (channels,):
                raise ValueError(
                    f"batch_norm: input has {channels} channels (shape {tuple(x.shape)}) but "
                    f"{name} has shape {tuple(value.shape)}; expected ({channels},)"
                )
            if name.startswith("running") and value is not None and value.dtype != x.dtype:
                raise TypeError(
                    f"batch_norm: input is {x.dtype} but {name} is {value.dtype}; convert "
                    "them to one float dtype (Module.float()/.double())"
                )
        if not self.training and (self.running_mean is None or self.running_var is None):
            raise ValueError("batch_norm: evaluation mode needs running_mean and running_var")

    def _update_running(self, mean, var, count):
        """In place, so that the module's buffers see the new values."""
        m = self.momentum
        if self.running_mean is not None:
            self.running_mean *= 1 - m
            self.running_mean += m * mean
        if self.running_var is not None:
            self.running_var *= 1 - m
            self.running_var += m * var * (count / (count - 1))


def batch_norm(
    input,
    running_mean,
    running_var,
    weight=None,
    bias=None,
    training=False,
    momentum=0.1,
    eps=1e-5,
):
    """As ``torch.nn.functional.batch_norm``. ``running_mean``/``running_var`` (arrays or
    tensors, or None to not track) are updated in place when ``training``."""
    running_mean = running_mean.data if isinstance(running_mean, Tensor) else running_mean
    running_var = running_var.data if isinstance(running_var, Tensor) else running_var
    if (weight is None) != (bias is None):
        raise ValueError("batch_norm: give both weight and bias, or neither")
    fn = BatchNorm(running_mean, running_var, training, momentum, eps, affine=weight is not None)
    return fn(input) if weight is None else fn(input, weight, bias)
