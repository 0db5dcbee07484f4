"""Winograd's F(m x m, r x r) convolutions: the algebra, the kernels, and the layer.

The numba backend computes wide 3x3 and 5x5 stride-1 layers this way (``conv_winograd``,
engine_room/conv.py); these tests force it on every small shape, whatever the thresholds
(engine_room/tuning.py) say.
"""

import numpy as np
import pytest

import minicnn as mc
from minicnn.backend import Window2d
from minicnn.engine_room import tuning, winograd
from minicnn.functional import conv
from minicnn.gradcheck import gradcheck

GENERATED = {str(a): a for a in (winograd.F2x2_3x3, winograd.F2x2_5x5)}  # compiled kernels

ALGORITHMS = {str(a): a for a in (winograd.F2x2_3x3, winograd.F4x4_3x3, winograd.F2x2_5x5)}
# (x shape (N, C, H, W), out channels, padding): odd and even sides, paddings from none to
# more than the kernel's half, outputs smaller than one block and not a whole number of
# blocks. Kernel sides 3 and 5 both fit every case.
CASES = {
    "pad1-odd-width": ((2, 3, 5, 7), 4, 1),
    "pad0-even": ((1, 2, 6, 6), 3, 0),
    "pad2-tall": ((3, 4, 9, 5), 2, 2),
    "pad2-5x5-input": ((2, 3, 5, 5), 5, 2),
    "pad0-1x1-output": ((2, 2, 5, 5), 3, 0),
    "pad2-1-column": ((1, 2, 4, 1), 2, 2),
}


def random(shape, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.fixture(params=[1, 3], ids=["1-thread", "3-threads"])
def numba_backend(request, monkeypatch):
    """The numba backend, on one thread and with its work cut into parts for a team of 3
    even at these tiny sizes (uneven parts of the batch)."""
    pytest.importorskip("numba", reason="needs Numba (pip install -e '.[numba]')")
    for name in ("PARALLEL_MIN_ELEMENTS", "PARALLEL_MIN_MULTIPLY_ADDS"):
        monkeypatch.setattr(tuning, name, 0)
    with mc.use_backend("numba") as backend:
        size = backend.team.size
        backend.team.resize(request.param)
        yield backend
        backend.team.resize(size)


@pytest.fixture(params=["backward-too", "forward-only"])
def always_winograd(request, monkeypatch):
    """Every 3x3 and 5x5 stride-1 conv2d by Winograd on the numba backend, forward, and
    backward too or (3x3) by im2col, and its transformed tiles a few images at a time
    (dU summed over several chunks)."""
    monkeypatch.setattr(tuning, "WINOGRAD_MIN_CHANNELS", 1)
    monkeypatch.setattr(tuning, "WINOGRAD_MIN_SIDE", 1)
    backward_too = request.param == "backward-too"
    monkeypatch.setattr(tuning, "WINOGRAD_NARROW_MIN_SIDE", 1 if backward_too else 2**30)
    monkeypatch.setattr(tuning, "WINOGRAD_WIDE_CHANNELS", 1 if backward_too else 2**30)
    monkeypatch.setattr(tuning, "WINOGRAD_CHUNK_BYTES", 1)  # one image per chunk


@pytest.mark.parametrize("alg", ALGORITHMS.values(), ids=ALGORITHMS.keys())
def test_one_tile_is_an_m_by_m_correlation(alg):
    """AT [(G g GT) * (BT d B)] A is the m x m output of sliding g over an n x n tile d."""
    d, g = random((alg.n, alg.n), seed=1), random((alg.r, alg.r), seed=2)
    direct = np.array([[np.sum(d[i : i + alg.r, j : j + alg.r] * g) for j in range(alg.m)]
                       for i in range(alg.m)])  # fmt: skip
    transformed = (alg.G @ g @ alg.G.T) * (alg.BT @ d @ alg.BT.T)
    np.testing.assert_allclose(alg.AT @ transformed @ alg.AT.T, direct, rtol=1e-12)


def test_toom_cook_gives_lavins_f2x2_3x3():
    """The published matrices (Lavin and Gray, 2016), up to the sign of one point's terms."""
    alg = winograd.F2x2_3x3
    np.testing.assert_array_equal(alg.BT, [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, -1, 0, 1]])
    np.testing.assert_array_equal(alg.G, [[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]])
    np.testing.assert_array_equal(alg.AT, [[1, 1, 1, 0], [0, 1, -1, 1]])


