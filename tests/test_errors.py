"""Bad input fails early with a ValueError or TypeError whose message names the
operation, what it expected and what it got."""

from __future__ import annotations

import re

import numpy as np
import pytest

import minicnn as mc
import minicnn.backend
from minicnn import functional as F


def t(*shape, dtype=np.float64):
    return mc.tensor(np.ones(shape, dtype=dtype))


def m(text: str) -> str:
    """A literal piece of an error message, as a ``match`` pattern."""
    return re.escape(text)


# ---- wrong number of dimensions ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: F.conv2d(t(3, 5, 5), t(2, 3, 3, 3)),
            "conv2d: expected a 4-D input (N, C, H, W), got shape (3, 5, 5)",
        ),
        (
            lambda: F.conv2d(t(1, 3, 5, 5), t(3, 3, 3)),
            "conv2d: expected a 4-D weight (out_channels, in_channels, kh, kw), got shape (3, 3, 3)",
        ),
        (
            lambda: F.max_pool2d(t(3, 4, 4), 2),
            "max_pool2d: expected a 4-D input (N, C, H, W), got shape (3, 4, 4)",
        ),
        (
            lambda: F.avg_pool2d(t(4, 4), 2),
            "avg_pool2d: expected a 4-D input (N, C, H, W), got shape (4, 4)",
        ),
        (
            lambda: F.adaptive_avg_pool2d(t(2, 4, 4), 1),
            "adaptive_avg_pool2d: expected a 4-D input (N, C, H, W), got shape (2, 4, 4)",
        ),
        (
            lambda: F.batch_norm(t(2, 3, 4), None, None, training=True),
            "batch_norm: expected a 2-D (N, C) or 4-D (N, C, H, W) input, got shape (2, 3, 4)",
        ),
        (
            lambda: F.linear(t(2, 3, 4), t(5, 4)),
            "linear: expected a 2-D input (N, in_features), got shape (2, 3, 4)",
        ),
        (
            lambda: F.cross_entropy(t(4), np.array([0])),
            "cross_entropy: expected input of shape (N, classes), got (4,)",
        ),
        (
            lambda: F.matmul(t(3), t(3, 2)),
            "matmul: both inputs need at least 2 dimensions, got shapes (3,) and (3, 2)",
        ),
        (
            lambda: F.corr2d(t(1, 3, 3), t(2, 2)),
            "corr2d: expected X with 2 dimensions (h, w), got shape (1, 3, 3)",
        ),
        (
            lambda: F.pool2d(t(1, 3, 3), 2),
            "pool2d: expected X with 2 dimensions (h, w), got shape (1, 3, 3)",
        ),
    ],
    ids=lambda v: v.split(":")[0] if isinstance(v, str) else "",
)
def test_wrong_number_of_dimensions(call, message):
    with pytest.raises(ValueError, match=m(message)):
        call()


# ---- convolution and pooling geometry ---------------------------------------------------------
def test_conv2d_channel_mismatch():
    with pytest.raises(
        ValueError,
        match=m(
            "conv2d: input has 3 channels but weight (4, 2, 3, 3) expects 2 (input shape (1, 3, 5, 5))"
        ),
    ):
        F.conv2d(t(1, 3, 5, 5), t(4, 2, 3, 3))


