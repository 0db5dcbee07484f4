"""The fast path equals the chapter's loops (DeZero's pairing), and col2im is the adjoint
of im2col: on every backend.

- im2col puts x_pad[n, c, oh*sh + i, ow*sw + j] at row (c*kh + i)*kw + j, column
  (n*OH + oh)*OW + ow; col2im is its adjoint, <im2col(x), y> == <x, col2im(y)>, and
  likewise for the pooling kernels' window_sum and its backward;
- conv2d == corr2d_multi_in_out image by image (and == corr2d for one channel; a 1x1
  conv == corr2d_multi_in_out_1x1); with stride and padding, conv2d == the loop on the
  zero-padded input, subsampled;
- max/avg pooling == pool2d channel by channel;
- the loops have gradients too (they are Tensor operations): equal to finite differences
  and to the layers' written-out backward.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from op_checks import WINDOWS, on_backend, to_numpy, window

import minicnn as mc
from minicnn import functional as F
from minicnn.gradcheck import gradcheck


@pytest.mark.parametrize(("shape", "kernel", "stride", "padding"), WINDOWS, ids=str)
def test_im2col_layout_matches_its_formula(backend, rng, shape, kernel, stride, padding):
    win = window(shape, kernel, stride, padding)
    x = rng.standard_normal(shape)
    cols = to_numpy(backend.im2col(on_backend(x), win))
    assert cols.shape == (win.c * win.kh * win.kw, win.n * win.oh * win.ow)
    x_pad = np.pad(x, ((0, 0), (0, 0), (win.ph, win.ph), (win.pw, win.pw)))
    expected = np.empty_like(cols)
    for n, c, i, j, oh, ow in np.ndindex(win.n, win.c, win.kh, win.kw, win.oh, win.ow):
        row = (c * win.kh + i) * win.kw + j
        expected[row, (n * win.oh + oh) * win.ow + ow] = x_pad[
            n, c, oh * win.sh + i, ow * win.sw + j
        ]
    assert_array_equal(cols, expected)


@pytest.mark.parametrize(("shape", "kernel", "stride", "padding"), WINDOWS, ids=str)
def test_col2im_is_the_adjoint_of_im2col(backend, rng, shape, kernel, stride, padding):
    win = window(shape, kernel, stride, padding)
    x = rng.standard_normal(shape)
    y = rng.standard_normal((win.c * win.kh * win.kw, win.n * win.oh * win.ow))
    cols = to_numpy(backend.im2col(on_backend(x), win))
    back = to_numpy(backend.col2im(on_backend(y), win))
    assert back.shape == shape
    assert_allclose(np.vdot(cols, y), np.vdot(x, back), rtol=1e-12)


@pytest.mark.parametrize(("shape", "kernel", "stride", "padding"), WINDOWS, ids=str)
def test_window_sum_backward_is_its_adjoint(backend, rng, shape, kernel, stride, padding):
    win = window(shape, kernel, stride, padding)
    x, y = rng.standard_normal(shape), rng.standard_normal(win.output_shape)
    summed = to_numpy(backend.window_sum(on_backend(x), win))
    back = to_numpy(backend.window_sum_backward(on_backend(y), win))
    assert_allclose(np.vdot(summed, y), np.vdot(x, back), rtol=1e-12)


def test_col2im_adds_overlapping_windows(backend):
    """A 3x3 image, 2x2 windows at stride 1: the centre pixel is read by all four."""
    win = window((1, 1, 3, 3), 2, 1, 0)
    back = to_numpy(backend.col2im(on_backend(np.ones((4, 4))), win))
    assert_array_equal(back[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


# ---- the chapter's known answers (D2L 7.2, 7.5) -----------------------------------------------
def test_the_chapters_examples(backend):
    X = mc.tensor(np.arange(9.0).reshape(3, 3))
    K = mc.tensor(np.array([[0.0, 1.0], [2.0, 3.0]]))
    assert_array_equal(F.corr2d(X, K).numpy(), [[19.0, 25.0], [37.0, 43.0]])
    assert_array_equal(F.pool2d(X, (2, 2)).numpy(), [[4.0, 5.0], [7.0, 8.0]])
    assert_array_equal(F.pool2d(X, (2, 2), "avg").numpy(), [[2.0, 3.0], [5.0, 6.0]])
    X2 = mc.tensor(np.stack([np.arange(9.0), np.arange(1.0, 10.0)]).reshape(2, 3, 3))
    K2 = mc.tensor(np.stack([np.arange(4.0), np.arange(1.0, 5.0)]).reshape(2, 2, 2))
    assert_array_equal(F.corr2d_multi_in(X2, K2).numpy(), [[56.0, 72.0], [104.0, 120.0]])
    fast = F.conv2d(X2.reshape(1, 2, 3, 3), K2.reshape(1, 2, 2, 2))
    assert_array_equal(fast.numpy()[0, 0], [[56.0, 72.0], [104.0, 120.0]])


# ---- conv2d == the loops ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("x_shape", "w_shape"),
    [((2, 3, 5, 5), (4, 3, 3, 3)), ((1, 2, 4, 6), (3, 2, 2, 3)), ((3, 1, 4, 4), (2, 1, 4, 1))],
    ids=str,
)
def test_conv2d_equals_corr2d_multi_in_out(backend, rng, x_shape, w_shape):
    x, w = mc.tensor(rng.standard_normal(x_shape)), mc.tensor(rng.standard_normal(w_shape))
    fast = F.conv2d(x, w).numpy()
    for n in range(x_shape[0]):
        loop = F.corr2d_multi_in_out(x.data[n], w.data).numpy()
        assert_allclose(fast[n], loop, rtol=1e-12, atol=1e-12)


def test_conv2d_with_one_channel_equals_corr2d(backend, rng):
    x, k = rng.standard_normal((6, 5)), rng.standard_normal((3, 2))
    fast = F.conv2d(mc.tensor(x.reshape(1, 1, 6, 5)), mc.tensor(k.reshape(1, 1, 3, 2)))
    assert_allclose(fast.numpy()[0, 0], F.corr2d(mc.tensor(x), mc.tensor(k)).numpy(), rtol=1e-12)


def test_conv2d_1x1_equals_corr2d_multi_in_out_1x1(backend, rng):
    x, w = (
        mc.tensor(rng.standard_normal((2, 3, 3, 4))),
        mc.tensor(rng.standard_normal((2, 3, 1, 1))),
    )
    fast = F.conv2d(x, w).numpy()
    for n in range(2):
        assert_allclose(fast[n], F.corr2d_multi_in_out_1x1(x.data[n], w.data).numpy(), rtol=1e-12)
        assert_allclose(fast[n], F.corr2d_multi_in_out(x.data[n], w.data).numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    ("stride", "padding"), [(2, 1), ((2, 1), (0, 2)), (3, 0), (1, (1, 0))], ids=str
)
def test_conv2d_with_stride_and_padding_equals_the_loop_on_the_padded_input(
    backend, rng, stride, padding
):
    """D2L 7.3: padding is zeros around the input; stride keeps every sh-th row, sw-th column."""
    (sh, sw), (ph, pw) = (
        (stride, stride) if isinstance(stride, int) else stride,
        ((padding, padding) if isinstance(padding, int) else padding),
    )
    x, w = rng.standard_normal((2, 2, 5, 6)), rng.standard_normal((3, 2, 3, 2))
    fast = F.conv2d(mc.tensor(x), mc.tensor(w), stride=stride, padding=padding).numpy()
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    for n in range(2):
        loop = F.corr2d_multi_in_out(x_pad[n], w).numpy()[:, ::sh, ::sw]
        assert_allclose(fast[n], loop, rtol=1e-12, atol=1e-12)


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


# ---- the same identities on random geometry (hypothesis) --------------------------------------
@st.composite
def geometries(draw):
    """A random valid window: input (N, C, H, W), kernel, stride and padding."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, kh - 2 * ph), 7))
    w = draw(st.integers(max(1, kw - 2 * pw), 7))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w)
    return shape, (kh, kw), (draw(st.integers(1, 3)), draw(st.integers(1, 3))), (ph, pw)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # the backend stays active
)
@given(geometry=geometries(), seed=st.integers(0, 2**16))
def test_random_windows_adjoint_and_conv_loop(backend, geometry, seed):
    shape, (kh, kw), (sh, sw), (ph, pw) = geometry
    rng = np.random.default_rng(seed)
    win = window(shape, (kh, kw), (sh, sw), (ph, pw))
    x = rng.standard_normal(shape)
    y = rng.standard_normal((win.c * kh * kw, win.n * win.oh * win.ow))
    cols = to_numpy(backend.im2col(on_backend(x), win))
    back = to_numpy(backend.col2im(on_backend(y), win))
    assert_allclose(np.vdot(cols, y), np.vdot(x, back), rtol=1e-11, atol=1e-11)
    weight = rng.standard_normal((2, shape[1], kh, kw))
    fast = F.conv2d(mc.tensor(x), mc.tensor(weight), stride=(sh, sw), padding=(ph, pw)).numpy()
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    for n in range(shape[0]):
        loop = F.corr2d_multi_in_out(x_pad[n], weight).numpy()[:, ::sh, ::sw]
        assert_allclose(fast[n], loop, rtol=1e-12, atol=1e-12)