def test_toom_cook_needs_one_point_fewer_than_the_tile():
    with pytest.raises(ValueError, match=r"F\(2, 3\) needs 3 finite points, got 2"):
        winograd.toom_cook(2, 3, (0, 1))


def test_sandwich_is_left_t_right_transposed():
    t = random((4, 4), seed=3)
    alg = winograd.F2x2_3x3
    s = winograd.sandwich(alg.BT, [[t[i, j : j + 1] for j in range(4)] for i in range(4)], alg.AT)
    np.testing.assert_allclose(np.array(s)[..., 0], alg.BT @ t @ alg.AT.T, rtol=1e-14)


@pytest.mark.parametrize("alg", ALGORITHMS.values(), ids=ALGORITHMS.keys())
def test_weight_transform_and_its_adjoint(alg):
    w = random((3, 2, alg.r, alg.r))
    u = winograd.transform_weight(np, w, alg)
    expected = np.einsum("ai,ocij,bj->aboc", alg.G, w, alg.G).reshape(alg.n**2, 3, 2)
    np.testing.assert_allclose(u, expected, rtol=1e-13)
    grad_u = random(u.shape, seed=1)
    assert np.vdot(u, grad_u) == pytest.approx(
        np.vdot(w, winograd.transform_weight_grad(np, grad_u, alg)), rel=1e-12
    )