def test_conv2d_bias_mismatch():
    with pytest.raises(
        ValueError, match=m("conv2d: bias shape (3,) does not match 4 output channels")
    ):
        F.conv2d(t(1, 2, 5, 5), t(4, 2, 3, 3), t(3))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: F.conv2d(t(1, 1, 3, 3), t(1, 1, 5, 5)),
            "conv2d: kernel (5, 5) is larger than the padded input (3, 3)",
        ),
        (
            lambda: F.conv2d(t(1, 1, 3, 3), t(1, 1, 6, 2), padding=1),
            "conv2d: kernel (6, 2) is larger than the padded input (5, 5) (input (3, 3), padding (1, 1))",
        ),
        (
            lambda: F.max_pool2d(t(1, 1, 3, 3), 4),
            "max_pool2d: kernel (4, 4) is larger than the padded input (3, 3)",
        ),
        (
            lambda: F.avg_pool2d(t(1, 1, 3, 2), (2, 3)),
            "avg_pool2d: kernel (2, 3) is larger than the padded input (3, 2)",
        ),
    ],
    ids=["conv2d", "conv2d_padded", "max_pool2d", "avg_pool2d"],
)
def test_kernel_larger_than_the_padded_input(call, message):
    with pytest.raises(ValueError, match=m(message)):
        call()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: F.conv2d(t(1, 1, 5, 5), t(1, 1, 3, 3), stride=0),
            "conv2d: stride must be positive, got (0, 0)",
        ),
        (
            lambda: F.conv2d(t(1, 1, 5, 5), t(1, 1, 3, 3), stride=(1, -2)),
            "conv2d: stride must be positive, got (1, -2)",
        ),
        (
            lambda: F.max_pool2d(t(1, 1, 5, 5), 2, stride=0),
            "max_pool2d: stride must be positive, got (0, 0)",
        ),
        (
            lambda: F.conv2d(t(1, 1, 5, 5), t(1, 1, 3, 3), padding=-1),
            "conv2d: padding must be non-negative, got (-1, -1)",
        ),
        (
            lambda: F.avg_pool2d(t(1, 1, 5, 5), 2, padding=(0, -1)),
            "avg_pool2d: padding must be non-negative, got (0, -1)",
        ),
        (
            lambda: F.max_pool2d(t(1, 1, 5, 5), 2, padding=2),
            "max_pool2d: padding (2, 2) must be at most half the kernel size (2, 2)",
        ),
        (
            lambda: F.avg_pool2d(t(1, 1, 5, 5), (3, 2), padding=(1, 2)),
            "avg_pool2d: padding (1, 2) must be at most half the kernel size (3, 2)",
        ),
        (
            lambda: F.max_pool2d(t(1, 1, 5, 5), 0),
            "max_pool2d: kernel_size must be positive, got (0, 0)",
        ),
        (
            lambda: F.adaptive_avg_pool2d(t(1, 1, 5, 5), 0),
            "adaptive_avg_pool2d: output_size must be positive, got (0, 0)",
        ),
    ],
    ids=[
        "conv_stride_0",
        "conv_stride_neg",
        "pool_stride_0",
        "conv_pad_neg",
        "avg_pad_neg",
        "max_pad_half",
        "avg_pad_half",
        "kernel_0",
        "adaptive_0",
    ],
)
def test_bad_stride_padding_and_sizes(call, message):
    with pytest.raises(ValueError, match=m(message)):
        call()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: F.max_pool2d(t(1, 1, 4, 4), 2.5),
            "max_pool2d: kernel_size must be an int or a pair of ints, got 2.5",
        ),
        (
            lambda: F.conv2d(t(1, 1, 4, 4), t(1, 1, 2, 2), stride=(1, 2, 3)),
            "conv2d: stride must be an int or a pair of ints, got (1, 2, 3)",
        ),
    ],
    ids=["float_kernel", "triple_stride"],
)
def test_window_arguments_of_the_wrong_type(call, message):
    with pytest.raises(TypeError, match=m(message)):
        call()


# ---- dtypes and devices -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: F.conv2d(t(1, 1, 4, 4, dtype=np.float32), t(1, 1, 2, 2)),
            "conv2d: inputs have different float dtypes (input float32, weight float64)",
        ),
        (
            lambda: F.linear(t(2, 3, dtype=np.float32), t(4, 3, dtype=np.float32), t(4)),
            "linear: inputs have different float dtypes (input float32, weight float32, bias float64)",
        ),
        (
            lambda: t(3, dtype=np.float32) + t(3),
            "add: inputs have different float dtypes (a float32, b float64)",
        ),
        (
            lambda: F.batch_norm(t(2, 3, dtype=np.float32), None, None, t(3), t(3), True),
            "batch_norm: inputs have different float dtypes (input float32, weight float64, bias float64)",
        ),
        (
            lambda: F.batch_norm(t(2, 3, dtype=np.float32), np.zeros(3), np.ones(3)),
            "batch_norm: input is float32 but running_mean is float64",
        ),
    ],
    ids=["conv2d", "linear", "add", "batch_norm", "batch_norm_running"],
)
def test_mismatched_float_dtypes(call, message):
    with pytest.raises(TypeError, match=m(message) + ".*convert"):
        call()


