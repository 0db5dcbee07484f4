"""Softmax cross-entropy (D2L 4.4, every network's loss), softmax and log_softmax. In
this order:

1. the gradients: equal to central differences (float64, minicnn.gradcheck), for each
   reduction;
2. PyTorch: forward and gradients equal torch's, large logits too;
3. on a GPU: a target outside [0, classes) gives NaN without waiting for the device
   (the GPU branch, run on NumPy).
"""

from __future__ import annotations

import numpy
import pytest
from op_checks import check_against_torch, check_gradients, labels, normal

import minicnn as mc
from minicnn import functional as F

# ==== 1. the gradients ====================================================================
TARGET = numpy.array([2, 0, 1, 2])


GRADCHECK_CASES = {
    # losses
    "log_softmax": (lambda x: F.log_softmax(x, 1), [normal(3, 4)]),
    "log_softmax_dim0": (lambda x: F.log_softmax(x, 0), [normal(3, 4)]),
    "softmax": (lambda x: F.softmax(x, -1), [normal(3, 4)]),
    "cross_entropy_mean": (lambda x: F.cross_entropy(x, mc.tensor(TARGET)), [normal(4, 3)]),
    "cross_entropy_sum": (
        lambda x: F.cross_entropy(x, mc.tensor(TARGET), reduction="sum"),
        [normal(4, 3)],
    ),
    "cross_entropy_none": (
        lambda x: F.cross_entropy(x, mc.tensor(TARGET), reduction="none"),
        [normal(4, 3)],
    ),
}


@pytest.mark.parametrize("case", list(GRADCHECK_CASES))
def test_gradcheck(backend, rng, case):
    check_gradients(GRADCHECK_CASES[case], rng)


# ==== 2. PyTorch ==========================================================================
TORCH_CASES = {
    # losses
    "log_softmax": (lambda F, x: F.log_softmax(x, 1), [normal(4, 5)]),
    "log_softmax_dim0": (lambda F, x: F.log_softmax(x, 0), [normal(4, 5)]),
    "log_softmax_large": (lambda F, x: F.log_softmax(x * 1000, -1), [normal(3, 4)]),
    "softmax": (lambda F, x: F.softmax(x, 1), [normal(4, 5)]),
    "cross_entropy": (lambda F, x, t: F.cross_entropy(x, t), [normal(6, 4), labels(6, 4)]),
    "cross_entropy_sum": (
        lambda F, x, t: F.cross_entropy(x, t, reduction="sum"),
        [normal(6, 4), labels(6, 4)],
    ),
    "cross_entropy_none": (
        lambda F, x, t: F.cross_entropy(x, t, reduction="none"),
        [normal(6, 4), labels(6, 4)],
    ),
    "cross_entropy_large_logits": (
        lambda F, x, t: F.cross_entropy(x * 500, t),
        [normal(5, 3), labels(5, 3)],
    ),
}


@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_matches_torch(backend, threads, torch, rng, case):
    check_against_torch(torch, TORCH_CASES[case], rng)


# ==== 3. on a GPU =========================================================================
def test_on_a_device_a_bad_target_gives_nan_without_waiting_for_the_gpu(monkeypatch):
    """The GPU branch of cross_entropy, run on NumPy: no host check, NaN where a target
    lies outside [0, classes). (-1 indexes the last class in NumPy and in CuPy alike.)"""
    from minicnn.functional import loss

    monkeypatch.setattr(loss, "_on_device", lambda x: True)
    logits = mc.tensor(numpy.zeros((3, 4)), requires_grad=True)
    losses = mc.nn.functional.cross_entropy(logits, mc.tensor([0, -1, 3]), reduction="none")
    numpy.testing.assert_allclose(losses.numpy(), [numpy.log(4), numpy.nan, numpy.log(4)])
