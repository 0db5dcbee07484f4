"""conv2d, and the chapter's cross-correlation that it computes (D2L 7.2-7.4): corr2d,
padding and stride, channels, 1x1 convolutions, im2col and col2im. In this order:

1. the loops: conv2d == the chapter's loops (corr2d_multi_in_out image by image, corr2d
   for one channel, corr2d_multi_in_out_1x1 for a 1x1 conv; with stride and padding, the
   loop on the zero-padded input, subsampled), on random geometry too (hypothesis);
   im2col puts x_pad[n, c, oh*sh + i, ow*sw + j] at row (c*kh + i)*kw + j, column
   (n*OH + oh)*OW + ow, and col2im is its adjoint, <im2col(x), y> == <x, col2im(y)>;
   the chapter's known answers;
2. the gradients: conv2d's backward and the loops' (Tensor operations, autograd
   derives theirs) equal central differences (float64, minicnn.gradcheck), and the
   loops' equal conv2d's written-out backward;
3. PyTorch: forward and gradients equal torch.nn.functional.conv2d's;
4. the fast paths: conv2d unfolds its input a chunk of images at a time, on the
   textbook path (functional/conv.py, every backend with the reference switch, the
   numpy backend always) and in the engine room (engine_room/conv.py, the numba and
   cupy backends). The engine room computes y tap by tap (``tap_sum``) with stride 1
   and fewer output than input channels, y and dW by direct loops with stride 1 and one
   input channel (numba), and dx as a convolution of dy with stride 1 and fewer output
   than input channels (the case ids say which); on the numba backend, the stride-1
   cases other than the direct ones and "im2col-small-map" unfold their columns on wide
   rows (y too, where there are at most 16 output channels). Forward and every gradient
   equal PyTorch's whatever the chunk size (one image per chunk, uneven chunks, the
   whole batch), whichever way each is computed, and on one thread or cut into parts
   for several; each case's rows of the table are asserted on every backend. The numba
   backend's compiled im2col, col2im and tap_sum equal the numpy backend's kernels; a
   GPU unfolds a whole batch at once;
5. the table of algorithms (engine_room/conv.py): one layer per row, shaped so that the
   table picks that row (Winograd's at the shipped thresholds), equal to PyTorch on
   every backend; every row has such a layer in each pass it computes; a switch turns
   its rows off and another row computes the same; every switch off is the reference;
   which layers of the book's networks take Winograd, direct loops and wide rows.

On every backend, unless a test names one. Elsewhere: Winograd's algebra and kernels in
tests/test_winograd.py; conv2d_simple (the layer whose backward autograd derives) and the
reference switch in tests/test_learners_path.py; the numba backend's direct loops and
wide rows against NumPy in tests/test_numba_backend.py; the book's printed examples in
tests/test_book_examples.py.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kernel_checks import NUMBA, NUMPY, assert_close, conv_cases, dtypes, numba_threads, random
from numpy.testing import assert_allclose, assert_array_equal
from op_checks import (
    WINDOWS,
    check_against_torch,
    check_gradients,
    normal,
    on_backend,
    to_numpy,
    window,
)

import minicnn as mc
from minicnn import functional as F
from minicnn.backend import Window2d, get_backend
from minicnn.engine_room import conv as engine_conv
from minicnn.engine_room import cupy_, tuning, winograd
from minicnn.functional import conv
from minicnn.gradcheck import gradcheck


# ==== 1. the loops ========================================================================
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


# ==== 2. the gradients ====================================================================
GRADCHECK_CASES = {
    # convolution
    "conv2d": (F.conv2d, [normal(2, 2, 5, 5), normal(3, 2, 3, 3), normal(3)]),
    "conv2d_no_bias": (F.conv2d, [normal(2, 2, 4, 4), normal(2, 2, 2, 2)]),
    "conv2d_stride2_pad1": (
        lambda x, w, b: F.conv2d(x, w, b, 2, 1),
        [normal(2, 2, 5, 5), normal(3, 2, 3, 3), normal(3)],
    ),
    "conv2d_non_square": (
        lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 0)),
        [normal(1, 2, 5, 4), normal(2, 2, 3, 2), normal(2)],
    ),
    "conv2d_stride_leaves_border": (
        lambda x, w: F.conv2d(x, w, stride=2),
        [normal(1, 1, 6, 6), normal(2, 1, 3, 3)],
    ),
    "conv2d_1_channel_batch_1": (
        lambda x, w: F.conv2d(x, w, padding=1),
        [normal(1, 1, 4, 4), normal(1, 1, 3, 3)],
    ),
    "conv2d_1x1": (F.conv2d, [normal(2, 3, 3, 3), normal(2, 3, 1, 1), normal(2)]),
}


@pytest.mark.parametrize("case", list(GRADCHECK_CASES))
def test_gradcheck(backend, rng, case):
    check_gradients(GRADCHECK_CASES[case], rng)


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


# ==== 3. PyTorch ==========================================================================
TORCH_CASES = {
    # convolution
    "conv2d": (
        lambda F, x, w, b: F.conv2d(x, w, b),
        [normal(2, 3, 6, 6), normal(4, 3, 3, 3), normal(4)],
    ),
    "conv2d_no_bias": (lambda F, x, w: F.conv2d(x, w), [normal(2, 3, 5, 5), normal(2, 3, 3, 3)]),
    "conv2d_stride_padding": (
        lambda F, x, w, b: F.conv2d(x, w, b, 2, 1),
        [normal(2, 2, 7, 7), normal(3, 2, 3, 3), normal(3)],
    ),
    "conv2d_non_square": (
        lambda F, x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(0, 2)),
        [normal(2, 2, 7, 5), normal(3, 2, 3, 2), normal(3)],
    ),
    "conv2d_uncovered_border": (
        lambda F, x, w: F.conv2d(x, w, stride=3),
        [normal(1, 1, 8, 8), normal(2, 1, 3, 3)],
    ),
    "conv2d_1x1": (
        lambda F, x, w, b: F.conv2d(x, w, b),
        [normal(2, 4, 3, 3), normal(5, 4, 1, 1), normal(5)],
    ),
    "conv2d_one_channel_batch_1": (
        lambda F, x, w: F.conv2d(x, w, padding=2),
        [normal(1, 1, 4, 4), normal(1, 1, 5, 5)],
    ),
}


@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_matches_torch(backend, threads, torch, rng, case):
    check_against_torch(torch, TORCH_CASES[case], rng)


# ==== 4. the fast paths ===================================================================
# (x shape, weight shape, stride, padding): ids say which path they take
CONV_CASES = {
    "taps-and-dx-as-convolution": ((3, 5, 6, 7), (2, 5, 3, 3), 1, 1),
    "taps-and-dx-as-convolution-wide-padding": ((3, 4, 5, 5), (3, 4, 3, 2), 1, (2, 1)),
    "dx-by-col2im-equal-channels": ((3, 4, 5, 5), (4, 4, 3, 3), 1, 1),
    "dx-by-col2im-more-outputs": ((3, 2, 6, 6), (4, 2, 3, 3), 1, 1),
    "dx-by-col2im-stride-2": ((3, 5, 7, 7), (2, 5, 3, 3), 2, 1),
    "dx-by-col2im-padding-past-kernel": ((3, 4, 3, 3), (2, 4, 2, 2), 1, 2),
    "pointwise": ((3, 6, 4, 5), (4, 6, 1, 1), 1, 0),
    "pointwise-image-per-chunk": ((3, 6, 6, 6), (4, 6, 1, 1), 1, 0),  # 36 pixels: a view each
    "pointwise-narrowing": ((3, 6, 4, 5), (2, 6, 1, 1), 1, 0),
    "direct-one-channel": ((3, 1, 7, 6), (4, 1, 3, 2), 1, (1, 2)),
    "direct-one-channel-no-padding": ((3, 1, 6, 6), (2, 1, 5, 5), 1, 0),
    "one-channel-stride-2-by-im2col": ((3, 1, 7, 7), (2, 1, 3, 3), 2, 1),
    "im2col-small-map": ((3, 2, 3, 3), (4, 2, 3, 3), 1, 1),  # rows 5 wide, outputs 3
    "wide-rows-backward-only": ((2, 2, 5, 5), (17, 2, 3, 3), 1, 1),  # 17 outputs: y by im2col
}
# The rows of the table each case takes, (forward, backward), on the numba and the cupy
# backend; the numpy backend has no engine room (the chapter's loop, "im2col").
TAPS, BY_CONV, WIDE = "taps", "dx by conv", "im2col, wide rows"
CONV_CASE_ROWS = {
    "taps-and-dx-as-convolution": ((TAPS, "dx by conv on wide rows"), (TAPS, BY_CONV)),
    "taps-and-dx-as-convolution-wide-padding": ((TAPS, "dx by conv on wide rows"), (TAPS, BY_CONV)),
    "dx-by-col2im-equal-channels": ((WIDE, WIDE), ("im2col", "im2col")),
    "dx-by-col2im-more-outputs": ((WIDE, WIDE), ("im2col", "im2col")),
    "dx-by-col2im-stride-2": (("im2col", "im2col"), ("im2col", "im2col")),
    "dx-by-col2im-padding-past-kernel": ((TAPS, WIDE), (TAPS, "im2col")),
    "pointwise": (("im2col", BY_CONV), ("im2col", BY_CONV)),
    "pointwise-image-per-chunk": (("im2col", BY_CONV), ("im2col", BY_CONV)),
    "pointwise-narrowing": (("im2col", BY_CONV), ("im2col", BY_CONV)),
    "direct-one-channel": (("direct", "direct"), ("im2col", "im2col")),
    "direct-one-channel-no-padding": (("direct", "direct"), ("im2col", "im2col")),
    "one-channel-stride-2-by-im2col": (("im2col", "im2col"), ("im2col", "im2col")),
    "im2col-small-map": (("im2col", "im2col"), ("im2col", "im2col")),
    "wide-rows-backward-only": (("im2col", WIDE), ("im2col", "im2col")),
}
# CHUNK_BYTES: 1 byte means one image per chunk; 2 images' columns leave an uneven remainder
CHUNKS = {"one-image": lambda per_image: 1, "two-images": lambda per_image: 2 * per_image,
          "whole-batch": lambda per_image: 2**40}  # fmt: skip


@pytest.mark.parametrize("reference", [False, True], ids=["engine-room", "reference"])
@pytest.mark.parametrize("case", CONV_CASES.values(), ids=CONV_CASES)
@pytest.mark.parametrize("chunk", CHUNKS.values(), ids=CHUNKS)
def test_conv2d_equals_torch_for_any_chunk_size(
    backend, threads, torch, rng, monkeypatch, case, chunk, reference
):
    x_shape, w_shape, stride, padding = case
    x, w, b = (rng.standard_normal(s) for s in (x_shape, w_shape, w_shape[:1]))
    window = mc.backend.Window2d.of("test", x_shape, w_shape[2:], stride, padding)
    per_image = window.c * window.kh * window.kw * window.oh * window.ow * x.itemsize
    monkeypatch.setattr(conv, "CHUNK_BYTES", chunk(per_image))  # the textbook path's
    monkeypatch.setattr(tuning, "CONV_CHUNK_BYTES", chunk(per_image))  # the engine room's
    monkeypatch.setattr(tuning, "GPU_CONV_CHUNK_BYTES", chunk(per_image))  # and on a GPU

    if reference and backend.conv2d_plan(window, w_shape) is None:
        pytest.skip(f"the {backend.name} backend computes the chapter's way with or without the switch")
    monkeypatch.setattr(mc.config, "reference", reference)
    _assert_conv2d_equals_torch(torch, rng, (x, w, b), stride, padding)


@pytest.mark.parametrize("case", CONV_CASES.values(), ids=CONV_CASES)
@pytest.mark.parametrize("min_elements", [1, 2**40], ids=["dw-in-layout", "dw-transposed"])
def test_conv2d_weight_gradient_equals_torch_in_either_layout(
    backend, threads, torch, rng, monkeypatch, case, min_elements
):
    # the engine room sums dW as dy @ cols^T from DW_IN_LAYOUT_MIN_ELEMENTS, transposed
    # below it: one image per chunk, so that each part adds up several chunks' products
    x_shape, w_shape, stride, padding = case
    monkeypatch.setattr(tuning, "DW_IN_LAYOUT_MIN_ELEMENTS", min_elements)
    monkeypatch.setattr(tuning, "CONV_CHUNK_BYTES", 1)
    arrays = [rng.standard_normal(s) for s in (x_shape, w_shape, w_shape[:1])]
    _assert_conv2d_equals_torch(torch, rng, arrays, stride, padding)


@pytest.mark.parametrize("case", CONV_CASES)
def test_each_fast_path_case_takes_its_rows_of_the_table(backend, case):
    on_numba, on_cupy = CONV_CASE_ROWS[case]
    expected = {"numba": on_numba, "cupy": on_cupy}.get(backend.name, ("im2col", "im2col"))
    assert _rows_taken(backend, CONV_CASES[case]) == expected


def _assert_conv2d_equals_torch(torch, rng, arrays, stride, padding):
    mine = [mc.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y = F.conv2d(*mine, stride=stride, padding=padding)
    ty = torch.nn.functional.conv2d(*theirs, stride=stride, padding=padding)
    assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    upstream = rng.standard_normal(y.shape)
    y.backward(mc.tensor(upstream))
    ty.backward(torch.tensor(upstream))
    for name, a, t in zip(("x", "weight", "bias"), mine, theirs, strict=True):
        assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
    return y.creator.algorithm  # forward's row: the layer keeps its name after backward


@pytest.mark.parametrize("needs", [(True, False), (False, True)], ids=["x-only", "weight-only"])
def test_conv2d_computes_only_the_gradients_asked_for(backend, rng, needs):
    x = mc.tensor(rng.standard_normal((2, 3, 5, 5)), requires_grad=needs[0])
    w = mc.tensor(rng.standard_normal((2, 3, 3, 3)), requires_grad=needs[1])
    F.conv2d(x, w, padding=1).sum().backward()
    assert (x.grad is not None, w.grad is not None) == needs


def test_conv2d_float32_stays_float32(backend, rng):
    x = mc.tensor(rng.standard_normal((2, 3, 6, 6)).astype(np.float32), requires_grad=True)
    w = mc.tensor(rng.standard_normal((2, 3, 3, 3)).astype(np.float32), requires_grad=True)
    y = F.conv2d(x, w, padding=1)
    y.sum().backward()
    assert y.dtype == x.grad.dtype == w.grad.dtype == np.float32


# ---- the numba backend's kernels against the numpy backend's ------------------------------
@numba_threads
@dtypes
@conv_cases
def test_im2col_and_col2im_match_numpy(case, dtype):
    win = window(*case)
    x = random(win.input_shape, dtype)
    np.testing.assert_array_equal(NUMBA.im2col(x, win), NUMPY.im2col(x, win))
    cols = random((win.c * win.kh * win.kw, win.n * win.oh * win.ow), dtype, seed=1)
    assert_close(NUMBA.col2im(cols, win), NUMPY.col2im(cols, win), dtype)


@numba_threads
@dtypes
@conv_cases
def test_tap_sum_matches_numpy(case, dtype):
    win = window(*case)
    z = random((win.kh * win.kw * 3, win.n * win.h * win.w), dtype)  # 3 output channels
    np.testing.assert_array_equal(NUMBA.tap_sum(z, win), engine_conv.tap_sum(NUMPY, z, win))


# ---- on a GPU -----------------------------------------------------------------------------
def test_conv_unfolds_whole_batches_on_a_gpu_and_cache_sized_chunks_on_a_cpu():
    """A GPU pays per kernel launch, not per cache miss: one chunk per layer there."""
    from minicnn.backend import get_backend
    from minicnn.backend.window import Window2d
    from minicnn.engine_room import conv

    gpu = object.__new__(cupy_.CupyBackend)  # its chunking needs no device
    cpu = get_backend("numpy")  # the device decides; the numba backend chunks as this
    conv3x3 = Window2d.of("conv2d", (128, 64, 24, 24), 3, 1, 1)  # 85 MB of float32 columns
    pointwise = Window2d.of("conv2d", (128, 64, 24, 24), 1, 1, 0)
    assert len(list(conv._chunks(gpu, conv3x3, 4, 0))) == 1
    assert len(list(conv._chunks(gpu, pointwise, 4, 0))) == 1
    assert len(list(conv._chunks(cpu, conv3x3, 4, 0))) > 1
    assert len(list(conv._chunks(cpu, pointwise, 4, 0))) == 128  # one image, a view, each
    assert not getattr(gpu, "conv_winograd", False)  # the GPU runs im2col + cuBLAS


# ==== 5. the table of algorithms ==========================================================
W3, W5 = "Winograd F(2x2, 3x3)", "Winograd F(2x2, 5x5)"
# id: (x shape, weight shape, stride, padding), then (forward row, backward row) on the
# numba and the cupy backend. The numpy backend has no engine room: the chapter's loop.
ROWS = {
    "winograd-3x3": (((2, 64, 6, 6), (64, 64, 3, 3), 1, 1), (W3, W3), ("im2col", "im2col")),
    "winograd-5x5": (((2, 64, 6, 6), (64, 64, 5, 5), 1, 2), (W5, W5), ("im2col", "im2col")),
    "direct": (((3, 1, 7, 6), (4, 1, 3, 2), 1, (1, 2)), ("direct", "direct"), ("im2col", "im2col")),
    "taps-dx-by-conv-on-wide-rows": (  # dy padded to 9 wide for 7 outputs: wide rows
        ((3, 5, 6, 7), (2, 5, 3, 3), 1, 1), ("taps", "dx by conv on wide rows"), ("taps", "dx by conv")),
    "taps-dx-by-conv": (  # dy padded to 5 wide for 3 outputs: too wide for wide rows
        ((2, 6, 3, 3), (2, 6, 3, 3), 1, 1), ("taps", "dx by conv"), ("taps", "dx by conv")),
    "im2col-wide-rows": (  # rows 7 wide for 5 outputs, 4 output channels
        ((2, 2, 5, 5), (4, 2, 3, 3), 1, 1), ("im2col, wide rows",) * 2, ("im2col", "im2col")),
    "im2col-backward-on-wide-rows": (  # 17 output channels: y by im2col
        ((2, 2, 5, 5), (17, 2, 3, 3), 1, 1), ("im2col", "im2col, wide rows"), ("im2col", "im2col")),
    "im2col": (((3, 5, 7, 7), (2, 5, 3, 3), 2, 1), ("im2col", "im2col"), ("im2col", "im2col")),
}


def _rows_taken(backend, layer) -> tuple[str, str]:
    """(forward's row, backward's row) on ``backend``, "im2col" for the chapter's loop."""
    x_shape, w_shape, stride, padding = layer
    plan = backend.conv2d_plan(Window2d.of("test", x_shape, w_shape[2:], stride, padding), w_shape)
    return ("im2col", "im2col") if plan is None else (plan.algorithm, plan.backward_name)


