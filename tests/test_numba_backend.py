"""The Numba kernels agree with the NumPy reference kernels, shape for shape.

Shapes are tiny: the time goes to compiling each kernel once per dtype (or loading it
from Numba's cache), not to running it.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("numba", reason="needs Numba (pip install -e '.[numba]')")

from minicnn.backend import Window2d, get_backend  # noqa: E402
from minicnn.engine_room import conv as engine_conv  # noqa: E402
from minicnn.engine_room import tuning  # noqa: E402

NUMPY = get_backend("numpy")
NUMBA = get_backend("numba")
RTOL = {np.float32: 1e-5, np.float64: 1e-12}

# (x shape, kernel, stride, padding): id
CONV_CASES = {
    "stride2-pad1": ((2, 3, 7, 7), (3, 3), (2, 2), (1, 1)),
    "non-square": ((2, 2, 6, 9), (2, 4), (1, 3), (1, 2)),
    "one-channel-batch1": ((1, 1, 5, 5), (3, 3), (1, 1), (0, 0)),
    "kernel-is-padded-input": ((2, 2, 3, 4), (5, 6), (1, 1), (1, 1)),
    "kernel-bigger-than-stride-pad": ((1, 2, 8, 8), (5, 5), (3, 2), (2, 1)),
    "windows-of-padding-only": ((1, 2, 1, 3), (1, 1), (2, 2), (1, 1)),
}
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


def window(x_shape, kernel, stride, padding) -> Window2d:
    return Window2d.of("test", x_shape, kernel, stride, padding)


def random(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def assert_close(actual, expected, dtype):
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype], atol=0)


dtypes = pytest.mark.parametrize("dtype", [np.float32, np.float64])
conv_cases = pytest.mark.parametrize("case", CONV_CASES.values(), ids=CONV_CASES)
pool_cases = pytest.mark.parametrize("case", POOL_CASES.values(), ids=POOL_CASES)


@pytest.fixture(autouse=True, params=[1, 3], ids=["1-thread", "3-threads"])
def team(request, monkeypatch):
    """Every test twice: the loops on one thread, and cut into parts for a team of 3 even
    at these tiny sizes (uneven parts, a part of one plane), so that the parts are
    seen to cover the output exactly. Also the compiled window_sum on one thread
    (NumPy's strided adds are used then)."""
    monkeypatch.setattr(tuning, "STRIDED_MIN_THREADS", 1)
    monkeypatch.setattr(tuning, "PARALLEL_MIN_ELEMENTS", 0)
    size = NUMBA.team.size
    NUMBA.team.resize(request.param)
    yield NUMBA.team
    NUMBA.team.resize(size)


@dtypes
@conv_cases
def test_im2col_and_col2im_match_numpy(case, dtype):
    win = window(*case)
    x = random(win.input_shape, dtype)
    np.testing.assert_array_equal(NUMBA.im2col(x, win), NUMPY.im2col(x, win))
    cols = random((win.c * win.kh * win.kw, win.n * win.oh * win.ow), dtype, seed=1)
    assert_close(NUMBA.col2im(cols, win), NUMPY.col2im(cols, win), dtype)


@dtypes
@conv_cases
def test_tap_sum_matches_numpy(case, dtype):
    win = window(*case)
    z = random((win.kh * win.kw * 3, win.n * win.h * win.w), dtype)  # 3 output channels
    np.testing.assert_array_equal(NUMBA.tap_sum(z, win), engine_conv.tap_sum(NUMPY, z, win))


@conv_cases
def test_col2im_is_the_adjoint_of_im2col(case):
    win = window(*case)
    x = random(win.input_shape, np.float64)
    y = random((win.c * win.kh * win.kw, win.n * win.oh * win.ow), np.float64, seed=1)
    lhs = np.vdot(NUMBA.im2col(x, win), y)
    rhs = np.vdot(x, NUMBA.col2im(y, win))
    assert lhs == pytest.approx(rhs, rel=1e-12)


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


@dtypes
@pool_cases
def test_window_sum_and_backward_match_numpy(case, dtype):
    win = window(*case)
    x = random(win.input_shape, dtype)
    assert_close(NUMBA.window_sum(x, win), NUMPY.window_sum(x, win), dtype)
    dy = random(win.output_shape, dtype, seed=1)
    assert_close(NUMBA.window_sum_backward(dy, win), NUMPY.window_sum_backward(dy, win), dtype)


def test_sums_agree_with_numpy_to_the_bit():
    # 3x3 stride-1 windows put up to nine terms on a pixel; NumPy's order of addition is kept.
    win = window((2, 3, 7, 7), (3, 3), (1, 1), (1, 1))
    x = random(win.input_shape, np.float32)
    dy = random(win.output_shape, np.float32, seed=1)
    cols = random((win.c * win.kh * win.kw, win.n * win.oh * win.ow), np.float32, seed=2)
    argmax = NUMPY.max_pool2d(x, win)[1]
    np.testing.assert_array_equal(NUMBA.col2im(cols, win), NUMPY.col2im(cols, win))
    np.testing.assert_array_equal(NUMBA.im2col(x, win), NUMPY.im2col(x, win))
    np.testing.assert_array_equal(NUMBA.window_sum(x, win), NUMPY.window_sum(x, win))
    np.testing.assert_array_equal(
        NUMBA.window_sum_backward(dy, win), NUMPY.window_sum_backward(dy, win)
    )
    np.testing.assert_array_equal(
        NUMBA.max_pool2d_backward(dy, argmax, win), NUMPY.max_pool2d_backward(dy, argmax, win)
    )


def test_kernels_accept_non_contiguous_inputs():
    win = window((2, 3, 6, 6), (3, 3), (2, 2), (1, 1))
    x = random((2, 6, 6, 3), np.float32).transpose(0, 3, 1, 2)
    dy = random((win.oh, win.ow, 2, 3), np.float32).transpose(2, 3, 0, 1)
    np.testing.assert_array_equal(NUMBA.im2col(x, win), NUMPY.im2col(x, win))
    np.testing.assert_array_equal(NUMBA.window_sum(x, win), NUMPY.window_sum(x, win))
    np.testing.assert_array_equal(
        NUMBA.window_sum_backward(dy, win), NUMPY.window_sum_backward(dy, win)
    )


@dtypes
def test_axpy_matches_numpy(dtype):
    x, y = random((3, 4, 5), dtype), random((3, 4, 5), dtype, seed=1)
    expected = y.copy()
    NUMPY.axpy(-0.1, x, expected)
    NUMBA.axpy(-0.1, x, y)
    np.testing.assert_array_equal(y, expected)  # float32 steps, in NumPy's order


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


@dtypes
def test_sigmoid_and_backward_match_numpy(dtype):
    x = random((3, 4, 5, 6), dtype) * 8
    x[0, 0, 0, :5] = [np.nan, -np.inf, np.inf, -100, 100]
    y = NUMBA.sigmoid(x)
    np.testing.assert_array_equal(y, NUMPY.sigmoid(x))  # the same exp, the same float32 steps
    gy = random(x.shape, dtype, seed=1)
    np.testing.assert_array_equal(NUMBA.sigmoid_backward(gy, y), NUMPY.sigmoid_backward(gy, y))


def test_sigmoid_block_by_block_is_the_same(monkeypatch):
    monkeypatch.setattr(tuning, "ELEMENTWISE_BLOCK", 7)  # 120 values: 17 blocks and 1 left
    x = random((4, 30), np.float32) * 8
    np.testing.assert_array_equal(NUMBA.sigmoid(x), NUMPY.sigmoid(x))


# Batch norm: (N, C) after a Linear layer, (N, C, H, W) after a convolution.
BN_SHAPES = {"2d": (6, 5), "4d": (3, 4, 5, 6), "4d-one-pixel": (7, 3, 1, 1)}
bn_shapes = pytest.mark.parametrize("shape", BN_SHAPES.values(), ids=BN_SHAPES)


def assert_close_to_scale(actual, expected, dtype):
    """Equal to ``RTOL`` relative to the array's largest value: the sums are accumulated in
    another order (float64 in Numba), so an element near zero may differ in its last bits."""
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    scale = np.abs(expected).max()
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype], atol=RTOL[dtype] * scale)


