"""Max and average pooling (D2L 7.5), and adaptive average pooling. In this order:

1. the loops: max and average pooling == the chapter's pool2d, channel by channel (with
   stride and padding: pool2d on the input padded with -inf for max, zeros for average,
   subsampled); global average pooling is the mean over pixels; window_sum's backward
   is its adjoint;
2. the gradients: equal to central differences (float64, minicnn.gradcheck; the inputs
   of max pooling are permutations, distinct values at least 1/n apart, so no
   finite-difference step of 1e-6 can change which element wins a window), and
   pool2d's, derived by autograd, equal the layers' written-out backward;
3. PyTorch: forward and gradients equal torch.nn.functional's, with ties too: max
   pooling's gradient goes to the first maximum;
4. the fast paths: the numba backend's compiled max pooling (row by row, in blocks of
   planes; ties, NaNs, windows of -inf) and window sums, forward and backward, equal
   the numpy backend's kernels.

On every backend, unless a test names one. Elsewhere: pool2d's printed examples in
test_conv2d.py (test_the_chapters_examples) and tests/test_book_examples.py;
max_pool2d_simple in tests/test_learners_path.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from kernel_checks import NUMBA, NUMPY, assert_close, dtypes, numba_threads, random
from numpy.testing import assert_allclose, assert_array_equal
from op_checks import (
    WINDOWS,
    check_against_torch,
    check_gradients,
    distinct,
    normal,
    on_backend,
    run_both,
    to_numpy,
    window,
)

import minicnn as mc
from minicnn import functional as F
from minicnn import functional as MF  # the name the PyTorch checks use
from minicnn.engine_room import tuning
from minicnn.gradcheck import gradcheck


# ==== 1. the loops ========================================================================
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


# ==== 2. the gradients ====================================================================
GRADCHECK_CASES = {
    # pooling
    "max_pool2d": (lambda x: F.max_pool2d(x, 2), [distinct(2, 2, 4, 4)]),
    "max_pool2d_overlapping_3x3_s2_p1": (
        lambda x: F.max_pool2d(x, 3, 2, 1),
        [distinct(2, 2, 5, 5)],
    ),
    "max_pool2d_stride_1": (lambda x: F.max_pool2d(x, 2, 1), [distinct(1, 2, 4, 4)]),
    "max_pool2d_non_square": (
        lambda x: F.max_pool2d(x, (3, 2), (2, 1), (1, 0)),
        [distinct(1, 2, 5, 4)],
    ),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 2), [normal(2, 2, 4, 4)]),
    "avg_pool2d_overlapping_include_pad": (
        lambda x: F.avg_pool2d(x, 3, 2, 1),
        [normal(1, 2, 5, 5)],
    ),
    "avg_pool2d_overlapping_exclude_pad": (
        lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
        [normal(1, 2, 5, 5)],
    ),
    "avg_pool2d_non_square": (
        lambda x: F.avg_pool2d(x, (2, 3), (1, 2), (1, 1)),
        [normal(1, 1, 4, 5)],
    ),
    "adaptive_avg_pool2d_global": (
        lambda x: F.adaptive_avg_pool2d(x, (1, 1)),
        [normal(2, 2, 3, 4)],
    ),
    "adaptive_avg_pool2d_7_to_3": (lambda x: F.adaptive_avg_pool2d(x, 3), [normal(1, 2, 7, 7)]),
    "adaptive_avg_pool2d_5_to_2": (lambda x: F.adaptive_avg_pool2d(x, 2), [normal(2, 1, 5, 5)]),
    "adaptive_avg_pool2d_5x7_to_2x3": (
        lambda x: F.adaptive_avg_pool2d(x, (2, 3)),
        [normal(1, 1, 5, 7)],
    ),
}


@pytest.mark.parametrize("case", list(GRADCHECK_CASES))
def test_gradcheck(backend, rng, case):
    check_gradients(GRADCHECK_CASES[case], rng)


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


# ==== 3. PyTorch ==========================================================================
TORCH_CASES = {
    # pooling
    "max_pool2d": (lambda F, x: F.max_pool2d(x, 2), [normal(2, 3, 6, 6)]),
    "max_pool2d_overlapping": (lambda F, x: F.max_pool2d(x, 3, 2, 1), [normal(2, 2, 7, 7)]),
    "max_pool2d_non_square": (
        lambda F, x: F.max_pool2d(x, (3, 2), (1, 2), (1, 0)),
        [normal(1, 2, 5, 6)],
    ),
    "avg_pool2d": (lambda F, x: F.avg_pool2d(x, 2), [normal(2, 3, 6, 6)]),
    "avg_pool2d_include_pad": (lambda F, x: F.avg_pool2d(x, 3, 2, 1), [normal(2, 2, 7, 6)]),
    "avg_pool2d_exclude_pad": (
        lambda F, x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
        [normal(2, 2, 7, 6)],
    ),
    "avg_pool2d_non_square": (
        lambda F, x: F.avg_pool2d(x, (2, 3), 1, (1, 1)),
        [normal(1, 2, 4, 5)],
    ),
    "adaptive_avg_pool2d_1": (lambda F, x: F.adaptive_avg_pool2d(x, (1, 1)), [normal(2, 3, 5, 4)]),
    "adaptive_avg_pool2d_7_to_3": (lambda F, x: F.adaptive_avg_pool2d(x, 3), [normal(2, 2, 7, 7)]),
    "adaptive_avg_pool2d_5x7_to_2x3": (
        lambda F, x: F.adaptive_avg_pool2d(x, (2, 3)),
        [normal(1, 2, 5, 7)],
    ),
    "adaptive_avg_pool2d_upsample": (
        lambda F, x: F.adaptive_avg_pool2d(x, 4),
        [normal(1, 2, 3, 3)],
    ),
}


@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_matches_torch(backend, threads, torch, rng, case):
    check_against_torch(torch, TORCH_CASES[case], rng)


# ---- max pooling with ties: the gradient goes to the first maximum --------------------------
@pytest.mark.parametrize(
    ("kernel", "stride", "padding"),
    [(2, None, 0), (3, 2, 1), (3, 1, 1), ((2, 3), (2, 1), (1, 0))],
    ids=["2x2", "3x3s2p1", "3x3s1p1", "2x3"],
)
def test_max_pool2d_ties_go_to_the_first_maximum_like_torch(
    backend, torch, rng, kernel, stride, padding
):
    x = rng.integers(0, 2, (2, 2, 6, 6)).astype(np.float64)  # many ties
    x[0, 0] = 1.0  # a whole channel tied
    fn = lambda F, x: F.max_pool2d(x, kernel, stride, padding)  # noqa: E731
    run_both(torch, fn, [x], rng)


def test_max_pool2d_tie_gradient_position():
    """All four values equal: the whole gradient lands on the top-left one."""
    x = mc.tensor(np.ones((1, 1, 2, 2)), requires_grad=True)
    MF.max_pool2d(x, 2).sum().backward()
    assert_array_equal(x.grad.numpy()[0, 0], [[1.0, 0.0], [0.0, 0.0]])


# ==== 4. the fast paths ===================================================================
# the numba backend's kernels against the numpy backend's
# Pooling pads at most half the kernel.
POOL_CASES = {
    "overlapping-3x3-s2-p1": ((2, 3, 9, 9), (3, 3), (2, 2), (1, 1)),
    "non-overlapping": ((2, 2, 6, 6), (2, 2), (2, 2), (0, 0)),  # the 2x2 halving kernels
    "halving-odd-sides": ((2, 3, 7, 5), (2, 2), (2, 2), (0, 0)),  # a row and a column left out
    "non-square": ((1, 2, 7, 10), (2, 4), (1, 3), (1, 2)),
    "one-channel-batch1": ((1, 1, 5, 5), (3, 3), (1, 1), (1, 1)),
    "kernel-is-padded-input": ((2, 2, 3, 4), (5, 6), (1, 1), (1, 1)),
    "wide-rows-s1": ((1, 2, 4, 20), (3, 3), (1, 1), (1, 1)),
    # strided, output rows of MAX_POOL_ROWS_MIN_OUTPUTS and more: the max pool row by row
    "wide-rows-3x3-s2-p1": ((2, 2, 5, 35), (3, 3), (2, 2), (1, 1)),
    "wide-rows-non-square-s3": ((1, 2, 6, 50), (2, 5), (1, 3), (1, 2)),
}
pool_cases = pytest.mark.parametrize("case", POOL_CASES.values(), ids=POOL_CASES)


@numba_threads
@dtypes
@pool_cases
def test_max_pool2d_and_backward_match_numpy(case, dtype):
    win = window(*case)
    x = random(win.input_shape, dtype)
    y, argmax = NUMBA.max_pool2d(x, win)
    y_ref, argmax_ref = NUMPY.max_pool2d(x, win)
    assert_close(y, y_ref, dtype)
    assert argmax.dtype == argmax_ref.dtype
    np.testing.assert_array_equal(argmax, argmax_ref)
    dy = random(win.output_shape, dtype, seed=1)
    dx = NUMBA.max_pool2d_backward(dy, argmax, win)
    assert_close(dx, NUMPY.max_pool2d_backward(dy, argmax_ref, win), dtype)


@numba_threads
@pool_cases
def test_max_pool2d_in_blocks_of_planes_matches_numpy(case, monkeypatch):
    # Blocks of two planes (the last one short where the planes are odd): every block
    # padded and pooled on its own, as a batch is.
    win = window(*case)
    monkeypatch.setattr(tuning, "MAX_POOL_BLOCK", 2 * (win.h + 2 * win.ph) * (win.w + 2 * win.pw))
    monkeypatch.setattr(tuning, "MAX_POOL_ROWS_MIN_OUTPUTS", 1 << 30)  # planes always
    x = random(win.input_shape, np.float32)
    y, argmax = NUMBA.max_pool2d(x, win)
    y_ref, argmax_ref = NUMPY.max_pool2d(x, win)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)
    dy = random(win.output_shape, np.float32, seed=1)  # and backward's sums in NumPy's order
    dx = NUMBA.max_pool2d_backward(dy, argmax, win)
    np.testing.assert_array_equal(dx, NUMPY.max_pool2d_backward(dy, argmax_ref, win))


@numba_threads
@pool_cases
def test_max_pool2d_ties_pick_the_first_maximum(case):
    win = window(*case)
    x = np.full(win.input_shape, 2.0, dtype=np.float32)
    y, argmax = NUMBA.max_pool2d(x, win)
    y_ref, argmax_ref = NUMPY.max_pool2d(x, win)
    np.testing.assert_array_equal(argmax, argmax_ref)
    np.testing.assert_array_equal(y, y_ref)
    if win.ph == 0 and win.pw == 0:  # with padding the first maximum is the first real pixel
        assert (argmax == 0).all()


@numba_threads
@pytest.mark.parametrize("width, stride", [(4, 1), (40, 2)], ids=["planes", "rows"])
def test_max_pool2d_nan_wins_like_numpy(width, stride):
    win = window((1, 1, 4, width), (2, 2), (1, stride), (0, 0))
    x = random(win.input_shape, np.float64)
    x[0, 0, 1, 2] = np.nan
    x[0, 0, 2, 2:4] = np.nan  # a second NaN in a window that has one already
    y, argmax = NUMBA.max_pool2d(x, win)
    y_ref, argmax_ref = NUMPY.max_pool2d(x, win)
    np.testing.assert_array_equal(y, y_ref)  # NaNs compare equal here
    np.testing.assert_array_equal(argmax, argmax_ref)
    assert np.isnan(y[0, 0, :2, 1]).all()


@numba_threads
@pool_cases
def test_max_pool2d_window_of_minus_infs_matches_numpy(case):
    # Every real pixel -inf: no pixel beats the start, argmax stays 0 (perhaps padding).
    win = window(*case)
    x = np.full(win.input_shape, -np.inf)
    y, argmax = NUMBA.max_pool2d(x, win)
    y_ref, argmax_ref = NUMPY.max_pool2d(x, win)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)
    dy = random(win.output_shape, np.float64)
    np.testing.assert_array_equal(
        NUMBA.max_pool2d_backward(dy, argmax, win), NUMPY.max_pool2d_backward(dy, argmax_ref, win)
    )


@numba_threads
@dtypes
@pool_cases
def test_window_sum_and_backward_match_numpy(case, dtype):
    win = window(*case)
    x = random(win.input_shape, dtype)
    assert_close(NUMBA.window_sum(x, win), NUMPY.window_sum(x, win), dtype)
    dy = random(win.output_shape, dtype, seed=1)
    assert_close(NUMBA.window_sum_backward(dy, win), NUMPY.window_sum_backward(dy, win), dtype)