@pytest.mark.parametrize("alg", ALGORITHMS.values(), ids=ALGORITHMS.keys())
@pytest.mark.parametrize("x_shape, out_channels, padding", CASES.values(), ids=CASES.keys())
def test_reference_kernels_are_adjoint_pairs(alg, x_shape, out_channels, padding):
    """<output(m), g> = <m, output_grad(g)> and <input(x), v> = <x, input_grad(v)>."""
    win = Window2d.of("test", x_shape, alg.r, 1, padding)
    x = random(x_shape)
    v = winograd.transform_input(np, x, win, alg)
    th, tw = alg.tiles(win)
    assert v.shape == (alg.n**2, win.c, win.n * th * tw)
    m = random((alg.n**2, out_channels, v.shape[2]), seed=1)
    y = winograd.transform_output(np, m, win, alg)
    assert y.shape == (win.n, out_channels, win.oh, win.ow)
    gy = random(y.shape, seed=2)
    grad_m = winograd.transform_output_grad(np, gy, win, alg)
    assert np.vdot(y, gy) == pytest.approx(np.vdot(m, grad_m))
    dv = random(v.shape, seed=3)
    assert np.vdot(v, dv) == pytest.approx(np.vdot(x, winograd.transform_input_grad(np, dv, win, alg)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("alg", GENERATED.values(), ids=GENERATED.keys())
@pytest.mark.parametrize("x_shape, out_channels, padding", CASES.values(), ids=CASES.keys())
def test_numba_kernels_equal_numpy_bit_for_bit(numba_backend, alg, x_shape, out_channels,
                                               padding, dtype):  # fmt: skip
    fast = numba_backend
    win = Window2d.of("test", x_shape, alg.r, 1, padding)
    x = random(x_shape, dtype)
    v = winograd.transform_input(np, x, win, alg)
    m = random((alg.n**2, out_channels, v.shape[2]), dtype, seed=1)
    gy = random((win.n, out_channels, win.oh, win.ow), dtype, seed=2)
    pairs = {
        "input": (fast.winograd_input(x, win, alg), v),
        "output": (fast.winograd_output(m, win, alg), winograd.transform_output(np, m, win, alg)),
        "output_grad": (
            fast.winograd_output_grad(gy, win, alg),
            winograd.transform_output_grad(np, gy, win, alg),
        ),
        "input_grad": (
            fast.winograd_input_grad(v, win, alg),
            winograd.transform_input_grad(np, v, win, alg),
        ),
    }
    for name, (mine, reference) in pairs.items():
        assert mine.dtype == reference.dtype == dtype, name
        np.testing.assert_array_equal(mine, reference, err_msg=name)


@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("x_shape, out_channels, padding", CASES.values(), ids=CASES.keys())
def test_conv2d_by_winograd_equals_torch(numba_backend, torch, always_winograd, x_shape,
                                         out_channels, padding, kernel):  # fmt: skip
    x, w = random(x_shape), random((out_channels, x_shape[1], kernel, kernel), seed=1)
    b = random(out_channels, seed=2)
    X, W, B = (mc.tensor(a, requires_grad=True) for a in (x, w, b))
    y = mc.functional.conv2d(X, W, B, padding=padding)
    assert y.creator.plan.forward_algorithm.alg is winograd.choose(y.creator.win)
    assert y.creator.algorithm == f"Winograd {winograd.choose(y.creator.win)}"
    gy = random(y.shape, seed=3)
    y.backward(mc.tensor(gy))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, padding=padding)
    ty.backward(torch.from_numpy(gy))
    for mine, theirs in [(y, ty), (X.grad, tx.grad), (W.grad, tw.grad), (B.grad, tb.grad)]:
        np.testing.assert_allclose(mine.numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kernel", [3, 5])
def test_conv2d_by_winograd_passes_gradcheck(numba_backend, always_winograd, kernel):
    x = mc.tensor(random((2, 3, 5, 4)), requires_grad=True)
    w = mc.tensor(random((2, 3, kernel, kernel), seed=1), requires_grad=True)
    assert gradcheck(lambda x, w: mc.functional.conv2d(x, w, padding=kernel // 2), [x, w])


@pytest.mark.parametrize("kernel", [3, 5])
def test_float32_stays_float32_and_close_to_the_loops(numba_backend, always_winograd, kernel):
    x, w = random((4, 8, 10, 10), np.float32), random((6, 8, kernel, kernel), np.float32, seed=1)
    p = kernel // 2
    y = mc.functional.conv2d(mc.tensor(x), mc.tensor(w), padding=p)
    reference = conv.corr2d_multi_in_out  # the chapter's loops, one image at a time
    expected = np.stack([reference(np.pad(image, ((0, 0), (p, p), (p, p))), w).numpy()
                         for image in x])  # fmt: skip
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_generated_kernels_are_up_to_date():
    """_winograd_kernels.py is what winograd_codegen writes from today's matrices."""
    from minicnn.engine_room import winograd_codegen

    assert winograd_codegen.TARGET.read_text() == winograd_codegen.source(), (
        "regenerate: python -m minicnn.engine_room.winograd_codegen"
    )


@pytest.mark.parametrize("kernel", sorted(winograd.ALGORITHMS))
def test_chosen_algorithms_keep_float32_within_1e5_of_scale(torch, kernel):
    """The promise the fast backends make in float32, on a wide layer (many terms)."""
    alg = winograd.ALGORITHMS[kernel]
    x = random((2, 128, 12, 12), np.float32)
    w = random((64, 128, kernel, kernel), np.float32, seed=1) / np.float32(np.sqrt(128 * kernel**2))
    win = Window2d.of("test", x.shape, kernel, 1, kernel // 2)
    v = winograd.transform_input(np, x, win, alg)
    y = winograd.transform_output(np, winograd.transform_weight(np, w, alg) @ v, win, alg)
    exact = torch.nn.functional.conv2d(torch.from_numpy(x).double(), torch.from_numpy(w).double(),
                                       padding=kernel // 2).numpy()  # fmt: skip
    assert np.abs(y - exact).max() <= 1e-5 * np.abs(exact).max()


def test_f4x4_3x3_runs_without_compiled_kernels(numba_backend, torch, always_winograd, monkeypatch):
    """ALGORITHMS[3] = F4x4_3x3 trades float32 accuracy for speed (winograd.py); its
    kernels are not generated, so the numba backend runs winograd.py's NumPy transforms."""
    monkeypatch.setitem(winograd.ALGORITHMS, 3, winograd.F4x4_3x3)
    x, w = random((2, 3, 9, 7)), random((4, 3, 3, 3), seed=1)
    X, W = mc.tensor(x, requires_grad=True), mc.tensor(w, requires_grad=True)
    y = mc.functional.conv2d(X, W, padding=1)
    assert y.creator.algorithm == "Winograd F(4x4, 3x3)"
    y.sum().backward()
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ty = torch.nn.functional.conv2d(tx, tw, padding=1)
    ty.sum().backward()
    for mine, theirs in [(y, ty), (X.grad, tx.grad), (W.grad, tw.grad)]:
        np.testing.assert_allclose(mine.numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
