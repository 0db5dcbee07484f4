"""Numerical gradient checking: is every backward the true derivative of its forward?

The output of ``fn`` is reduced to a scalar with fixed random weights,
``L = sum(fn(*inputs) * R)``, so every output element counts. Then for each input
(float64, since finite differences lose half the digits):

- small inputs, element by element, by central differences::

      dL/dx[k] ~ (L(x + eps e_k) - L(x - eps e_k)) / (2 eps)

- large inputs, along a few random unit directions d (a directional derivative)::

      <dL/dx, d> ~ (L(x + eps d) - L(x - eps d)) / (2 eps)

and each estimate must equal what ``backward`` computed, within ``atol + rtol * |value|``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy

from .tensor import Tensor


class GradcheckError(AssertionError):
    """Raised when an analytic gradient differs from its finite-difference estimate."""


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence[Tensor],
    *,
    eps: float = 1e-6,
    atol: float = 1e-6,
    rtol: float = 1e-4,
    elementwise_limit: int = 128,
    directions: int = 3,
    joint: bool = False,
    seed: int = 0,
) -> bool:
    """Check the gradients of ``fn(*inputs)`` with respect to every input that requires them.

    ``inputs`` are perturbed in place (and restored), so ``fn`` may also close over them
    and ignore its arguments, e.g. ``gradcheck(lambda *p: loss(net(x)), list(net.parameters()))``.
    With ``joint=True`` all inputs move together along ``directions`` random directions:
    the cheap check for a whole network. Returns True or raises :class:`GradcheckError`
    naming the worst element, the analytic and numeric values and the relative error.
    """
    inputs = list(inputs)
    checked = [k for k, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    for k in checked:
        if inputs[k].dtype != numpy.float64:
            raise TypeError(
                f"gradcheck: input {k} is {inputs[k].dtype}; finite differences need float64 "
                "(convert with .double())"
            )
    rng = numpy.random.default_rng(seed)
    first = fn(*inputs)
    xp = first.backend.xp
    weights = xp.asarray(rng.standard_normal(first.shape))

    def loss() -> float:
        return float((fn(*inputs).data * weights).sum())

    analytic = _analytic_gradients(fn, inputs, checked, weights)
    if joint:
        return _check_joint(loss, inputs, checked, analytic, rng, eps, atol, rtol, directions)
    for k in checked:
        tensor, grad = inputs[k], analytic[k]
        if tensor.size <= elementwise_limit:
            _check_elements(loss, k, tensor, grad, eps, atol, rtol)
        else:
            _check_directions(loss, k, tensor, grad, rng, eps, atol, rtol, directions)
    return True


def _analytic_gradients(fn, inputs, checked, weights) -> dict[int, numpy.ndarray]:
    saved = {k: inputs[k].grad for k in checked}
    for k in checked:
        inputs[k].grad = None
    output = fn(*inputs)
    if not output.requires_grad:
        raise ValueError("gradcheck: the output does not depend on any input that requires grad")
    output.backward(weights)
    grads = {}
    for k in checked:
        grad = inputs[k].grad
        grads[k] = numpy.zeros(inputs[k].shape) if grad is None else grad.numpy()
        inputs[k].grad = saved[k]
    return grads


def _central_difference(loss, tensor: Tensor, direction, eps: float) -> float:
    original = tensor.data.copy()
    tensor.data = original + eps * direction
    plus = loss()
    tensor.data = original - eps * direction
    minus = loss()
    tensor.data = original
    return (plus - minus) / (2 * eps)


def _check_elements(loss, k, tensor, grad, eps, atol, rtol) -> None:
    xp = tensor.backend.xp
    numeric = numpy.zeros(tensor.shape)
    for index in numpy.ndindex(*tensor.shape):
        basis = xp.zeros(tensor.shape)
        basis[index] = 1.0
        numeric[index] = _central_difference(loss, tensor, basis, eps)
    error = numpy.abs(grad - numeric)
    tolerance = atol + rtol * numpy.abs(numeric)
    if (error > tolerance).any():
        worst = numpy.unravel_index(numpy.argmax(error - tolerance), error.shape)
        raise GradcheckError(
            f"gradcheck: input {k} (shape {tensor.shape}) element {tuple(int(i) for i in worst)}: "
            f"analytic {grad[worst]:.10g}, numeric {numeric[worst]:.10g}, relative error "
            f"{_relative(grad[worst], numeric[worst]):.3g}; "
            f"{int((error > tolerance).sum())} of {error.size} elements differ"
        )


def _check_directions(loss, k, tensor, grad, rng, eps, atol, rtol, directions) -> None:
    xp = tensor.backend.xp
    for d in range(directions):
        direction = _unit(rng.standard_normal(tensor.shape))
        numeric = _central_difference(loss, tensor, xp.asarray(direction), eps)
        analytic = float((grad * direction).sum())
        if abs(analytic - numeric) > atol + rtol * abs(numeric):
            raise GradcheckError(
                f"gradcheck: input {k} (shape {tensor.shape}) along random direction {d}: "
                f"analytic {analytic:.10g}, numeric {numeric:.10g}, relative error "
                f"{_relative(analytic, numeric):.3g}"
            )


def _check_joint(loss, inputs, checked, analytic, rng, eps, atol, rtol, directions) -> bool:
    for d in range(directions):
        moves = {k: rng.standard_normal(inputs[k].shape) for k in checked}
        norm = math.sqrt(sum(float((m * m).sum()) for m in moves.values()))
        moves = {k: m / norm for k, m in moves.items()}  # one unit step over all inputs
        originals = {k: inputs[k].data.copy() for k in checked}
        xp = inputs[checked[0]].backend.xp

        def shifted(sign, moves=moves, originals=originals, xp=xp):
            for k in checked:
                inputs[k].data = originals[k] + sign * eps * xp.asarray(moves[k])
            return loss()

        numeric = (shifted(+1) - shifted(-1)) / (2 * eps)
        for k in checked:
            inputs[k].data = originals[k]
        analytic_value = sum(float((analytic[k] * moves[k]).sum()) for k in checked)
        if abs(analytic_value - numeric) > atol + rtol * abs(numeric):
            raise GradcheckError(
                f"gradcheck: {len(checked)} inputs moved together along random direction {d}: "
                f"analytic {analytic_value:.10g}, numeric {numeric:.10g}, relative error "
                f"{_relative(analytic_value, numeric):.3g}"
            )
    return True


def _unit(direction: numpy.ndarray) -> numpy.ndarray:
    """The direction scaled to length 1, so that ``eps`` is the length of the step."""
    return direction / numpy.linalg.norm(direction)


def _relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-300)
