"""The layers of the chapter, each a thin Module around a function of
:mod:`minicnn.functional`. Arguments, defaults and initialisation follow PyTorch's."""

from __future__ import annotations

import numpy

from .. import functional as F
from ..backend import current_backend, pair
from . import init
from .module import Module, Parameter


def _empty_parameter(*shape) -> Parameter:
    """A float32 parameter on the active backend, to be filled by an initialiser."""
    return Parameter(current_backend().xp.zeros(shape, dtype=numpy.float32))


class Linear(Module):
    """``y = x @ weight.T + bias``; weight (out_features, in_features) and bias drawn from
    U(-1/sqrt(in_features), 1/sqrt(in_features)), PyTorch's default."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = _empty_parameter(out_features, in_features)
        self.bias = _empty_parameter(out_features) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.default_init_(self.weight, self.bias)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Conv2d(Module):
    """2-D convolution (D2L 7.2-7.4): weight (out_channels, in_channels, kh, kw); kernel,
    stride and padding as int or pair; PyTorch's default initialisation."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = pair(kernel_size, "kernel_size", "Conv2d")
        self.stride = pair(stride, "stride", "Conv2d")
        self.padding = pair(padding, "padding", "Conv2d")
        self.weight = _empty_parameter(out_channels, in_channels, *self.kernel_size)
        self.bias = _empty_parameter(out_channels) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.default_init_(self.weight, self.bias)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        return text + ("" if self.bias is not None else ", bias=False")


class _Pool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Max pooling (D2L 7.5); ``stride`` defaults to the kernel size."""

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_Pool2d):
    """Average pooling (D2L 7.5); ``stride`` defaults to the kernel size; padding counts
    as zeros in the average unless ``count_include_pad=False``."""

    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad=True):
        super().__init__(kernel_size, stride, padding)
        self.count_include_pad = count_include_pad

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.count_include_pad)


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed ``output_size``; (1, 1) is global average pooling (NiN)."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class _BatchNorm(Module):
    """Batch normalization (D2L 8.5): weight 1, bias 0, running mean 0 and variance 1;
    ``num_batches_tracked`` counts training batches (a PyTorch buffer, kept for its keys)."""

    expected_ndims: tuple[int, ...]

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        xp = current_backend().xp
        self.weight = Parameter(xp.ones(num_features, dtype=numpy.float32))
        self.bias = Parameter(xp.zeros(num_features, dtype=numpy.float32))
        self.register_buffer("running_mean", xp.zeros(num_features, dtype=numpy.float32))
        self.register_buffer("running_var", xp.ones(num_features, dtype=numpy.float32))
        self.register_buffer("num_batches_tracked", xp.zeros((), dtype=numpy.int64))

    def forward(self, x):
        if x.ndim not in self.expected_ndims:
            raise ValueError(
                f"{type(self).__name__}: expected a {' or '.join(f'{n}-D' for n in self.expected_ndims)} "
                f"input, got shape {x.shape}"
            )
        if self.training:
            self.num_batches_tracked.data += 1
        return F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training,
            self.momentum,
            self.eps,
        )

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    """Batch norm after a fully connected layer: statistics over the batch, input (N, C)."""

    expected_ndims = (2,)


class BatchNorm2d(_BatchNorm):
    """Batch norm after a convolution: statistics over (N, H, W) per channel, input (N, C, H, W)."""

    expected_ndims = (4,)


class Dropout(Module):
    """Inverted dropout with probability ``p`` in training; the identity in evaluation."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be between 0 and 1, got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Flatten(Module):
    """Flatten every axis but the batch axis: (N, C, H, W) -> (N, C*H*W)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)


class CrossEntropyLoss(Module):
    """Softmax cross-entropy between logits (N, classes) and class indices (N,)."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.reduction)