def test_mismatched_backends_numpy_and_cupy():
    if not {"numpy", "cupy"} <= set(mc.available_backends()):
        pytest.skip(
            f"needs both numpy and cupy arrays: {minicnn.backend.unavailable_reason('cupy')}"
        )
    with mc.use_backend("numpy"):
        x = t(1, 1, 4, 4)
    with mc.use_backend("cupy"):
        w = t(1, 1, 2, 2)
    with pytest.raises(
        TypeError, match=m("conv2d: inputs live on different devices (input on cpu, weight on")
    ):
        F.conv2d(x, w)
    with pytest.raises(
        TypeError, match="cross_entropy: input is a cupy array but target is a numpy one"
    ):
        F.cross_entropy(w.reshape(1, 4), np.array([0]))


# ---- shapes that do not fit -------------------------------------------------------------------
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_broadcasting_failure(op):
    with pytest.raises(ValueError, match=m(f"{op}: shapes (2, 3) and (4,) do not broadcast")):
        getattr(F, op)(t(2, 3), t(4))


def test_linear_feature_mismatch():
    with pytest.raises(
        ValueError,
        match=m(
            "linear: input has 3 features (shape (5, 3)) but weight has shape (2, 4) (out_features, in_features)"
        ),
    ):
        F.linear(t(5, 3), t(2, 4))
    with pytest.raises(ValueError, match=m("linear: bias shape (3,) does not match 2 outputs")):
        F.linear(t(5, 4), t(2, 4), t(3))


def test_matmul_shape_mismatch():
    with pytest.raises(
        ValueError, match=m("matmul: inner dimensions differ: a is (2, 3), b is (4, 5)")
    ):
        F.matmul(t(2, 3), t(4, 5))
    with pytest.raises(
        ValueError,
        match=m("matmul: batch dimensions do not broadcast: a is (2, 2, 3), b is (3, 3, 4)"),
    ):
        F.matmul(t(2, 2, 3), t(3, 3, 4))


def test_cat_shape_mismatch():
    with pytest.raises(
        ValueError,
        match=m(
            "cat: along dim 0, tensor 1 has shape (2, 4); all shapes must agree except on that dim, got [(1, 3), (2, 4)]"
        ),
    ):
        F.cat([t(1, 3), t(2, 4)], dim=0)
    with pytest.raises(ValueError, match=m("cat: along dim 1, tensor 1 has shape (2, 3, 1)")):
        F.cat([t(2, 3), t(2, 3, 1)], dim=1)
    with pytest.raises(ValueError, match=m("cat: along dim 2, tensor 0 has shape (2, 3)")):
        F.cat([t(2, 3), t(2, 3)], dim=2)
    with pytest.raises(ValueError, match="cat: expected a non-empty sequence of tensors"):
        F.cat([])


def test_reshape_transpose_and_axes():
    with pytest.raises(
        ValueError, match=m("reshape: cannot reshape (2, 3) (6 elements) into (4,)")
    ):
        t(2, 3).reshape(4)
    with pytest.raises(
        ValueError, match=m("transpose: axes (0, 0, 1) are not a permutation of 3 axes")
    ):
        t(2, 3, 4).transpose(0, 0, 1)
    with pytest.raises(ValueError, match="sum: axis 2 is out of range for a 2-D input"):
        t(2, 3).sum(axis=2)
    with pytest.raises(ValueError, match="mean: axis -3 is out of range for a 2-D input"):
        t(2, 3).mean(axis=-3)
    with pytest.raises(ValueError, match=m("log_softmax: dim 2 is out of range for shape (2, 3)")):
        F.log_softmax(t(2, 3), 2)


# ---- losses -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("target", "error", "message"),
    [
        (
            np.array([0, 3, 1]),
            ValueError,
            "cross_entropy: target values must lie in [0, 2], got min 0, max 3",
        ),
        (
            np.array([0, -1, 1]),
            ValueError,
            "cross_entropy: target values must lie in [0, 2], got min -1, max 1",
        ),
        (
            np.array([0.0, 1.0, 1.0]),
            TypeError,
            "cross_entropy: target must hold integer class indices, got dtype float64",
        ),
        (
            np.array([[0], [1], [1]]),
            ValueError,
            "cross_entropy: expected target of shape (3,) for input (3, 3), got (3, 1)",
        ),
        (
            np.array([0, 1]),
            ValueError,
            "cross_entropy: expected target of shape (3,) for input (3, 3), got (2,)",
        ),
    ],
    ids=["too_large", "negative", "float", "2d", "short"],
)
def test_cross_entropy_bad_target(target, error, message):
    with pytest.raises(error, match=m(message)):
        F.cross_entropy(t(3, 3), mc.tensor(target))