# ---- the loops' gradients, derived by autograd --------------------------------------------------
def test_corr2d_has_a_gradient_equal_to_finite_differences(backend, rng):
    X = mc.tensor(rng.standard_normal((4, 5)), requires_grad=True)
    K = mc.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    assert gradcheck(lambda X, K: F.corr2d(X, K), [X, K])


def test_the_multi_channel_loops_have_gradients(backend, rng):
    X = mc.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    K = mc.tensor(rng.standard_normal((3, 2, 2, 2)), requires_grad=True)
    K1 = mc.tensor(rng.standard_normal((3, 2, 1, 1)), requires_grad=True)
    assert gradcheck(lambda X, K: F.corr2d_multi_in_out(X, K), [X, K])
    assert gradcheck(lambda X, K: F.corr2d_multi_in_out_1x1(X, K), [X, K1])


def test_corr2d_gradients_equal_the_layers(backend, rng):
    """Autograd through the loop and conv2d's written-out backward (col2im, dy @ cols^T)
    give the same gradients."""
    x, k, dy = rng.standard_normal((5, 6)), rng.standard_normal((3, 2)), rng.standard_normal((3, 5))
    X, K = mc.tensor(x, requires_grad=True), mc.tensor(k, requires_grad=True)
    (F.corr2d(X, K) * mc.tensor(dy)).sum().backward()
    X4 = mc.tensor(x.reshape(1, 1, 5, 6), requires_grad=True)
    K4 = mc.tensor(k.reshape(1, 1, 3, 2), requires_grad=True)
    (F.conv2d(X4, K4) * mc.tensor(dy.reshape(1, 1, 3, 5))).sum().backward()
    assert_allclose(X.grad.numpy(), X4.grad.numpy()[0, 0], rtol=1e-12, atol=1e-12)
    assert_allclose(K.grad.numpy(), K4.grad.numpy()[0, 0], rtol=1e-12, atol=1e-12)


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
