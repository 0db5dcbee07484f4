"""Pooling equals the chapter's loops (DeZero's pairing), on every backend; conv2d's
loop comparisons are in tests/ops/test_conv2d.py.

- max/avg pooling == pool2d channel by channel; window_sum's backward is its adjoint;
- pool2d has a gradient too (it is made of Tensor operations): equal to finite
  differences and to the layers' written-out backward.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from op_checks import WINDOWS, on_backend, to_numpy, window

import minicnn as mc
from minicnn import functional as F
from minicnn.gradcheck import gradcheck


@pytest.mark.parametrize(("shape", "kernel", "stride", "padding"), WINDOWS, ids=str)
def test_window_sum_backward_is_its_adjoint(backend, rng, shape, kernel, stride, padding):
    win = window(shape, kernel, stride, padding)
    x, y = rng.standard_normal(shape), rng.standard_normal(win.output_shape)
    summed = to_numpy(backend.window_sum(on_backend(x), win))
    back = to_numpy(backend.window_sum_backward(on_backend(y), win))
    assert_allclose(np.vdot(summed, y), np.vdot(x, back), rtol=1e-12)


# ---- pooling == pool2d ------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("pool_size", [2, 3, (2, 3), (1, 4)], ids=str)
def test_pooling_with_stride_1_equals_pool2d(backend, rng, mode, pool_size):
    x = mc.tensor(rng.standard_normal((2, 3, 5, 6)))
    pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    fast = pool(x, pool_size, stride=1).numpy()
    for n, c in np.ndindex(2, 3):
        loop = F.pool2d(x.data[n, c], pool_size, mode).numpy()
        assert_allclose(fast[n, c], loop, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    ("kernel", "stride", "padding"), [(3, 2, 1), (2, 2, 1), ((3, 2), (1, 2), (1, 0))], ids=str
)
def test_padded_strided_pooling_equals_pool2d_on_the_padded_input(
    backend, rng, kernel, stride, padding
):
    """Max pooling pads with -inf; average pooling (count_include_pad) with zeros."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    x = rng.standard_normal((1, 2, 5, 6))
    pads = ((0, 0), (0, 0), (ph, ph), (pw, pw))
    for mode, pad_value, pool in (("max", -np.inf, F.max_pool2d), ("avg", 0.0, F.avg_pool2d)):
        fast = pool(mc.tensor(x), kernel, stride, padding).numpy()
        x_pad = np.pad(x, pads, constant_values=pad_value)
        for c in range(2):
            loop = F.pool2d(x_pad[0, c], (kh, kw), mode).numpy()[::sh, ::sw]
            assert_allclose(fast[0, c], loop, rtol=1e-12, atol=1e-15, err_msg=mode)


def test_global_average_pooling_is_the_mean_over_pixels(backend, rng):
    x = rng.standard_normal((2, 3, 4, 5))
    fast = F.adaptive_avg_pool2d(mc.tensor(x), 1).numpy()
    assert_allclose(fast, x.mean(axis=(2, 3), keepdims=True), rtol=1e-12)
    assert_allclose(F.avg_pool2d(mc.tensor(x), (4, 5)).numpy(), fast, rtol=1e-12)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pool2d_gradients_equal_the_layers(backend, mode):
    x = np.random.default_rng(1).permutation(20).reshape(4, 5).astype(np.float64)  # no ties
    dy = np.arange(1.0, 7.0).reshape(2, 3)
    X = mc.tensor(x, requires_grad=True)
    (F.pool2d(X, (3, 3), mode) * mc.tensor(dy)).sum().backward()
    X4 = mc.tensor(x.reshape(1, 1, 4, 5), requires_grad=True)
    layer = F.max_pool2d if mode == "max" else F.avg_pool2d
    (layer(X4, 3, stride=1) * mc.tensor(dy.reshape(1, 1, 2, 3))).sum().backward()
    assert_allclose(X.grad.numpy(), X4.grad.numpy()[0, 0], rtol=1e-12)
    assert gradcheck(lambda X: F.pool2d(X, (3, 3), mode), [X])