def test_cross_entropy_bad_reduction():
    with pytest.raises(
        ValueError, match="cross_entropy: reduction must be 'mean', 'sum' or 'none', got 'avg'"
    ):
        F.cross_entropy(t(2, 3), np.array([0, 1]), reduction="avg")


# ---- batch norm -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: F.batch_norm(t(2, 3, 4, 4), None, None, t(4), t(4), True),
            "batch_norm: input has 3 channels (shape (2, 3, 4, 4)) but weight has shape (4,); expected (3,)",
        ),
        (
            lambda: F.batch_norm(t(2, 3), None, None, t(3), t(2), True),
            "batch_norm: input has 3 channels (shape (2, 3)) but bias has shape (2,); expected (3,)",
        ),
        (
            lambda: F.batch_norm(t(2, 3), np.zeros(2), np.ones(3)),
            "batch_norm: input has 3 channels (shape (2, 3)) but running_mean has shape (2,)",
        ),
        (
            lambda: F.batch_norm(t(2, 3), np.zeros(3), np.ones(4), training=True),
            "batch_norm: input has 3 channels (shape (2, 3)) but running_var has shape (4,)",
        ),
        (
            lambda: F.batch_norm(t(2, 3), None, None),
            "batch_norm: evaluation mode needs running_mean and running_var",
        ),
        (
            lambda: F.batch_norm(t(1, 3), None, None, training=True),
            "batch_norm: training needs more than 1 value per channel, got input shape (1, 3)",
        ),
        (
            lambda: F.batch_norm(t(2, 3), None, None, t(3), None, True),
            "batch_norm: give both weight and bias, or neither",
        ),
    ],
    ids=[
        "weight",
        "bias",
        "running_mean",
        "running_var",
        "eval_no_stats",
        "batch_1",
        "weight_only",
    ],
)
def test_batch_norm_bad_arguments(call, message):
    with pytest.raises(ValueError, match=m(message)):
        call()


# ---- other arguments --------------------------------------------------------------------------
def test_dropout_probability_out_of_range():
    with pytest.raises(ValueError, match="dropout: p must be between 0 and 1, got 1.5"):
        F.dropout(t(2, 2), 1.5)
    with pytest.raises(ValueError, match="dropout: p must be between 0 and 1, got -0.1"):
        F.dropout(t(2, 2), -0.1)


def test_pow_needs_a_number():
    with pytest.raises(TypeError, match="pow: exponent must be a number, got Tensor"):
        F.pow(t(2), t(2))


def test_chapter_loops_check_their_arguments():
    with pytest.raises(ValueError, match=m("corr2d: kernel (4, 2) is larger than X (3, 3)")):
        F.corr2d(t(3, 3), t(4, 2))
    with pytest.raises(
        ValueError,
        match=m("corr2d_multi_in: X has 2 channels but K has 3 (X (2, 3, 3), K (3, 2, 2))"),
    ):
        F.corr2d_multi_in(t(2, 3, 3), t(3, 2, 2))
    with pytest.raises(
        ValueError,
        match=m(
            "corr2d_multi_in_out_1x1: expected K of shape (OC, 2, 1, 1) for X (2, 3, 3), got (4, 3, 1, 1)"
        ),
    ):
        F.corr2d_multi_in_out_1x1(t(2, 3, 3), t(4, 3, 1, 1))
    with pytest.raises(ValueError, match="pool2d: mode must be 'max' or 'avg', got 'min'"):
        F.pool2d(t(3, 3), 2, "min")
    with pytest.raises(ValueError, match=m("pool2d: window (4, 1) is larger than X (3, 3)")):
        F.pool2d(t(3, 3), (4, 1))


def test_function_needs_a_tensor():
    with pytest.raises(TypeError, match="add: expected at least one Tensor or array argument"):
        F.add(1.0, 2.0)


# ---- backends ---------------------------------------------------------------------------------
def test_unknown_backend_lists_the_available_ones():
    message = f"unknown backend 'nope'; backends are {list(minicnn.backend._REGISTRY)}, available here: {mc.available_backends()}"
    with pytest.raises(ValueError, match=m(message)):
        mc.use_backend("nope")
    with pytest.raises(ValueError, match=m(message)):
        mc.get_backend("nope")
