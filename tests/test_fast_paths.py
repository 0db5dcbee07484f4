"""Autograd's fast path, on every backend: backward hands each leaf a fresh array without
copying it, and copies one that is shared or a view, so that a leaf's gradient is its
own array, never the caller's, never shared by two leaves.

The operations' fast paths (conv2d's chunks, taps, direct loops, wide rows, its dx as a
convolution; the numba backend's compiled kernels) are tested beside each operation's
other checks, one file per operation in tests/ops/.
"""

from __future__ import annotations

import numpy as np

import minicnn as mc


def test_leaf_gradients_are_their_own_arrays(backend, rng):
    # backward hands the leaves fresh arrays without copying, and copies any array that is
    # shared or a view: a + b gives both the same array; sum broadcasts; the caller's grad.
    a, b = (mc.tensor(rng.standard_normal((2, 3)), requires_grad=True) for _ in range(2))
    upstream = mc.tensor(np.ones((2, 3)))
    (a + b).backward(upstream)
    assert not np.shares_memory(a.grad.data, b.grad.data)
    assert not np.shares_memory(a.grad.data, upstream.data)
    c = mc.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    c.sum().backward()
    assert getattr(c.grad.data.flags, "writeable", True)  # CuPy's arrays are always writeable
    assert c.grad.data.base is None
    c.grad.data[...] = 0  # the gradient can be changed in place, as an optimizer might
    assert a.grad.numpy().sum() == 6 and b.grad.numpy().sum() == 6
