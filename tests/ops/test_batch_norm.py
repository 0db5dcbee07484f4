"""Batch normalization (D2L 8.5). In this order:

1. the book's from-scratch batch norm (examples/batch_norm.py) equals the fused
   ``mc.functional.batch_norm`` in training, forward and backward, and keeps its moving
   statistics the book's way, which is not the framework layer's way; the page's layer,
   LeNet with it, and the page run as a script;
2. the gradients: equal to central differences (float64, minicnn.gradcheck), in
   training and in evaluation, with and without the affine parameters;
3. PyTorch: forward and gradients equal torch.nn.functional.batch_norm's; so do the
   running statistics, and evaluation leaves them as they are;
4. the fast paths: the numba backend's compiled statistics (two-pass variance),
   normalisation, sums and gradient equal the numpy backend's kernels.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from kernel_checks import NUMBA, NUMPY, assert_close_to_scale, dtypes, numba_threads, random
from numpy.testing import assert_allclose, assert_array_equal
from op_checks import ATOL, RTOL, TorchF, check_against_torch, check_gradients, normal, run_both
from pages import EXAMPLES, run_page

import minicnn as mc
from minicnn import functional as F
from minicnn import functional as MF  # the name the PyTorch checks use
from minicnn.engine_room import tuning
from minicnn.functional import batch_norm as fused_batch_norm

# ==== 1. the book's batch norm from scratch ===============================================
EXAMPLE = EXAMPLES / "batch_norm.py"
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


# ==== 2. the gradients ====================================================================
GRADCHECK_CASES = {
    # normalisation
    "batch_norm_train_2d": (
        lambda x, w, b: F.batch_norm(x, None, None, w, b, True),
        [normal(5, 3), normal(3), normal(3)],
    ),
    "batch_norm_train_4d": (
        lambda x, w, b: F.batch_norm(x, None, None, w, b, True),
        [normal(2, 2, 3, 3), normal(2), normal(2)],
    ),
    "batch_norm_train_2d_no_affine": (
        lambda x: F.batch_norm(x, None, None, training=True),
        [normal(4, 3)],
    ),
    "batch_norm_train_4d_no_affine": (
        lambda x: F.batch_norm(x, None, None, training=True),
        [normal(3, 2, 2, 2)],
    ),
    "batch_norm_eval_4d": (
        lambda x, w, b: F.batch_norm(
            x, mc.tensor(np.array([0.5, -1.0])), mc.tensor(np.array([2.0, 0.3])), w, b
        ),
        [normal(2, 2, 2, 3), normal(2), normal(2)],
    ),
    "batch_norm_eval_2d_no_affine": (
        lambda x: F.batch_norm(
            x, mc.tensor(np.array([0.5, -1.0, 0.0])), mc.tensor(np.array([2.0, 0.3, 1.0]))
        ),
        [normal(4, 3)],
    ),
}


@pytest.mark.parametrize("case", list(GRADCHECK_CASES))
def test_gradcheck(backend, rng, case):
    check_gradients(GRADCHECK_CASES[case], rng)


# ==== 3. PyTorch ==========================================================================
TORCH_CASES = {
    # normalisation
    "batch_norm_train_2d": (
        lambda F, x, w, b: F.batch_norm(x, None, None, w, b, True),
        [normal(6, 3), normal(3), normal(3)],
    ),
    "batch_norm_train_4d": (
        lambda F, x, w, b: F.batch_norm(x, None, None, w, b, True, 0.1, 1e-3),
        [normal(3, 2, 3, 3), normal(2), normal(2)],
    ),
    "batch_norm_train_no_affine": (
        lambda F, x: F.batch_norm(x, None, None, training=True),
        [normal(4, 3, 2, 2)],
    ),
}


@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_matches_torch(backend, threads, torch, rng, case):
    check_against_torch(torch, TORCH_CASES[case], rng)


# ---- batch norm: evaluation mode and the running statistics --------------------------------
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 2, 2)], ids=["2d", "4d"])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "no_affine"])
def test_batch_norm_running_statistics_match_torch(backend, torch, rng, shape, affine):
    """Two training steps update running_mean/var (unbiased) like torch; then eval."""
    x = rng.standard_normal(shape) * 2 + 1
    mean0, var0 = rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)
    weight, bias = rng.standard_normal(3), rng.standard_normal(3)
    mine = [mc.tensor(mean0), mc.tensor(var0)]
    theirs = [torch.tensor(mean0), torch.tensor(var0)]
    params = (weight, bias) if affine else ()
    for momentum in (0.1, 0.3):
        MF.batch_norm(
            mc.tensor(x), *mine, *map(mc.tensor, params), training=True, momentum=momentum
        )
        TorchF(torch).batch_norm(
            torch.tensor(x), *theirs, *map(torch.tensor, params), training=True, momentum=momentum
        )
        assert_allclose(mine[0].numpy(), theirs[0].numpy(), rtol=RTOL, atol=ATOL)
        assert_allclose(mine[1].numpy(), theirs[1].numpy(), rtol=RTOL, atol=ATOL)
        x = x[::-1] * 0.5

    def evaluate(F, x, *p):
        stats = mine if F is MF else theirs
        return F.batch_norm(x, *stats, *p, training=False, eps=1e-4)

    run_both(torch, evaluate, [x, *params], rng)


def test_batch_norm_does_not_move_the_statistics_in_eval(backend, rng):
    mean, var = mc.tensor(np.zeros(3)), mc.tensor(np.ones(3))
    MF.batch_norm(mc.tensor(rng.standard_normal((4, 3))), mean, var, training=False)
    assert_array_equal(mean.numpy(), np.zeros(3))
    assert_array_equal(var.numpy(), np.ones(3))


# ==== 4. the fast paths ===================================================================
# the numba backend's kernels against the numpy backend's
# Batch norm: (N, C) after a Linear layer, (N, C, H, W) after a convolution.
BN_SHAPES = {"2d": (6, 5), "4d": (3, 4, 5, 6), "4d-one-pixel": (7, 3, 1, 1)}
bn_shapes = pytest.mark.parametrize("shape", BN_SHAPES.values(), ids=BN_SHAPES)


@pytest.fixture
def compiled_batch_norm(monkeypatch):
    """Batch norm through the compiled kernels even on inputs this small."""
    monkeypatch.setattr(tuning, "BATCH_NORM_MIN_COUNT", 0)


@numba_threads
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


@numba_threads
def test_batch_norm_variance_is_two_pass_in_float32(compiled_batch_norm):
    # E[x^2] - E[x]^2 would cancel to nothing here; mean((x - mean)^2) keeps the variance.
    x = (1000 + random((64, 2, 4, 4), np.float32) * 1e-2).astype(np.float32)
    _, var = NUMBA.batch_norm_stats(x)
    np.testing.assert_allclose(var, x.var(axis=(0, 2, 3), dtype=np.float64), rtol=1e-3)


@numba_threads
def test_batch_norm_of_few_values_per_channel_runs_numpys_kernels():
    x = random((4, 3), np.float32)  # a Linear layer's batch: 4 values per channel
    for got, want in zip(NUMBA.batch_norm_stats(x), NUMPY.batch_norm_stats(x), strict=True):
        np.testing.assert_array_equal(got, want)
