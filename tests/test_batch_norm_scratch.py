"""examples/batch_norm.py: the book's from-scratch batch norm (D2L 8.5) equals the fused
``mc.functional.batch_norm`` in training, forward and backward, and keeps its moving
statistics the book's way, which is not the framework layer's way."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose
from pages import run_page

import minicnn as mc
from minicnn.functional import batch_norm as fused_batch_norm

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "batch_norm.py"
EPS = 1e-5


scratch = run_page("batch_norm")  # the page's batch_norm, BatchNorm and lenet_scratch_bn

# input shape, axes of the statistics, broadcast shape of per-channel values
LAYOUTS = {
    "dense": ((6, 3), (0,), (1, 3)),
    "conv": ((4, 3, 3, 2), (0, 2, 3), (1, 3, 1, 1)),
}


def make_inputs(shape, param_shape, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 2 + 1
    gamma = rng.standard_normal(param_shape)
    beta = rng.standard_normal(param_shape)
    moving_mean = rng.standard_normal(param_shape)
    moving_var = rng.uniform(0.5, 2, param_shape)
    upstream = rng.standard_normal(shape)
    return x, gamma, beta, moving_mean, moving_var, upstream


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_scratch_equals_fused_forward_and_backward(layout):
    shape, _, param_shape = LAYOUTS[layout]
    x, gamma, beta, moving_mean, moving_var, upstream = make_inputs(shape, param_shape)
    channels = param_shape[1]

    X = mc.tensor(x, requires_grad=True)
    G = mc.tensor(gamma, requires_grad=True)
    B = mc.tensor(beta, requires_grad=True)
    Y, _, _ = scratch.batch_norm(X, G, B, mc.tensor(moving_mean), mc.tensor(moving_var), EPS, 0.9)
    (Y * upstream).sum().backward()

    Xf = mc.tensor(x, requires_grad=True)
    W = mc.tensor(gamma.reshape(channels), requires_grad=True)
    Bf = mc.tensor(beta.reshape(channels), requires_grad=True)
    running_mean, running_var = moving_mean.reshape(-1).copy(), moving_var.reshape(-1).copy()
    Yf = fused_batch_norm(
        Xf, running_mean, running_var, W, Bf, training=True, momentum=0.1, eps=EPS
    )
    (Yf * upstream).sum().backward()

    assert Y.dtype == np.float64 and Y.shape == shape
    assert_allclose(Y.numpy(), Yf.numpy(), rtol=1e-12, atol=1e-12)
    assert_allclose(X.grad.numpy(), Xf.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert_allclose(G.grad.numpy().reshape(-1), W.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert_allclose(B.grad.numpy().reshape(-1), Bf.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_moving_statistics_follow_the_books_convention(layout):
    shape, axes, param_shape = LAYOUTS[layout]
    x, gamma, beta, moving_mean, moving_var, _ = make_inputs(shape, param_shape, seed=1)
    _, new_mean, new_var = scratch.batch_norm(
        mc.tensor(x, requires_grad=True),
        mc.tensor(gamma, requires_grad=True),
        mc.tensor(beta, requires_grad=True),
        mc.tensor(moving_mean),
        mc.tensor(moving_var),
        EPS,
        0.9,
    )
    batch_mean = x.mean(axis=axes).reshape(param_shape)
    batch_var = x.var(axis=axes).reshape(param_shape)  # biased: divides by m
    assert new_mean.shape == new_var.shape == param_shape
    assert new_mean.creator is None and not new_mean.requires_grad  # not part of the graph
    assert_allclose(new_mean.numpy(), 0.9 * moving_mean + 0.1 * batch_mean, rtol=1e-13)
    assert_allclose(new_var.numpy(), 0.9 * moving_var + 0.1 * batch_var, rtol=1e-13)

    # the framework's layer: momentum 0.1 weighs the new batch, the variance is unbiased
    running_mean, running_var = moving_mean.reshape(-1).copy(), moving_var.reshape(-1).copy()
    fused_batch_norm(mc.tensor(x), running_mean, running_var, training=True, momentum=0.1, eps=EPS)
    m = x.size // param_shape[1]
    unbiased = batch_var * m / (m - 1)
    assert_allclose(
        running_mean, new_mean.numpy().reshape(-1), rtol=1e-13
    )  # 0.9 old + 0.1 new alike
    assert_allclose(running_var, (0.9 * moving_var + 0.1 * unbiased).reshape(-1), rtol=1e-13)
    difference = running_var - new_var.numpy().reshape(-1)
    assert_allclose(difference, 0.1 * (unbiased - batch_var).reshape(-1), rtol=1e-10)
    assert np.all(difference > 0)  # the two conventions really differ


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_prediction_mode_uses_the_moving_statistics(layout):
    shape, _, param_shape = LAYOUTS[layout]
    x, gamma, beta, moving_mean, moving_var, _ = make_inputs(shape, param_shape, seed=2)
    mm, mv = mc.tensor(moving_mean), mc.tensor(moving_var)
    with mc.no_grad():
        Y, new_mean, new_var = scratch.batch_norm(
            mc.tensor(x), mc.tensor(gamma), mc.tensor(beta), mm, mv, EPS, 0.9
        )
    expected = gamma * (x - moving_mean) / np.sqrt(moving_var + EPS) + beta
    assert_allclose(Y.numpy(), expected, rtol=1e-12)
    assert new_mean is mm and new_var is mv  # nothing to update


def test_scratch_rejects_other_ranks():
    X = mc.tensor(np.zeros((2, 3, 4)), requires_grad=True)
    one = mc.tensor(np.ones((1, 3, 1)))
    with pytest.raises(
        ValueError, match=r"expected a 2-D \(N, C\) or 4-D .* got shape \(2, 3, 4\)"
    ):
        scratch.batch_norm(X, one, one, one, one, EPS, 0.9)


def test_batch_norm_layer_as_the_book():
    conv_bn, dense_bn = scratch.BatchNorm(6, num_dims=4), scratch.BatchNorm(5, num_dims=2)
    assert conv_bn.gamma.shape == (1, 6, 1, 1) and dense_bn.beta.shape == (1, 5)
    assert [n for n, _ in conv_bn.named_parameters()] == ["gamma", "beta"]
    assert list(conv_bn.state_dict()) == ["gamma", "beta", "moving_mean", "moving_var"]
    conv_bn.double()
    x = np.random.default_rng(3).standard_normal((2, 6, 3, 3))
    y = conv_bn(x)
    assert_allclose(y.numpy().mean(axis=(0, 2, 3)), 0, atol=1e-12)  # normalised per channel
    assert conv_bn.moving_mean.dtype == np.float64
    # the new moving statistics stay buffers (saved, moved, converted with the layer)
    assert_allclose(
        conv_bn.state_dict()["moving_mean"], 0.1 * x.mean(axis=(0, 2, 3)).reshape(1, 6, 1, 1)
    )


def test_lenet_with_scratch_batch_norm():
    net = scratch.lenet_scratch_bn()
    assert len(net) == 16
    y = net(np.random.default_rng(4).random((2, 1, 28, 28), dtype=np.float32))
    assert y.shape == (2, 10)
    # gamma and beta replace the framework layer's weight and bias one for one
    assert sum(p.size for p in net.parameters()) == sum(
        p.size for p in mc.models.lenet_bn().parameters()
    )


def test_script_runs():
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "gamma" in done.stdout and "beta" in done.stdout
    assert "Linear output shape: (16, 10)" in done.stdout
