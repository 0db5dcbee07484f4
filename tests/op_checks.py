"""What the operations' tests share: tests/ops/, and tests/test_gradcheck_ops.py,
tests/test_functional_torch.py and tests/test_numba_backend.py.

- the case makers: each takes a seeded generator and returns an input array;
- ``run_both``: one function run on minicnn and on PyTorch, forward and gradients compared;
- ``window``: a ``Window2d``, the shape arithmetic of a sliding window, for the kernels.
"""

from __future__ import annotations

import types

import numpy as np
from numpy.testing import assert_allclose

import minicnn as mc
from minicnn import functional as MF
from minicnn.backend import Window2d
from minicnn.gradcheck import gradcheck

# ---- the case makers ------------------------------------------------------------------------


def normal(*shape):
    return lambda rng: rng.standard_normal(shape)


def positive(*shape):
    return lambda rng: rng.uniform(0.5, 2.0, shape)


def away_from_zero(*shape):
    """Normal values pushed at least 0.1 away from 0 (relu's kink)."""

    def make(rng):
        v = rng.standard_normal(shape)
        return v + 0.1 * np.sign(v)

    return make


def distinct(*shape):
    """A random permutation of 0 .. n-1, scaled: no ties, gaps of 1/n."""

    def make(rng):
        n = int(np.prod(shape))
        return rng.permutation(n).reshape(shape) / n

    return make


def labels(n, classes):
    return lambda rng: rng.integers(0, classes, n)


# ---- against PyTorch ------------------------------------------------------------------------
RTOL, ATOL = 1e-10, 1e-12


class TorchF(types.SimpleNamespace):
    """``torch.nn.functional`` names, then ``torch``'s (cat, matmul, exp, sum, ...)."""

    def __init__(self, torch):
        super().__init__(_torch=torch, transpose=torch.permute)

    def __getattr__(self, name):
        functional = self._torch.nn.functional
        return (
            getattr(functional, name) if hasattr(functional, name) else getattr(self._torch, name)
        )


def check_gradients(case, rng):
    """A case ``(fn, makers)``: ``fn``'s gradients at inputs drawn by ``makers`` equal
    central differences (minicnn.gradcheck, float64)."""
    fn, makers = case
    assert gradcheck(fn, [mc.tensor(make(rng), requires_grad=True) for make in makers])


def check_against_torch(torch, case, rng):
    """A case ``(fn, makers)``: ``fn`` and its gradients on minicnn equal PyTorch's
    (:func:`run_both`) at inputs drawn by ``makers``."""
    fn, makers = case
    run_both(torch, fn, [make(rng) for make in makers], rng)


def run_both(torch, fn, arrays, rng, grad_of=None):
    """Call ``fn`` on minicnn tensors and torch tensors built from the same ``arrays``,
    backprop the same random upstream gradient, and compare outputs and gradients.

    Float arrays require grad (or those whose index is in ``grad_of``); integer arrays
    (targets) are passed as they are.
    """
    grad_of = (
        [k for k, a in enumerate(arrays) if a.dtype.kind == "f"] if grad_of is None else grad_of
    )
    mine = [mc.tensor(a, requires_grad=k in grad_of) for k, a in enumerate(arrays)]
    theirs = [torch.tensor(a, requires_grad=k in grad_of) for k, a in enumerate(arrays)]
    y = fn(MF, *mine)
    ty = fn(TorchF(torch), *theirs)
    assert y.shape == tuple(ty.shape)
    assert y.dtype == np.float64
    assert_allclose(y.numpy(), ty.detach().numpy(), rtol=RTOL, atol=ATOL, err_msg="forward")
    upstream = rng.standard_normal(y.shape)
    y.backward(mc.tensor(upstream))
    ty.backward(torch.tensor(upstream))
    for k in grad_of:
        assert mine[k].grad is not None, f"input {k} got no gradient"
        assert_allclose(
            mine[k].grad.numpy(),
            theirs[k].grad.numpy(),
            rtol=RTOL,
            atol=ATOL,
            err_msg=f"gradient of input {k}",
        )
    return mine, theirs


# ---- sliding windows ------------------------------------------------------------------------
# (input shape, kernel, stride, padding)
WINDOWS = [
    ((2, 3, 5, 5), 3, 1, 0),
    ((2, 3, 5, 5), 3, 2, 1),
    ((1, 1, 6, 7), (2, 3), (2, 1), (1, 0)),
    ((2, 2, 4, 4), 1, 1, 0),
    ((1, 2, 7, 7), 3, 3, 0),  # the stride leaves the last row and column unread
    ((2, 1, 3, 3), 3, 1, 2),  # padding wider than the kernel's reach into the input
    ((1, 2, 4, 5), (4, 5), 1, 0),  # the kernel covers the whole input
]


def window(shape, kernel, stride, padding) -> Window2d:
    return Window2d.of("test", shape, kernel, stride, padding)


def on_backend(array):
    return mc.tensor(array).data


def to_numpy(array):
    return mc.Tensor(array).numpy()