def _expected(backend, case) -> tuple[str, str]:
    _, on_numba, on_cupy = ROWS[case]
    return {"numba": on_numba, "cupy": on_cupy}.get(backend.name, ("im2col", "im2col"))


def _assert_equals_torch(torch, rng, layer):
    """conv2d's y and its three gradients equal PyTorch's; returns the layer's algorithm."""
    x_shape, w_shape, stride, padding = layer
    arrays = [rng.standard_normal(s) for s in (x_shape, w_shape, w_shape[:1])]
    return _assert_conv2d_equals_torch(torch, rng, arrays, stride, padding)


@pytest.mark.parametrize("case", ROWS)
def test_each_row_takes_its_layer_and_equals_torch(backend, torch, rng, case):
    layer = ROWS[case][0]
    assert _rows_taken(backend, layer) == _expected(backend, case)
    assert _assert_equals_torch(torch, rng, layer) == _expected(backend, case)[0]


def test_every_row_of_the_table_has_a_layer_in_each_pass_it_computes():
    numba_rows = {rows for _, rows, _ in ROWS.values()}
    forward_rows = {forward for forward, _ in numba_rows}
    backward_rows = {backward for _, backward in numba_rows}
    for row in engine_conv.ALGORITHMS:
        if row.forward is not None:
            assert row.name in forward_rows, f"no layer takes {row.name!r} forward"
        if row.backward is not None:
            assert row.name in backward_rows, f"no layer takes {row.name!r} backward"


