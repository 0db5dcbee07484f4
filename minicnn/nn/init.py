"""Weight initialisation, in place, with PyTorch's formulas.

For a weight of shape (out, in) or (out, in, kh, kw):
``fan_in = in * kh * kw`` and ``fan_out = out * kh * kw``.

- :func:`xavier_uniform_`: U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)) (the book's
  training recipe uses it on every Conv2d and Linear weight);
- :func:`kaiming_uniform_` / :func:`kaiming_normal_`: b = gain * sqrt(3 / fan), std = gain / sqrt(fan);
- :func:`default_init_`: what PyTorch's Conv2d and Linear do when built:
  kaiming_uniform_(a=sqrt(5)) for the weight, which comes to U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
  and the same bound for the bias.

Every draw comes from the host's generator (:func:`~minicnn.backend.cpu_generator`) and
is then copied to the tensor's device, so one seed gives the same weights on every
backend: a network built on the GPU starts where the NumPy reference starts.
"""

from __future__ import annotations

import math

from ..backend import backend_of, cpu_generator


def calculate_fan_in_and_fan_out(tensor) -> tuple[int, int]:
    if tensor.ndim < 2:
        raise ValueError(
            f"init: fan in and fan out need a weight with at least 2 dimensions, got shape {tensor.shape}"
        )
    receptive_field = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor that keeps activations' variance steady through ``nonlinearity``."""
    if nonlinearity in ("linear", "conv2d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope**2))
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _fill(tensor, values):
    """Write float64 host draws into ``tensor``, in its own dtype and on its device."""
    tensor.data[...] = backend_of(tensor.data).asarray(values.astype(tensor.dtype))
    return tensor


def uniform_(tensor, a: float = 0.0, b: float = 1.0):
    """Fill with U(a, b)."""
    draws = cpu_generator().random(tensor.shape)
    return _fill(tensor, a + (b - a) * draws)


def normal_(tensor, mean: float = 0.0, std: float = 1.0):
    """Fill with N(mean, std^2)."""
    return _fill(tensor, mean + std * cpu_generator().standard_normal(tensor.shape))


def constant_(tensor, value: float):
    tensor.data[...] = value
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor, gain: float = 1.0):
    """Glorot & Bengio (2010): U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain: float = 1.0):
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def _kaiming_scale(tensor, a, mode, nonlinearity) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(
    tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"
):
    """He et al. (2015): U(-b, b) with b = gain * sqrt(3 / fan)."""
    bound = math.sqrt(3.0) * _kaiming_scale(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"):
    """He et al. (2015): N(0, std^2) with std = gain / sqrt(fan)."""
    return normal_(tensor, 0.0, _kaiming_scale(tensor, a, mode, nonlinearity))


def default_init_(weight, bias=None) -> None:
    """PyTorch's construction-time init of Conv2d and Linear."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        uniform_(bias, -bound, bound)
