"""Every op's forward and gradients equal PyTorch's (float64, same arrays, same random
upstream gradient), on every backend.

Each case is one function ``f(F, *inputs)`` written once and called twice: with
``F = minicnn.functional`` on minicnn tensors and with ``F`` = PyTorch (its
``torch.nn.functional``, falling back to ``torch``) on torch tensors (``run_both``,
tests/op_checks.py). The ops share names, argument order and defaults, so the same line
of code runs on both.

Here the element-wise arithmetic, the reductions, and a small network chaining the
chapter's operations. Each of those operations has its own checks against PyTorch beside
its other checks, one file per operation in tests/ops/.
"""

from __future__ import annotations

import pytest
from op_checks import check_against_torch, labels, normal, positive

CASES = {
    # element-wise, with broadcasting
    "add": (lambda F, a, b: F.add(a, b), [normal(2, 3), normal(3)]),
    "sub": (lambda F, a, b: F.sub(a, b), [normal(4, 1, 3), normal(2, 1)]),
    "mul": (lambda F, a, b: F.mul(a, b), [normal(2, 3), normal(2, 1)]),
    "div": (lambda F, a, b: F.div(a, b), [normal(2, 3), positive(3)]),
    "operators": (lambda F, a, b: (2 - a) * b / 3 + a**2 - (-b), [normal(2, 3), normal(2, 3)]),
    "neg": (lambda F, a: F.neg(a), [normal(3, 2)]),
    "pow_3": (lambda F, a: a**3, [normal(2, 3)]),
    "pow_half": (lambda F, a: a**0.5, [positive(2, 3)]),
    "pow_minus_1": (lambda F, a: a**-1, [positive(2, 3)]),
    "exp": (lambda F, a: F.exp(a), [normal(2, 3)]),
    "log": (lambda F, a: F.log(a), [positive(2, 3)]),
    # reductions
    "sum_all": (lambda F, a: F.sum(a), [normal(2, 3, 4)]),
    "sum_axis": (lambda F, a: F.sum(a, 1), [normal(2, 3, 4)]),
    "sum_axes_keepdims": (lambda F, a: F.sum(a, (0, 2), True), [normal(2, 3, 4)]),
    "mean_all": (lambda F, a: F.mean(a), [normal(2, 3, 4)]),
    "mean_negative_axis": (lambda F, a: F.mean(a, -1, True), [normal(2, 3, 4)]),
    # a small network: every op chained, the way the models use them
    "lenet_like": (
        lambda F, x, w1, b1, w2, t: F.cross_entropy(
            F.linear(F.flatten(F.max_pool2d(F.relu(F.conv2d(x, w1, b1, padding=1)), 2), 1), w2), t
        ),
        [normal(2, 1, 4, 4), normal(2, 1, 3, 3), normal(2), normal(3, 8), labels(2, 3)],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_matches_torch(backend, threads, torch, rng, case):
    check_against_torch(torch, CASES[case], rng)
