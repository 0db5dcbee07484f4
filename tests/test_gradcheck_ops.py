"""Every Function's backward is the derivative of its forward: numerical gradient checks
(float64, central differences, minicnn.gradcheck) on small shapes, on every backend.

Here the element-wise arithmetic and the reductions, and the checker itself: it must
catch a wrong backward. The chapter's operations have theirs beside their other checks,
one file per operation in tests/ops/ (conv2d, pooling, batch norm, the activations,
dropout, linear, concatenation, cross-entropy).
"""

from __future__ import annotations

import numpy as np
import pytest
from op_checks import check_gradients, normal, positive

import minicnn as mc
from minicnn import functional as F
from minicnn.gradcheck import GradcheckError, gradcheck

CASES = {
    # element-wise
    "add_broadcast": (F.add, [normal(2, 3), normal(3)]),
    "sub_broadcast": (F.sub, [normal(2, 1), normal(1, 3)]),
    "mul_broadcast": (F.mul, [normal(2, 3, 1), normal(3, 4)]),
    "div": (F.div, [normal(2, 3), positive(2, 3)]),
    "div_broadcast": (
        F.div,
        [
            normal(
                3,
            ),
            positive(2, 1),
        ],
    ),
    "neg": (F.neg, [normal(2, 3)]),
    "pow_2": (lambda x: x**2, [normal(2, 3)]),
    "pow_3": (lambda x: F.pow(x, 3), [normal(2, 3)]),
    "pow_half": (lambda x: x**0.5, [positive(2, 3)]),
    "pow_minus_2": (lambda x: x**-2, [positive(2, 3)]),
    "exp": (F.exp, [normal(2, 3)]),
    "log": (F.log, [positive(2, 3)]),
    # reductions
    "sum": (lambda x: x.sum(), [normal(2, 3)]),
    "sum_axis_keepdims": (lambda x: x.sum(axis=(0, 2), keepdims=True), [normal(2, 3, 2)]),
    "mean": (lambda x: x.mean(), [normal(2, 3)]),
    "mean_axis": (lambda x: x.mean(axis=-1), [normal(2, 3, 2)]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_gradcheck(backend, rng, case):
    check_gradients(CASES[case], rng)


def test_gradcheck_of_a_larger_input_uses_random_directions(backend, rng):
    """Above ``elementwise_limit`` elements gradcheck probes random directions instead."""
    x = mc.tensor(rng.standard_normal((2, 3, 8, 8)), requires_grad=True)
    w = mc.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    assert gradcheck(lambda x, w: F.conv2d(x, w, stride=2, padding=1), [x, w], directions=4)
    assert gradcheck(lambda x, w: F.relu(F.conv2d(x, w)).sum(), [x, w], joint=True)


# ---- the checker itself: it must catch a wrong backward --------------------------------------
class _WrongSquare(mc.Function):
    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, gy):
        return gy * self.x  # missing the factor 2


@pytest.mark.parametrize("size", [(2, 3), (20, 20)], ids=["elementwise", "directions"])
def test_gradcheck_catches_a_wrong_backward(rng, size):
    x = mc.tensor(rng.standard_normal(size), requires_grad=True)
    with pytest.raises(GradcheckError, match="analytic .* numeric"):
        gradcheck(lambda x: _WrongSquare()(x), [x])


def test_gradcheck_catches_a_wrong_backward_jointly(rng):
    x = mc.tensor(rng.standard_normal(5), requires_grad=True)
    with pytest.raises(GradcheckError, match="moved together"):
        gradcheck(lambda x: _WrongSquare()(x), [x], joint=True)


def test_gradcheck_needs_float64_inputs_that_require_grad():
    x32 = mc.tensor(np.ones(3, np.float32), requires_grad=True)
    with pytest.raises(TypeError, match="float32; finite differences need float64"):
        gradcheck(F.exp, [x32])
    with pytest.raises(ValueError, match="no input requires grad"):
        gradcheck(F.exp, [mc.tensor(np.ones(3))])


def test_gradcheck_restores_inputs_and_grads(rng):
    xv = rng.standard_normal((2, 3))
    x = mc.tensor(xv, requires_grad=True)
    x.grad = mc.tensor(np.full((2, 3), 5.0))
    gradcheck(F.tanh, [x])
    np.testing.assert_array_equal(x.numpy(), xv)
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 5.0))