@pytest.fixture
def numba_backend():
    pytest.importorskip("numba", reason="needs Numba (pip install -e '.[numba]')")
    with mc.use_backend("numba") as backend:
        yield backend


@pytest.mark.parametrize("case", ROWS)
def test_a_switch_turns_its_rows_off_and_another_row_computes_the_same(numba_backend, torch, rng, case):
    layer = ROWS[case][0]
    taken = _plan_rows(numba_backend, layer)
    switches = {switch for row in taken for switch in row.switches}
    with mc.config.turned_off(*switches):
        instead = _plan_rows(numba_backend, layer)
        assert instead[0] is not taken[0] and instead[1] is not taken[1]
        assert all(row is None or switches.isdisjoint(row.switches) for row in instead)
        forward = "im2col" if instead[0] is None else instead[0].name  # None: the chapter's
        assert _assert_equals_torch(torch, rng, layer) == forward
    assert mc.config.conv_off == frozenset()  # restored


def _plan_rows(backend, layer):
    """(forward's row, backward's row) of the table, None for the chapter's loop."""
    x_shape, w_shape, stride, padding = layer
    plan = backend.conv2d_plan(Window2d.of("test", x_shape, w_shape[2:], stride, padding), w_shape)
    return (None, None) if plan is None else (plan.forward_algorithm, plan.backward_algorithm)


