"""The activations: ReLU and the sigmoid (D2L 5.1), and tanh. In this order:

1. the gradients: equal to central differences (float64, minicnn.gradcheck; ReLU's
   inputs at least 0.1 away from its kink at 0);
2. PyTorch: forward and gradients equal torch's; the sigmoid to full relative precision
   far from zero, ReLU of infinities and NaN;
3. the fast paths: the numba backend's compiled ReLU and sigmoid, forward and backward
   (block by block too), equal the numpy backend's kernels bit for bit.

No loops to compare: each is one element-wise expression.
"""

from __future__ import annotations

import numpy as np
import pytest
from kernel_checks import NUMBA, NUMPY, dtypes, numba_threads, random
from numpy.testing import assert_allclose, assert_array_equal
from op_checks import away_from_zero, check_against_torch, check_gradients, normal

import minicnn as mc
from minicnn import functional as F
from minicnn import functional as MF  # the name the PyTorch checks use
from minicnn.engine_room import tuning

# ==== 1. the gradients ====================================================================
GRADCHECK_CASES = {
    "relu": (F.relu, [away_from_zero(3, 4)]),
    "sigmoid": (F.sigmoid, [normal(3, 4)]),
    "tanh": (F.tanh, [normal(3, 4)]),
}


@pytest.mark.parametrize("case", list(GRADCHECK_CASES))
def test_gradcheck(backend, rng, case):
    check_gradients(GRADCHECK_CASES[case], rng)


# ==== 2. PyTorch ==========================================================================
TORCH_CASES = {
    "relu": (lambda F, a: F.relu(a), [normal(3, 4)]),
    "sigmoid": (lambda F, a: F.sigmoid(a), [normal(3, 4)]),
    "sigmoid_wide": (lambda F, a: F.sigmoid(a * 30), [normal(3, 4)]),
    "tanh": (lambda F, a: F.tanh(a), [normal(3, 4)]),
}


@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_matches_torch(backend, threads, torch, rng, case):
    check_against_torch(torch, TORCH_CASES[case], rng)


# ---- numerics at the edges ------------------------------------------------------------------
def test_sigmoid_keeps_relative_precision_far_from_zero(backend, torch):
    """1 / (1 + exp(-x)) to full relative precision even where it is tiny (x = -700)."""
    xv = np.array([-700.0, -100.0, -40.0, -20.0, -1e-3, 0.0, 1e-3, 20.0, 40.0, 700.0])
    x = mc.tensor(xv, requires_grad=True)
    y = MF.sigmoid(x)
    tx = torch.tensor(xv, requires_grad=True)
    ty = torch.sigmoid(tx)
    assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-14, atol=0)
    y.backward(mc.tensor(np.ones_like(xv)))
    ty.backward(torch.ones_like(ty))
    assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-13, atol=0)


def test_relu_of_infinities_and_nan_like_torch(backend, torch):
    xv = np.array([-np.inf, -1.0, 0.0, 2.0, np.inf, np.nan])
    assert_array_equal(MF.relu(mc.tensor(xv)).numpy(), torch.relu(torch.tensor(xv)).numpy())


# ==== 3. the fast paths ===================================================================
# the numba backend's kernels against the numpy backend's
@numba_threads
@dtypes
def test_relu_and_backward_match_numpy(dtype):
    x = random((3, 4, 5, 6), dtype)
    x[0, 0, 0, :3] = [np.nan, -np.inf, np.inf]
    y = NUMBA.relu(x)
    np.testing.assert_array_equal(y, NUMPY.relu(x))
    gy = random(x.shape, dtype, seed=1)
    np.testing.assert_array_equal(NUMBA.relu_backward(gy, y), NUMPY.relu_backward(gy, y))
    transposed = x.transpose(0, 1, 3, 2)  # not contiguous: NumPy's kernel
    np.testing.assert_array_equal(NUMBA.relu(transposed), NUMPY.relu(transposed))


@numba_threads
@dtypes
def test_sigmoid_and_backward_match_numpy(dtype):
    x = random((3, 4, 5, 6), dtype) * 8
    x[0, 0, 0, :5] = [np.nan, -np.inf, np.inf, -100, 100]
    y = NUMBA.sigmoid(x)
    np.testing.assert_array_equal(y, NUMPY.sigmoid(x))  # the same exp, the same float32 steps
    gy = random(x.shape, dtype, seed=1)
    np.testing.assert_array_equal(NUMBA.sigmoid_backward(gy, y), NUMPY.sigmoid_backward(gy, y))


@numba_threads
def test_sigmoid_block_by_block_is_the_same(monkeypatch):
    monkeypatch.setattr(tuning, "ELEMENTWISE_BLOCK", 7)  # 120 values: 17 blocks and 1 left
    x = random((4, 30), np.float32) * 8
    np.testing.assert_array_equal(NUMBA.sigmoid(x), NUMPY.sigmoid(x))
