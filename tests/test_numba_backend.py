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
    "non-overlapping": ((2, 2, 6, 6), (2, 2), (2, 2), (0, 0)),
    "non-square": ((1, 2, 7, 10), (2, 4), (1, 3), (1, 2)),
    "one-channel-batch1": ((1, 1, 5, 5), (3, 3), (1, 1), (1, 1)),
    "kernel-is-padded-input": ((2, 2, 3, 4), (5, 6), (1, 1), (1, 1)),
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


@dtypes
@conv_cases
def test_im2col_and_col2im_match_numpy(case, dtype):
    win = window(*case)
    x = random(win.input_shape, dtype)
    assert_close(NUMBA.im2col(x, win), NUMPY.im2col(x, win), dtype)
    cols = random((win.c * win.kh * win.kw, win.n * win.oh * win.ow), dtype, seed=1)
    assert_close(NUMBA.col2im(cols, win), NUMPY.col2im(cols, win), dtype)


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
def test_max_pool2d_ties_pick_the_first_maximum(case):
    win = window(*case)
    x = np.full(win.input_shape, 2.0, dtype=np.float32)
    y, argmax = NUMBA.max_pool2d(x, win)
    y_ref, argmax_ref = NUMPY.max_pool2d(x, win)
    np.testing.assert_array_equal(argmax, argmax_ref)
    np.testing.assert_array_equal(y, y_ref)
    if win.ph == 0 and win.pw == 0:  # with padding the first maximum is the first real pixel
        assert (argmax == 0).all()


def test_max_pool2d_nan_wins_like_numpy():
    win = window((1, 1, 4, 4), (2, 2), (1, 1), (0, 0))
    x = random(win.input_shape, np.float64)
    x[0, 0, 1, 2] = np.nan
    y, argmax = NUMBA.max_pool2d(x, win)
    y_ref, argmax_ref = NUMPY.max_pool2d(x, win)
    np.testing.assert_array_equal(y, y_ref)  # NaNs compare equal here
    np.testing.assert_array_equal(argmax, argmax_ref)
    assert np.isnan(y[0, 0, :2, 1:3]).all()


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
    np.testing.assert_array_equal(
        NUMBA.window_sum_backward(dy, win), NUMPY.window_sum_backward(dy, win)
    )


def test_other_dtypes_fall_back_to_numpy():
    win = window((1, 2, 4, 4), (2, 2), (2, 2), (0, 0))
    x = np.arange(32, dtype=np.int64).reshape(win.input_shape)
    np.testing.assert_array_equal(NUMBA.window_sum(x, win), NUMPY.window_sum(x, win))


def test_warm_up_reports_every_kernel():
    seconds = NUMBA.warm_up()
    assert set(seconds) == {
        "im2col", "col2im", "max_pool2d", "max_pool2d_backward", "window_sum",
        "window_sum_backward",
    }  # fmt: skip
    assert all(s >= 0 for s in seconds.values())


def test_kernels_run_as_plain_python_without_jit():
    script = textwrap.dedent(
        """
        import numpy as np
        import numba
        from minicnn.backend import Window2d, get_backend
        from minicnn.backend import numba_

        assert numba.config.DISABLE_JIT
        assert not hasattr(numba_._im2col, "py_func")  # a plain function, not a dispatcher
        numpy_, numba_backend = get_backend("numpy"), get_backend("numba")
        win = Window2d.of("test", (1, 2, 5, 5), 3, 2, 1)
        x = np.random.default_rng(0).standard_normal(win.input_shape)
        dy = np.random.default_rng(1).standard_normal(win.output_shape)
        cols = numpy_.im2col(x, win)
        np.testing.assert_array_equal(numba_backend.im2col(x, win), cols)
        np.testing.assert_array_equal(numba_backend.col2im(cols, win), numpy_.col2im(cols, win))
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