@pytest.fixture
def compiled_batch_norm(monkeypatch):
    """Batch norm through the compiled kernels even on inputs this small."""
    monkeypatch.setattr(tuning, "BATCH_NORM_MIN_COUNT", 0)


@dtypes
@bn_shapes
def test_batch_norm_kernels_match_numpy(compiled_batch_norm, shape, dtype):
    x = (3 + 2 * random(shape, dtype)).astype(dtype)  # a mean far from 0: the two-pass variance
    gy = random(shape, dtype, seed=1)
    weight, bias = random(shape[1], dtype, seed=2), random(shape[1], dtype, seed=3)
    stats = NUMBA.batch_norm_stats(x)
    for got, want in zip(stats, NUMPY.batch_norm_stats(x), strict=True):
        assert_close_to_scale(got, want, dtype)
    mean, var = stats
    inv_std = (1 / np.sqrt(var + 1e-5)).astype(dtype)
    for affine in ((), (weight, bias)):
        for got, want in zip(NUMBA.batch_norm_apply(x, mean, inv_std, *affine),
                             NUMPY.batch_norm_apply(x, mean, inv_std, *affine), strict=True):  # fmt: skip
            assert_close_to_scale(got, want, dtype)
    x_hat = NUMPY.batch_norm_apply(x, mean, inv_std)[0]
    sums = NUMBA.batch_norm_sums(gy, x_hat)
    for got, want in zip(sums, NUMPY.batch_norm_sums(gy, x_hat), strict=True):
        assert_close_to_scale(got, want, dtype)
    means = [(s / (gy.size // gy.shape[1])).astype(dtype) for s in sums]
    scale = weight * inv_std
    assert_close_to_scale(
        NUMBA.batch_norm_grad(gy, x_hat, scale, *means),
        NUMPY.batch_norm_grad(gy, x_hat, scale, *means),
        dtype,
    )


def test_batch_norm_variance_is_two_pass_in_float32(compiled_batch_norm):
    # E[x^2] - E[x]^2 would cancel to nothing here; mean((x - mean)^2) keeps the variance.
    x = (1000 + random((64, 2, 4, 4), np.float32) * 1e-2).astype(np.float32)
    _, var = NUMBA.batch_norm_stats(x)
    np.testing.assert_allclose(var, x.var(axis=(0, 2, 3), dtype=np.float64), rtol=1e-3)


def test_batch_norm_of_few_values_per_channel_runs_numpys_kernels():
    x = random((4, 3), np.float32)  # a Linear layer's batch: 4 values per channel
    for got, want in zip(NUMBA.batch_norm_stats(x), NUMPY.batch_norm_stats(x), strict=True):
        np.testing.assert_array_equal(got, want)


# The direct loops (a single input channel, stride 1): y and dW as the chapter's im2col
# computes them, from the compiled loops and from their NumPy fallback (float16).
DIRECT_CASES = {
    "lenet-first-layer": ((3, 1, 8, 8), (2, 1, 5, 5), (2, 2)),
    "non-square-kernel-and-padding": ((2, 1, 5, 7), (3, 1, 2, 4), (0, 2)),
    "no-padding": ((2, 1, 6, 5), (2, 1, 3, 3), (0, 0)),
    "two-channels": ((2, 2, 5, 5), (3, 2, 3, 3), (1, 1)),  # the loops take any C
    # the loops take four taps a pass, then the rest one by one
    "two-taps-left-after-four": ((2, 1, 5, 6), (2, 1, 2, 3), (1, 0)),
    "fewer-taps-than-four": ((2, 1, 4, 6), (2, 1, 1, 3), (0, 1)),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("case", DIRECT_CASES.values(), ids=DIRECT_CASES)
def test_direct_loops_equal_im2col(dtype, case):
    x_shape, w_shape, padding = case
    rng = np.random.default_rng(0)
    x, weight = (rng.standard_normal(s).astype(dtype) for s in (x_shape, w_shape))
    bias = rng.standard_normal(w_shape[0]).astype(dtype)
    win = window(x_shape, w_shape[2:], (1, 1), padding)
    cols = NUMPY.im2col(x, win)
    want_y = (weight.reshape(w_shape[0], -1) @ cols + bias[:, None]).reshape(
        w_shape[0], win.n, win.oh, win.ow).transpose(1, 0, 2, 3)  # fmt: skip
    dy = rng.standard_normal(want_y.shape).astype(dtype)
    want_dw = (dy.transpose(1, 0, 2, 3).reshape(w_shape[0], -1) @ cols.T).reshape(w_shape)

    x_pad = NUMBA.pad(x, win)
    y = NUMBA.correlate_direct(x_pad, weight, bias, np.empty(want_y.shape, dtype))
    dw = NUMBA.grad_weight_direct(x_pad, dy, w_shape)
    assert y.dtype == dw.dtype == dtype
    rtol = {np.float16: 1e-2}.get(dtype, RTOL.get(dtype))
    np.testing.assert_allclose(y, want_y, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(dw, want_dw, rtol=rtol, atol=rtol * np.abs(want_dw).max())


def test_direct_loops_are_chosen_for_one_input_channel_and_stride_1():
    one = window((2, 1, 8, 8), (5, 5), (1, 1), (2, 2))
    assert NUMBA.conv2d_plan(one, (6, 1, 5, 5)).algorithm == "direct"
    strided = window((2, 1, 8, 8), (3, 3), (2, 2), (1, 1))
    assert NUMBA.conv2d_plan(strided, (6, 1, 3, 3)).algorithm == "im2col"
    two = window((2, 2, 8, 8), (5, 5), (1, 1), (2, 2))
    assert NUMBA.conv2d_plan(two, (6, 2, 5, 5)).algorithm == "im2col, wide rows"


# im2col on wide rows (stride 1): the chapter's columns, each row as one run of the
# flattened padded plane, Wp - OW extra columns a row; from the compiled loops and from
# their NumPy fallback (float16).
WIDE_CASES = {
    "lenet-second-layer": ((2, 3, 8, 8), (5, 5), (0, 0)),
    "padded-non-square": ((2, 2, 5, 7), (3, 2), (1, 2)),
    "padding-past-kernel": ((1, 2, 3, 3), (2, 2), (2, 2)),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("case", WIDE_CASES.values(), ids=WIDE_CASES)
def test_wide_rows_are_im2col_with_extra_columns(dtype, case):
    x_shape, kernel, padding = case
    win = window(x_shape, kernel, (1, 1), padding)
    wp = win.padded_shape[3]
    x, dy = random(win.input_shape, dtype), random(win.output_shape, dtype, seed=1)
    plain = NUMPY.im2col(x, win).reshape(-1, win.n, win.oh, win.ow)

    wide = NUMBA.im2col_wide(NUMBA.pad(x, win), win).reshape(-1, win.n, win.oh, wp)
    np.testing.assert_array_equal(wide[..., : win.ow], plain)  # the extra columns: dropped
    np.testing.assert_array_equal(wide[:, :, -1, win.ow :], 0)  # past the plane's end: zeros

    dy_wide = NUMBA.widen(dy, win).reshape(-1, win.n, win.oh, wp)
    np.testing.assert_array_equal(dy_wide[..., : win.ow], dy.transpose(1, 0, 2, 3))
    np.testing.assert_array_equal(dy_wide[..., win.ow :], 0)

    bias = random(dy.shape[1], dtype, seed=2)
    y = NUMBA.narrow(dy_wide.reshape(dy.shape[1], -1), bias, np.empty_like(dy))
    np.testing.assert_array_equal(y, dy + bias.reshape(-1, 1, 1))

    cols = random(plain.shape, dtype, seed=3)  # dx: each column added back where it was read
    cols_wide = np.zeros(wide.shape, dtype)
    cols_wide[..., : win.ow] = cols
    dx = NUMBA.col2im_wide(cols_wide.reshape(-1, win.n * win.oh * wp), win)
    assert dx.dtype == dtype
    np.testing.assert_array_equal(dx, NUMPY.col2im(cols.reshape(-1, win.n * win.oh * win.ow), win))


def test_wide_rows_are_chosen_for_stride_1_where_rows_are_not_much_wider():
    lenet = window((2, 6, 14, 14), (5, 5), (1, 1), (0, 0))  # rows 14 wide, outputs 10
    assert NUMBA.conv2d_plan(lenet, (16, 6, 5, 5)).algorithm == "im2col, wide rows"
    three = window((2, 6, 3, 3), (3, 3), (1, 1), (1, 1))  # rows 5 wide, outputs 3
    assert NUMBA.conv2d_plan(three, (16, 6, 3, 3)).algorithm == "im2col"
    many = NUMBA.conv2d_plan(window((2, 16, 12, 12), (5, 5), (1, 1), (2, 2)), (32, 16, 5, 5))
    assert many.wide and not many.wide_forward  # 32 outputs: backward only
    assert many.algorithm == "im2col"
    assert NUMPY.conv2d_plan(lenet, (16, 6, 5, 5)) is None  # the reference: the chapter's
    first = window((2, 1, 28, 28), (5, 5), (1, 1), (2, 2))  # the direct loops, forward and dW
    assert not NUMBA.conv2d_plan(first, (6, 1, 5, 5)).wide


def test_other_dtypes_fall_back_to_numpy():
    win = window((1, 2, 4, 4), (2, 2), (2, 2), (0, 0))
    x = np.arange(32, dtype=np.int64).reshape(win.input_shape)
    np.testing.assert_array_equal(NUMBA.window_sum(x, win), NUMPY.window_sum(x, win))


# Every @fast_kernel method, on inputs its loops do not take: NumPy's kernel runs instead and
# gives NumPy's answer, in the input's dtype (float16: not compiled; a strided view: not
# contiguous, for the elementwise loops).
WIN = window((2, 3, 6, 6), (3, 3), (1, 1), (1, 1))
POOL = window((2, 3, 6, 6), (2, 2), (2, 2), (0, 0))


def _fallback_calls(dtype, strided=False):
    rng = np.random.default_rng(0)

    def array(*shape):
        a = rng.standard_normal(shape).astype(dtype)
        return a[..., ::2] if strided else a

    def image(win):
        a = rng.standard_normal(win.input_shape[:3] + (win.w * (2 if strided else 1),)).astype(dtype)
        return a[..., ::2] if strided else a

    cols = rng.standard_normal((3 * 9, 2 * 36)).astype(dtype)
    z = rng.standard_normal((9 * 4, 2 * 36)).astype(dtype)
    x, dy = image(POOL), rng.standard_normal(POOL.output_shape).astype(dtype)
    _, argmax = NUMPY.max_pool2d(x, POOL)
    bn = rng.standard_normal((64, 3, 8, 8)).astype(dtype)
    stats = rng.random(3).astype(dtype) + dtype(0.5)
    return {
        "col2im": (lambda b: b.col2im(cols, WIN)),
        "max_pool2d": (lambda b: b.max_pool2d(x, POOL)),
        "max_pool2d_backward": (lambda b: b.max_pool2d_backward(dy, argmax, POOL)),
        "window_sum": (lambda b: b.window_sum(x, POOL)),
        "window_sum_backward": (lambda b: b.window_sum_backward(dy, POOL)),
        "relu": (lambda b: b.relu(array(4, 6))),
        "relu_backward": (lambda b: b.relu_backward(array(4, 6), array(4, 6))),
        "sigmoid": (lambda b: b.sigmoid(array(4, 6))),
        "sigmoid_backward": (lambda b: b.sigmoid_backward(array(4, 6), array(4, 6))),
        "batch_norm_stats": (lambda b: b.batch_norm_stats(bn)),
        "batch_norm_apply": (lambda b: b.batch_norm_apply(bn, stats, stats, stats, stats)),
        "batch_norm_sums": (lambda b: b.batch_norm_sums(bn, bn)),
        "batch_norm_grad": (lambda b: b.batch_norm_grad(bn, bn, stats, stats, stats)),
    } | ({} if strided else {"tap_sum": (lambda b: engine_conv.tap_sum(b, z, WIN))})


@pytest.mark.parametrize("name", list(_fallback_calls(np.float16)))
def test_every_compiled_method_falls_back_to_numpy_for_float16(name):
    mine, theirs = _fallback_calls(np.float16)[name](NUMBA), _fallback_calls(np.float16)[name](NUMPY)
    for got, want in zip(*(r if isinstance(r, tuple) else (r,) for r in (mine, theirs)), strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", ["relu", "relu_backward", "sigmoid", "sigmoid_backward"])
def test_elementwise_loops_take_strided_views_through_numpy(name):
    mine, theirs = (_fallback_calls(np.float32, strided=True)[name](b) for b in (NUMBA, NUMPY))
    np.testing.assert_array_equal(mine, theirs)


def test_warm_up_reports_every_kernel():
    seconds = NUMBA.warm_up()
    assert set(seconds) == {
        "im2col", "col2im", "max_pool2d", "max_pool2d_backward", "window_sum",
        "window_sum_backward", "batch_norm_stats", "batch_norm_apply", "batch_norm_sums",
        "batch_norm_grad", "relu", "relu_backward", "sigmoid", "sigmoid_backward", "axpy",
        "tap_sum", "winograd F(2x2, 3x3)", "winograd F(2x2, 5x5)", "window_sum_2x2", "direct",
        "wide rows",
    }  # fmt: skip
    assert all(s >= 0 for s in seconds.values())


def test_kernels_run_as_plain_python_without_jit():
    script = textwrap.dedent(
        """
        import numpy as np
        import numba
        from minicnn.backend import Window2d, get_backend
        from minicnn.engine_room import conv, numba_kernels, tuning

        assert numba.config.DISABLE_JIT
        assert not hasattr(numba_kernels._col2im, "py_func")  # a plain function, not a dispatcher
        tuning.STRIDED_MIN_THREADS = 1  # the loops themselves, even on one thread
        tuning.BATCH_NORM_MIN_COUNT = 0  # and on inputs this small
        numpy_, numba_backend = get_backend("numpy"), get_backend("numba")
        win = Window2d.of("test", (1, 2, 5, 5), 3, 2, 1)
        x = np.random.default_rng(0).standard_normal(win.input_shape)
        dy = np.random.default_rng(1).standard_normal(win.output_shape)
        cols = numpy_.im2col(x, win)
        np.testing.assert_array_equal(numba_backend.im2col(x, win), cols)
        np.testing.assert_array_equal(numba_backend.col2im(cols, win), numpy_.col2im(cols, win))
        z = np.random.default_rng(2).standard_normal((9 * 3, x.size // 2))
        np.testing.assert_array_equal(numba_backend.tap_sum(z, win), conv.tap_sum(numpy_, z, win))
        y, argmax = numba_backend.max_pool2d(x, win)
        y_ref, argmax_ref = numpy_.max_pool2d(x, win)
        np.testing.assert_array_equal(argmax, argmax_ref)
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(
            numba_backend.max_pool2d_backward(dy, argmax, win),
            numpy_.max_pool2d_backward(dy, argmax, win),
        )
        np.testing.assert_array_equal(numba_backend.window_sum(x, win), numpy_.window_sum(x, win))
        np.testing.assert_array_equal(
            numba_backend.window_sum_backward(dy, win), numpy_.window_sum_backward(dy, win)
        )
        mean, var = numba_backend.batch_norm_stats(x)
        np.testing.assert_allclose(mean, x.mean(axis=(0, 2, 3)), rtol=1e-12)
        x_hat, y = numba_backend.batch_norm_apply(x, mean, 1 / np.sqrt(var), var, mean)
        sums = numba_backend.batch_norm_sums(x, x_hat)
        np.testing.assert_allclose(sums[1], (x * x_hat).sum(axis=(0, 2, 3)), rtol=1e-12)
        np.testing.assert_array_equal(
            numba_backend.relu_backward(x, numba_backend.relu(x)), x * (x > 0)
        )
        np.testing.assert_allclose(numba_backend.sigmoid(x), numpy_.sigmoid(x), rtol=1e-12)
        y = x.copy()
        numba_backend.axpy(-0.5, x, y)
        np.testing.assert_array_equal(y, 0.5 * x)
        dx = numba_backend.batch_norm_grad(x, x_hat, var, *sums)
        np.testing.assert_allclose(dx, numpy_.batch_norm_grad(x, x_hat, var, *sums), rtol=1e-12)
        """
    )
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
