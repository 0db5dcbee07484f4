"""The Numba kernels agree with the NumPy reference kernels, shape for shape. Each
operation's kernels (im2col and col2im, the taps, pooling, ReLU and the sigmoid, batch
norm) are tested beside its other checks, one file per operation in tests/ops/, with the
helpers of tests/kernel_checks.py. Here the rest: col2im as im2col's adjoint on the
compiled kernels (tests/ops/test_conv2d.py holds the same identity on every backend,
under the same name), sums bit for bit, non-contiguous inputs, SGD's axpy, the direct
loops and the wide rows (which layers take them: tests/ops/test_conv2d.py), the
fallbacks to NumPy's kernels, warming up, and the kernels without the JIT.

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

from kernel_checks import NUMBA, NUMPY, RTOL, conv_cases, dtypes, random  # noqa: E402
from op_checks import window  # noqa: E402

from minicnn.engine_room import conv as engine_conv  # noqa: E402

# Every test twice: the loops on one thread, and cut into parts for a team of 3
# (the numba_team fixture, tests/conftest.py).
pytestmark = pytest.mark.usefixtures("numba_team")


@conv_cases
def test_col2im_is_the_adjoint_of_im2col(case):
    win = window(*case)
    x = random(win.input_shape, np.float64)
    y = random((win.c * win.kh * win.kw, win.n * win.oh * win.ow), np.float64, seed=1)
    lhs = np.vdot(NUMBA.im2col(x, win), y)
    rhs = np.vdot(x, NUMBA.col2im(y, win))
    assert lhs == pytest.approx(rhs, rel=1e-12)


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
