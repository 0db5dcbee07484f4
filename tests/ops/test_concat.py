"""Concatenation along channels (F.cat: GoogLeNet's Inception blocks, DenseNet's dense
blocks), and the shape operations around it: reshape, transpose, flatten, indexing. In
this order:

1. the gradients: equal to central differences (float64, minicnn.gradcheck);
2. PyTorch: forward and gradients equal torch's.

No loops to compare and no fast path: these copy or view, on every backend.
"""

from __future__ import annotations

import pytest
from op_checks import check_against_torch, check_gradients, normal

from minicnn import functional as F

# ==== 1. the gradients ====================================================================
GRADCHECK_CASES = {
    # shapes
    "reshape": (lambda x: F.reshape(x, (3, -1)), [normal(2, 3, 2)]),
    "transpose": (lambda x: F.transpose(x, (1, 2, 0)), [normal(2, 3, 2)]),
    "transpose_reverse": (lambda x: x.T, [normal(2, 3)]),
    "flatten": (lambda x: F.flatten(x, 1), [normal(2, 2, 2, 3)]),
    "getitem_slice": (lambda x: x[1:, ::2], [normal(3, 4)]),
    "getitem_repeated": (lambda x: x[[0, 2, 2, 1, 0]], [normal(3, 2)]),
    "getitem_int": (lambda x: x[1, :, -1], [normal(2, 3, 2)]),
    "cat_dim0": (lambda a, b: F.cat([a, b], 0), [normal(1, 3), normal(2, 3)]),
    "cat_dim1_three": (
        lambda a, b, c: F.cat([a, b, c], 1),
        [normal(2, 1, 2), normal(2, 2, 2), normal(2, 1, 2)],
    ),
    "cat_last_dim": (lambda a, b: F.cat([a, b], -1), [normal(2, 2), normal(2, 3)]),
    "cat_same_tensor": (lambda a: F.cat([a, a * 2], 0), [normal(2, 2)]),
}


@pytest.mark.parametrize("case", list(GRADCHECK_CASES))
def test_gradcheck(backend, rng, case):
    check_gradients(GRADCHECK_CASES[case], rng)


# ==== 2. PyTorch ==========================================================================
TORCH_CASES = {
    # shapes
    "reshape": (lambda F, a: F.reshape(a, (4, -1)), [normal(2, 3, 4)]),
    "reshape_method": (lambda F, a: a.reshape(6, 4), [normal(2, 3, 4)]),
    "transpose": (lambda F, a: F.transpose(a, (2, 0, 1)), [normal(2, 3, 4)]),
    "T": (lambda F, a: a.T * 1, [normal(2, 3)]),
    "flatten": (lambda F, a: F.flatten(a, 1), [normal(2, 3, 2, 2)]),
    "flatten_middle": (lambda F, a: F.flatten(a, 1, 2), [normal(2, 3, 2, 2)]),
    "getitem_slices": (lambda F, a: a[1:, ::2, -1], [normal(3, 4, 2)]),
    "getitem_repeated_index": (lambda F, a: a[[0, 2, 0, 0]], [normal(3, 2)]),
    "cat_dim0": (
        lambda F, a, b, c: F.cat([a, b, c], 0),
        [normal(1, 3), normal(2, 3), normal(3, 3)],
    ),
    "cat_dim1": (lambda F, a, b: F.cat([a, b], 1), [normal(2, 3, 2, 2), normal(2, 1, 2, 2)]),
    "cat_last_dim": (lambda F, a, b: F.cat([a, b], -1), [normal(2, 3), normal(2, 4)]),
}


@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_matches_torch(backend, threads, torch, rng, case):
    check_against_torch(torch, TORCH_CASES[case], rng)