def test_one_pass_on_the_chapters_loop_and_the_other_on_a_row(numba_backend, torch, rng):
    # a narrowing 1x1 layer: with im2col off, no row computes its forward (taps and wide
    # rows need a window larger than 1x1), so functional/conv.py's loop does; its
    # backward is still the table's dx by conv
    layer = ((3, 6, 4, 5), (4, 6, 1, 1), 1, 0)
    with mc.config.turned_off("im2col"):
        forward, backward = _plan_rows(numba_backend, layer)
        assert forward is None and backward.name == "dx by conv"
        assert _assert_equals_torch(torch, rng, layer) == "im2col"


@pytest.mark.parametrize("case", ROWS)
def test_every_switch_off_is_the_reference(backend, case):
    layer = ROWS[case][0]
    x_shape, w_shape, stride, padding = layer
    win = Window2d.of("test", x_shape, w_shape[2:], stride, padding)
    with mc.config.using_reference():
        assert backend.conv2d_plan(win, w_shape) is None
    with mc.config.turned_off(*engine_conv.SWITCHES):
        assert backend.conv2d_plan(win, w_shape) is None


def test_a_misspelt_switch_names_the_switches(numba_backend, monkeypatch):
    with pytest.raises(ValueError, match="'winogrd'.*the switches are.*winograd"):
        with mc.config.turned_off("winogrd"):
            pass
    monkeypatch.setattr(mc.config, "conv_off", frozenset({"winogrd"}))
    x = mc.tensor(np.ones((1, 2, 5, 5)))
    with pytest.raises(ValueError, match="MINICNN_CONV_OFF.*winogrd.*the switches are"):
        F.conv2d(x, mc.tensor(np.ones((1, 2, 3, 3))))


