"""Every numeric example the book prints in D2L 7.2-7.5, through the library,
and the section's example scripts run end to end."""

import importlib.util
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import minicnn as mc
from minicnn import nn
from minicnn.functional import (
    corr2d,
    corr2d_multi_in,
    corr2d_multi_in_out,
    corr2d_multi_in_out_1x1,
    pool2d,
)

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
X33 = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_corr2d():
    assert_array_equal(corr2d(X33, np.array([[0.0, 1.0], [2.0, 3.0]])).numpy(), [[19, 25], [37, 43]])


def test_edge_detection_and_its_transpose():
    X = load_example("conv_layer").edge_image()
    K = np.array([[1.0, -1.0]])
    Y = corr2d(X, K).numpy()
    assert Y.shape == (6, 7)
    for row in Y:
        assert_array_equal(row, [0, 1, 0, 0, 0, -1, 0])
    assert_array_equal(corr2d(X.T, K).numpy(), np.zeros((8, 5)))


def test_learning_the_kernel():
    example = load_example("conv_layer")
    X = example.edge_image()
    Y = corr2d(X, np.array([[1.0, -1.0]])).numpy()
    losses = []
    mc.manual_seed(0)
    weight = example.learn_kernel(X, Y, log=lambda line: losses.append(float(line.split()[-1])))
    assert len(losses) == 5
    assert losses[-1] < 0.3 and losses[-1] < losses[0]  # the book's band: ~0.02-0.3
    assert_allclose(weight, [[1.0, -1.0]], atol=0.1)


@pytest.mark.parametrize(
    "arguments, expected",
    [
        (dict(kernel_size=3, padding=1), (8, 8)),
        (dict(kernel_size=(5, 3), padding=(2, 1)), (8, 8)),
        (dict(kernel_size=3, padding=1, stride=2), (4, 4)),
        (dict(kernel_size=(3, 5), padding=(0, 1), stride=(3, 4)), (2, 2)),
    ],
)
def test_output_shapes(arguments, expected):
    X = np.zeros((1, 1, 8, 8), dtype=np.float32)
    assert nn.Conv2d(1, 1, **arguments)(X).shape[2:] == expected


def book_channels():
    X = np.stack((X33, X33 + 1))
    K = np.stack((np.array([[0.0, 1.0], [2.0, 3.0]]), np.array([[1.0, 2.0], [3.0, 4.0]])))
    return X, K


def test_multi_input_channels():
    X, K = book_channels()
    assert_array_equal(corr2d_multi_in(X, K).numpy(), [[56, 72], [104, 120]])


def test_multi_output_channels():
    X, K = book_channels()
    K3 = np.stack((K, K + 1, K + 2))
    assert K3.shape == (3, 2, 2, 2)
    expected = [[[56, 72], [104, 120]], [[76, 100], [148, 172]], [[96, 128], [192, 224]]]
    assert_array_equal(corr2d_multi_in_out(X, K3).numpy(), expected)
    assert_array_equal(mc.functional.conv2d(X[None], K3).numpy()[0], expected)


def test_1x1_convolution_is_a_matrix_product():
    rng = np.random.default_rng(0)
    X, K = rng.normal(0, 1, (3, 3, 3)), rng.normal(0, 1, (2, 3, 1, 1))
    Y1 = corr2d_multi_in_out_1x1(X, K).numpy()
    assert Y1.shape == (2, 3, 3)
    assert np.abs(Y1 - corr2d_multi_in_out(X, K).numpy()).sum() < 1e-6
    assert np.abs(Y1 - mc.functional.conv2d(X[None], K).numpy()[0]).sum() < 1e-6


def test_pool2d():
    assert_array_equal(pool2d(X33, (2, 2)).numpy(), [[4, 5], [7, 8]])
    assert_array_equal(pool2d(X33, (2, 2), "avg").numpy(), [[2, 3], [5, 6]])


def test_max_pool2d_padding_and_stride():
    X = np.arange(16, dtype=np.float32).reshape((1, 1, 4, 4))
    assert_array_equal(nn.MaxPool2d(3)(X).numpy(), [[[[10]]]])
    assert_array_equal(nn.MaxPool2d(3, padding=1, stride=2)(X).numpy(), [[[[5, 7], [13, 15]]]])
    pool = nn.MaxPool2d((2, 3), stride=(2, 3), padding=(0, 1))
    assert_array_equal(pool(X).numpy(), [[[[5, 7], [13, 15]]]])


def test_max_pool2d_multiple_channels():
    X = np.arange(16, dtype=np.float32).reshape((1, 1, 4, 4))
    X2 = mc.functional.cat((mc.tensor(X), mc.tensor(X + 1)), 1)
    Y = nn.MaxPool2d(3, padding=1, stride=2)(X2).numpy()
    assert_array_equal(Y, [[[[5, 7], [13, 15]], [[6, 8], [14, 16]]]])


@pytest.mark.parametrize("script", ["conv_layer", "padding_and_strides", "channels", "pooling"])
def test_example_script_runs(script):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{script}.py")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
