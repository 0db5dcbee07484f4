"""Dropout (D2L 5.6; AlexNet's and VGG's classifiers). In this order:

1. the gradient: equal to central differences (float64, minicnn.gradcheck), the mask
   fixed by seeding before each call;
2. PyTorch: dropout that keeps everything (p = 0, evaluation) equals torch's, forward
   and backward; for 0 < p < 1 the mask is random, so its statistics and its scale are
   compared with torch's; then dropout's own promises: p = 0 and evaluation are the
   identity, p = 1 zeros everything, and mc.manual_seed makes the mask reproducible.

No loops to compare and no fast path: one random mask and one product, on every backend.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from op_checks import TorchF, check_against_torch, check_gradients, normal

import minicnn as mc
from minicnn import functional as F
from minicnn import functional as MF  # the name the PyTorch checks use


# ==== 1. the gradient =====================================================================
def dropout_seeded(x):
    mc.manual_seed(7)  # the same mask on every call, so the function is deterministic
    return F.dropout(x, 0.4)


GRADCHECK_CASES = {
    # dropout, with the mask fixed by seeding before each call
    "dropout": (dropout_seeded, [normal(4, 5)]),
}


@pytest.mark.parametrize("case", list(GRADCHECK_CASES))
def test_gradcheck(backend, rng, case):
    check_gradients(GRADCHECK_CASES[case], rng)


# ==== 2. PyTorch ==========================================================================
TORCH_CASES = {
    # dropout that keeps everything
    "dropout_p0": (lambda F, x: F.dropout(x, 0.0), [normal(3, 4)]),
    "dropout_eval": (lambda F, x: F.dropout(x, 0.5, False) * 1, [normal(3, 4)]),
}


@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_matches_torch(backend, threads, torch, rng, case):
    check_against_torch(torch, TORCH_CASES[case], rng)


# ---- dropout: the mask is random, so compare its statistics and its scale ------------------
@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_dropout_statistics_and_scale_match_torch(backend, torch, p):
    mc.manual_seed(0)
    torch.manual_seed(0)
    n = 20_000
    xv = np.random.default_rng(1).uniform(1.0, 2.0, n)
    x = mc.tensor(xv, requires_grad=True)
    y = MF.dropout(x, p)
    ty = TorchF(torch).dropout(torch.tensor(xv), p)
    yv, tyv = y.numpy(), ty.numpy()
    for out in (yv, tyv):
        kept = out != 0
        assert_allclose(out[kept], xv[kept] / (1 - p), rtol=1e-12)  # survivors scaled by 1/(1-p)
        sigma = np.sqrt(p * (1 - p) / n)
        assert abs((~kept).mean() - p) < 5 * sigma  # fraction dropped is p
    assert abs((yv == 0).mean() - (tyv == 0).mean()) < 7 * np.sqrt(p * (1 - p) / n)
    y.backward(mc.tensor(np.ones(n)))
    assert_allclose(x.grad.numpy(), (yv != 0) / (1 - p), rtol=1e-12)  # dx = mask / (1 - p)


def test_dropout_identity_cases(backend, rng):
    xv = rng.standard_normal((3, 4))
    x = mc.tensor(xv, requires_grad=True)
    assert_array_equal(MF.dropout(x, 0.0).numpy(), xv)
    assert_array_equal(MF.dropout(x, 0.7, training=False).numpy(), xv)
    y = MF.dropout(x, 1.0)
    assert_array_equal(y.numpy(), np.zeros((3, 4)))
    y.sum().backward()
    assert_array_equal(x.grad.numpy(), np.zeros((3, 4)))


def test_dropout_is_reproducible_with_manual_seed(backend, rng):
    x = mc.tensor(np.ones((5, 6)))
    mc.manual_seed(3)
    first = MF.dropout(x, 0.5).numpy()
    mc.manual_seed(3)
    assert_array_equal(MF.dropout(x, 0.5).numpy(), first)