def test_the_environment_variable_turns_switches_off():
    env = dict(os.environ, MINICNN_CONV_OFF="winograd, taps")
    code = "import minicnn as mc; print(sorted(mc.config.conv_off))"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.stdout.strip() == "['taps', 'winograd']", result.stderr


# ---- which layers of the book's networks take which row ---------------------------------
@numba_threads
def test_direct_loops_are_chosen_for_one_input_channel_and_stride_1():
    one = window((2, 1, 8, 8), (5, 5), (1, 1), (2, 2))
    assert NUMBA.conv2d_plan(one, (6, 1, 5, 5)).algorithm == "direct"
    strided = window((2, 1, 8, 8), (3, 3), (2, 2), (1, 1))
    assert NUMBA.conv2d_plan(strided, (6, 1, 3, 3)).algorithm == "im2col"
    two = window((2, 2, 8, 8), (5, 5), (1, 1), (2, 2))
    assert NUMBA.conv2d_plan(two, (6, 2, 5, 5)).algorithm == "im2col, wide rows"


@numba_threads
def test_wide_rows_are_chosen_for_stride_1_where_rows_are_not_much_wider():
    lenet = window((2, 6, 14, 14), (5, 5), (1, 1), (0, 0))  # rows 14 wide, outputs 10
    assert NUMBA.conv2d_plan(lenet, (16, 6, 5, 5)).algorithm == "im2col, wide rows"
    three = window((2, 6, 3, 3), (3, 3), (1, 1), (1, 1))  # rows 5 wide, outputs 3
    assert NUMBA.conv2d_plan(three, (16, 6, 3, 3)).algorithm == "im2col"
    many = NUMBA.conv2d_plan(window((2, 16, 12, 12), (5, 5), (1, 1), (2, 2)), (32, 16, 5, 5))
    assert many.backward_algorithm.name == "im2col, wide rows"  # 32 outputs: backward only
    assert many.algorithm == "im2col"
    assert NUMPY.conv2d_plan(lenet, (16, 6, 5, 5)) is None  # the reference: the chapter's
    first = window((2, 1, 28, 28), (5, 5), (1, 1), (2, 2))  # the direct loops, forward and dW
    assert NUMBA.conv2d_plan(first, (6, 1, 5, 5)).backward_algorithm.name == "direct"


