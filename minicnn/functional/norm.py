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

from ..backend import get_array_module
from ..tensor import Function, Tensor


class BatchNorm(Function):
    """Training-mode backward, fused: with g = dL/dx_hat = dy * weight,

        dx = (g - mean(g) - x_hat * mean(g * x_hat)) / sqrt(var + eps)
        dweight = sum(dy * x_hat),   dbias = sum(dy)

    (means and sums over the normalised axes). In evaluation the statistics are
    constants, so dx = g / sqrt(running_var + eps).
    """

    name = "batch_norm"
    input_names = ("input", "weight", "bias")

    def __init__(self, running_mean, running_var, training, momentum, eps, affine):
        self.running_mean, self.running_var = running_mean, running_var
        self.training, self.momentum, self.eps, self.affine = training, momentum, eps, affine

    def forward(self, x, weight=None, bias=None):
        xp = get_array_module(x)
        self.axes, param_shape = self._layout(x, weight, bias)
        if self.training:
            count = x.size // x.shape[1]
            if count <= 1:
                raise ValueError(
                    f"batch_norm: training needs more than 1 value per channel, got input shape "
                    f"{tuple(x.shape)}"
                )
            mean = x.mean(axis=self.axes, keepdims=True)
            centered = x - mean
            var = (centered * centered).mean(axis=self.axes, keepdims=True)
            self._update_running(mean, var, count)
        else:
            mean = self.running_mean.reshape(param_shape)
            var = self.running_var.reshape(param_shape)
            centered = x - mean
        self.inv_std = 1 / xp.sqrt(var + self.eps)
        self.x_hat = centered * self.inv_std
        if not self.affine:
            return self.x_hat
        self.weight = weight.reshape(param_shape)
        return self.x_hat * self.weight + bias.reshape(param_shape)

    def backward(self, gy):
        g = gy * self.weight if self.affine else gy
        if self.training:
            mean_g = g.mean(axis=self.axes, keepdims=True)
            mean_g_xhat = (g * self.x_hat).mean(axis=self.axes, keepdims=True)
            grad_x = (g - mean_g - self.x_hat * mean_g_xhat) * self.inv_std
        else:
            grad_x = g * self.inv_std
        if not self.affine:
            return grad_x
        grad_weight = (gy * self.x_hat).sum(axis=self.axes)
        grad_bias = gy.sum(axis=self.axes)
        return grad_x, grad_weight, grad_bias

    def _layout(self, x, weight, bias):
        """The axes to normalise over and the broadcast shape of per-channel values."""
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
        if x.ndim == 2:
            return (0,), (1, channels)
        return (0, 2, 3), (1, channels, 1, 1)

    def _update_running(self, mean, var, count):
        """In place, so that the module's buffers see the new values."""
        m = self.momentum
        if self.running_mean is not None:
            self.running_mean *= 1 - m
            self.running_mean += m * mean.reshape(-1)
        if self.running_var is not None:
            self.running_var *= 1 - m
            self.running_var += m * var.reshape(-1) * (count / (count - 1))


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
