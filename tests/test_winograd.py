"""Winograd's F(2x2, 3x3) convolution: the algebra, the kernels, and the layer.

The numba backend computes 3x3 stride-1 layers this way (``conv_winograd``); these tests
force it on every backend and every small shape, whatever the size thresholds say.
"""

import numpy as np
import pytest

import minicnn as mc
from minicnn.backend import Window2d, get_backend, unavailable_reason, winograd
from minicnn.functional import conv
from minicnn.gradcheck import gradcheck

NUMPY = get_backend("numpy")

# (x shape (N, C, H, W), out channels, padding): odd and even sides, every padding a 3x3
# kernel takes, outputs smaller than one 2x2 block and not a whole number of blocks.
CASES = {
    "pad1-odd-width": ((2, 3, 5, 7), 4, 1),
    "pad0-even": ((1, 2, 6, 6), 3, 0),
    "pad2-tall": ((3, 4, 9, 4), 2, 2),
    "pad1-3x3-input": ((2, 3, 3, 3), 5, 1),
    "pad0-1x1-output": ((2, 2, 3, 3), 3, 0),
    "pad1-1-column": ((1, 2, 4, 1), 2, 1),
}


def random(shape, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.fixture
def always_winograd(monkeypatch):
    """Every 3x3 stride-1 conv2d by Winograd, on every backend."""
    monkeypatch.setattr(conv, "WINOGRAD_MIN_CHANNELS", 1)
    monkeypatch.setattr(conv, "WINOGRAD_MIN_SIDE", 1)
    for name in ("numpy", "numba", "cupy"):
        if not unavailable_reason(name):
            monkeypatch.setattr(get_backend(name), "conv_winograd", True)


def test_one_tile_is_a_2x2_correlation():
    """AT [(G g GT) * (BT d B)] A is the 2x2 output of sliding g over a 4x4 tile d."""
    d, g = random((4, 4), seed=1), random((3, 3), seed=2)
    direct = np.array([[np.sum(d[i : i + 3, j : j + 3] * g) for j in range(2)] for i in range(2)])
    m = (winograd.G @ g @ winograd.G.T) * (winograd.BT @ d @ winograd.BT.T)
    np.testing.assert_allclose(winograd.AT @ m @ winograd.AT.T, direct, rtol=1e-13)


def test_sandwich_is_left_t_right_transposed():
    t = random((4, 4), seed=3)
    s = winograd.sandwich(winograd.BT, [[t[i, j : j + 1] for j in range(4)] for i in range(4)],
                          winograd.AT)  # fmt: skip
    np.testing.assert_allclose(np.array(s)[..., 0], winograd.BT @ t @ winograd.AT.T, rtol=1e-14)


def test_weight_transform_and_its_adjoint():
    w = random((3, 2, 3, 3))
    u = winograd.transform_weight(np, w)
    expected = np.einsum("ai,ocij,bj->aboc", winograd.G, w, winograd.G).reshape(16, 3, 2)
    np.testing.assert_allclose(u, expected, rtol=1e-13)
    grad_u = random(u.shape, seed=1)
    assert np.vdot(u, grad_u) == pytest.approx(
        np.vdot(w, winograd.transform_weight_grad(np, grad_u)), rel=1e-12
    )


@pytest.mark.parametrize("x_shape, out_channels, padding", CASES.values(), ids=CASES.keys())
def test_reference_kernels_are_adjoint_pairs(x_shape, out_channels, padding):
    """<output(m), g> = <m, output_grad(g)> and <input(x), v> = <x, input_grad(v)>."""
    win = Window2d.of("test", x_shape, 3, 1, padding)
    x = random(x_shape)
    v = NUMPY.winograd_input(x, win)
    th, tw = winograd.tiles(win)
    assert v.shape == (16, win.c, win.n * th * tw)
    m = random((16, out_channels, v.shape[2]), seed=1)
    y = NUMPY.winograd_output(m, win)
    assert y.shape == (win.n, out_channels, win.oh, win.ow)
    gy = random(y.shape, seed=2)
    assert np.vdot(y, gy) == pytest.approx(np.vdot(m, NUMPY.winograd_output_grad(gy, win)))
    dv = random(v.shape, seed=3)
    assert np.vdot(v, dv) == pytest.approx(np.vdot(x, NUMPY.winograd_input_grad(dv, win)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, out_channels, padding", CASES.values(), ids=CASES.keys())
def test_numba_kernels_equal_numpy_bit_for_bit(x_shape, out_channels, padding, dtype):
    pytest.importorskip("numba", reason="needs Numba (pip install -e '.[numba]')")
    numba_backend = get_backend("numba")
    win = Window2d.of("test", x_shape, 3, 1, padding)
    x = random(x_shape, dtype)
    v = NUMPY.winograd_input(x, win)
    m = random((16, out_channels, v.shape[2]), dtype, seed=1)
    gy = random((win.n, out_channels, win.oh, win.ow), dtype, seed=2)
    pairs = {
        "input": (numba_backend.winograd_input(x, win), v),
        "output": (numba_backend.winograd_output(m, win), NUMPY.winograd_output(m, win)),
        "output_grad": (
            numba_backend.winograd_output_grad(gy, win),
            NUMPY.winograd_output_grad(gy, win),
        ),
        "input_grad": (numba_backend.winograd_input_grad(v, win), NUMPY.winograd_input_grad(v, win)),
    }
    for name, (mine, reference) in pairs.items():
        assert mine.dtype == reference.dtype == dtype, name
        np.testing.assert_array_equal(mine, reference, err_msg=name)


@pytest.mark.parametrize("x_shape, out_channels, padding", CASES.values(), ids=CASES.keys())
def test_conv2d_by_winograd_equals_torch(backend, torch, always_winograd, x_shape,
                                         out_channels, padding):  # fmt: skip
    x, w = random(x_shape), random((out_channels, x_shape[1], 3, 3), seed=1)
    b = random(out_channels, seed=2)
    X, W, B = (mc.tensor(a, requires_grad=True) for a in (x, w, b))
    y = mc.functional.conv2d(X, W, B, padding=padding)
    assert y.creator.winograd
    gy = random(y.shape, seed=3)
    y.backward(mc.tensor(gy))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, padding=padding)
    ty.backward(torch.from_numpy(gy))
    for mine, theirs in [(y, ty), (X.grad, tx.grad), (W.grad, tw.grad), (B.grad, tb.grad)]:
        np.testing.assert_allclose(mine.numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_conv2d_by_winograd_passes_gradcheck(backend, always_winograd):
    x = mc.tensor(random((2, 3, 5, 4)), requires_grad=True)
    w = mc.tensor(random((2, 3, 3, 3), seed=1), requires_grad=True)
    assert gradcheck(lambda x, w: mc.functional.conv2d(x, w, padding=1), [x, w])


def test_float32_stays_float32_and_close_to_im2col(always_winograd):
    pytest.importorskip("numba", reason="needs Numba (pip install -e '.[numba]')")
    x, w = random((4, 8, 10, 10), np.float32), random((6, 8, 3, 3), np.float32, seed=1)
    with mc.use_backend("numba"):
        y = mc.functional.conv2d(mc.tensor(x), mc.tensor(w), padding=1)
    reference = conv.corr2d_multi_in_out  # the chapter's loops, one image at a time
    expected = np.stack([reference(np.pad(image, ((0, 0), (1, 1), (1, 1))), w).numpy() for image in x])
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_which_layers_numba_computes_by_winograd():
    """3x3 stride-1 layers with enough channels and output; never on the NumPy reference."""
    pytest.importorskip("numba", reason="needs Numba (pip install -e '.[numba]')")

    def uses_winograd(backend, x_shape, out_channels, kernel=3, stride=1, padding=1):
        win = Window2d.of("test", x_shape, kernel, stride, padding)
        return conv._use_winograd(get_backend(backend), win, np.empty((out_channels,)))

    assert uses_winograd("numba", (2, 64, 8, 8), 64)
    assert uses_winograd("numba", (2, 256, 12, 12), 384)
    assert not uses_winograd("numpy", (2, 64, 8, 8), 64)
    assert not uses_winograd("numba", (2, 64, 8, 8), 64, stride=2)
    assert not uses_winograd("numba", (2, 64, 8, 8), 64, kernel=5, padding=2)
    assert not uses_winograd("numba", (2, 1, 28, 28), 64)  # a first layer
    assert not uses_winograd("numba", (2, 128, 24, 24), 32)  # DenseNet's growth layers
    assert not uses_winograd("numba", (2, 512, 3, 3), 512)  # a 3x3 output