def test_which_layers_numba_computes_by_winograd(monkeypatch):
    """3x3 and 5x5 stride-1 layers with enough channels and output, forward and backward
    (backward for 3x3 layers as wide or large as tuning.py asks); never on the NumPy
    reference."""
    pytest.importorskip("numba", reason="needs Numba (pip install -e '.[numba]')")

    def plan(backend, x_shape, out_channels, kernel=3, stride=1, padding=1):
        win = Window2d.of("test", x_shape, kernel, stride, padding)
        weight_shape = (out_channels, x_shape[1], kernel, kernel)
        return get_backend(backend).conv2d_plan(win, weight_shape)

    def uses_winograd(*args, **kwargs):  # forward, and backward
        layer = plan(*args, **kwargs)
        rows = (None, None) if layer is None else (layer.forward_algorithm, layer.backward_algorithm)
        return tuple(row.alg if isinstance(row, engine_conv.Winograd) else None for row in rows)

    f3, f5 = winograd.F2x2_3x3, winograd.F2x2_5x5
    assert uses_winograd("numba", (2, 64, 56, 56), 128) == (f3, f3)  # VGG's: large maps
    assert uses_winograd("numba", (2, 256, 12, 12), 384) == (f3, f3)  # AlexNet's: wide
    assert uses_winograd("numba", (2, 96, 26, 26), 256, kernel=5, padding=2) == (f5, f5)
    assert uses_winograd("numba", (2, 64, 24, 24), 64) == (f3, f3)  # ResNet-18's
    assert uses_winograd("numba", (2, 128, 12, 12), 192) == (f3, f3)  # GoogLeNet's
    assert uses_winograd("numba", (2, 256, 6, 6), 256) == (f3, f3)  # a 6x6 output
    assert plan("numba", (2, 64, 24, 24), 64).description == "Winograd F(2x2, 3x3)"
    monkeypatch.setattr(tuning, "WINOGRAD_WIDE_CHANNELS", 128)  # backward for wider ones only
    assert uses_winograd("numba", (2, 64, 24, 24), 64) == (f3, None)
    assert uses_winograd("numba", (2, 128, 12, 12), 192) == (f3, f3)
    # backward by im2col, its columns on wide rows (26 padded beside 24 outputs)
    description = "Winograd F(2x2, 3x3), backward by im2col on wide rows"
    assert plan("numba", (2, 64, 24, 24), 64).description == description
    assert plan("numba", (2, 64, 24, 24), 64).backward_algorithm.name == "im2col, wide rows"
    assert not any(uses_winograd("numpy", (2, 64, 56, 56), 128))
    assert not any(uses_winograd("numba", (2, 64, 56, 56), 128, stride=2))
    assert not any(uses_winograd("numba", (2, 64, 56, 56), 128, kernel=7, padding=3))
    assert not any(uses_winograd("numba", (2, 256, 4, 4), 256))  # a 4x4 output
    assert not any(uses_winograd("numba", (2, 1, 28, 28), 64))  # a first layer
    assert not any(uses_winograd("numba", (2, 128, 24, 24), 32))  # DenseNet's growth layers
    assert not any(uses_winograd("numba", (2, 512, 3, 3), 512))  # a 3x3 output
