"""Every numeric example the book prints in D2L 7.2-7.5, through the library,
and the section's example scripts run end to end."""

import pathlib
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from pages import run_page

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


def edge_image():
    """The book's 6x8 image: white (1) with a black (0) band in columns 2..5."""
    X = np.ones((6, 8))
    X[:, 2:6] = 0
    return X


def test_corr2d():
    assert_array_equal(corr2d(X33, np.array([[0.0, 1.0], [2.0, 3.0]])).numpy(), [[19, 25], [37, 43]])


def test_edge_detection_and_its_transpose():
    X = edge_image()
    K = np.array([[1.0, -1.0]])
    Y = corr2d(X, K).numpy()
    assert Y.shape == (6, 7)
    for row in Y:
        assert_array_equal(row, [0, 1, 0, 0, 0, -1, 0])
    assert_array_equal(corr2d(X.T, K).numpy(), np.zeros((8, 5)))


def test_learning_the_kernel():
    page = run_page("conv_layer")
    X = edge_image()
    Y = corr2d(X, np.array([[1.0, -1.0]])).numpy()
    losses = []
    mc.manual_seed(0)
    conv2d = nn.Conv2d(1, 1, kernel_size=(1, 2), bias=False).double()
    log = lambda line: losses.append(float(line.split()[-1]))  # noqa: E731
    page.learn_kernel(conv2d, X.reshape(1, 1, 6, 8), Y.reshape(1, 1, 6, 7), log=log)
    assert len(losses) == 5
    assert losses[-1] < 0.3 and losses[-1] < losses[0]  # the book's band: ~0.02-0.3
    assert_allclose(conv2d.weight.numpy().reshape(1, 2), [[1.0, -1.0]], atol=0.1)


def test_the_books_conv2d_over_corr2d_learns_the_kernel():
    """The page's Conv2D (D2L 7.2.2), whose forward is the corr2d loop: autograd's
    gradient through every slice, product and sum moves it to the edge kernel."""
    page = run_page("conv_layer")
    X = edge_image()
    Y = corr2d(X, np.array([[1.0, -1.0]])).numpy()
    conv2d = page.Conv2D(kernel_size=(1, 2))
    assert conv2d.weight.grad is None
    losses = []
    log = lambda line: losses.append(float(line.split()[-1]))  # noqa: E731
    page.learn_kernel(conv2d, X, Y, steps=20, lr=1e-2, log=log)
    assert losses[-1] < 0.1 * losses[0]
    assert_allclose(conv2d.weight.numpy(), [[1.0, -1.0]], atol=0.1)
    assert abs(conv2d.bias.numpy()[0]) < 0.05


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
