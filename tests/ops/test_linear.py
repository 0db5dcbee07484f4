"""The fully connected layer's operations: matmul, and linear (x @ W^T + b). In this order:

1. the gradients: equal to central differences (float64, minicnn.gradcheck), batched
   and broadcast products too, with and without a bias;
2. PyTorch: forward and gradients equal torch's.

No loops to compare and no fast path: one BLAS product, on every backend.
"""

from __future__ import annotations

import pytest
from op_checks import check_against_torch, check_gradients, normal

from minicnn import functional as F

# ==== 1. the gradients ====================================================================
GRADCHECK_CASES = {
    # products
    "matmul": (F.matmul, [normal(3, 4), normal(4, 2)]),
    "matmul_batch": (F.matmul, [normal(2, 3, 4), normal(2, 4, 2)]),
    "matmul_broadcast_batch": (F.matmul, [normal(2, 1, 2, 3), normal(3, 3, 2)]),
    "matmul_broadcast_left": (F.matmul, [normal(3, 4), normal(2, 4, 2)]),
    "linear": (F.linear, [normal(4, 3), normal(2, 3), normal(2)]),
    "linear_no_bias": (F.linear, [normal(4, 3), normal(2, 3)]),
}


@pytest.mark.parametrize("case", list(GRADCHECK_CASES))
def test_gradcheck(backend, rng, case):
    check_gradients(GRADCHECK_CASES[case], rng)


# ==== 2. PyTorch ==========================================================================
TORCH_CASES = {
    # products
    "matmul": (lambda F, a, b: F.matmul(a, b), [normal(3, 4), normal(4, 2)]),
    "matmul_batch": (lambda F, a, b: F.matmul(a, b), [normal(2, 3, 4), normal(2, 4, 5)]),
    "matmul_broadcast": (lambda F, a, b: a @ b, [normal(2, 1, 3, 4), normal(3, 4, 2)]),
    "matmul_broadcast_left": (lambda F, a, b: a @ b, [normal(3, 4), normal(2, 4, 5)]),
    "linear": (lambda F, x, w, b: F.linear(x, w, b), [normal(5, 4), normal(3, 4), normal(3)]),
    "linear_no_bias": (lambda F, x, w: F.linear(x, w), [normal(5, 4), normal(3, 4)]),
}


@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_matches_torch(backend, threads, torch, rng, case):
    check_against_torch(torch, TORCH_CASES[case], rng)
