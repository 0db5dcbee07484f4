"""The textbook path and the switch to it: the layers the chapter builds, equal to the
fast ones.

- ``conv2d_simple`` and ``max_pool2d_simple`` (DeZero's pairing: an ``Im2col`` Function
  whose backward is col2im, then a product or a max, autograd deriving the backward)
  equal ``conv2d`` and ``max_pool2d``, values and every gradient, on every backend.
- ``mc.config.reference`` (``MINICNN_REFERENCE=1``) makes every conv2d compute the
  chapter's im2col on every backend; ``mc.summary`` says which algorithm each layer
  runs, and its receptive field.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose

import minicnn as mc
from minicnn import functional as F
from minicnn.engine_room import tuning
from minicnn.engine_room.adopt import Adoptions
from minicnn.gradcheck import gradcheck

# (x shape, weight shape, stride, padding)
CONV_CASES = {
    "3x3-pad1": ((2, 3, 6, 5), (4, 3, 3, 3), 1, 1),
    "5x5-stride2-pad2": ((2, 2, 9, 8), (3, 2, 5, 5), 2, 2),
    "2x3-uneven": ((3, 4, 5, 7), (2, 4, 2, 3), (1, 2), (1, 0)),
    "1x1": ((2, 5, 4, 4), (3, 5, 1, 1), 1, 0),
}
# (x shape, kernel, stride, padding)
POOL_CASES = {
    "2x2": ((2, 3, 6, 6), 2, None, 0),
    "3x3-stride2-pad1": ((2, 2, 7, 6), 3, 2, 1),
    "overlapping-3x3-stride1": ((1, 2, 5, 5), 3, 1, 0),
}


@pytest.mark.parametrize("case", CONV_CASES.values(), ids=CONV_CASES)
def test_conv2d_simple_equals_conv2d(backend, rng, case):
    x_shape, w_shape, stride, padding = case
    arrays = [rng.standard_normal(s) for s in (x_shape, w_shape, w_shape[:1])]
    simple = [mc.tensor(a, requires_grad=True) for a in arrays]
    layer = [mc.tensor(a, requires_grad=True) for a in arrays]
    y_simple = F.conv2d_simple(*simple, stride=stride, padding=padding)
    y_layer = F.conv2d(*layer, stride=stride, padding=padding)
    assert_allclose(y_simple.numpy(), y_layer.numpy(), rtol=1e-12, atol=1e-12)
    upstream = rng.standard_normal(y_layer.shape)
    y_simple.backward(mc.tensor(upstream))
    y_layer.backward(mc.tensor(upstream))
    for name, a, b in zip(("x", "weight", "bias"), simple, layer, strict=True):
        assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("case", POOL_CASES.values(), ids=POOL_CASES)
def test_max_pool2d_simple_equals_max_pool2d(backend, rng, case):
    x_shape, kernel, stride, padding = case
    x = rng.integers(-3, 3, x_shape).astype(np.float64)  # small integers: many ties
    simple, layer = mc.tensor(x, requires_grad=True), mc.tensor(x, requires_grad=True)
    y_simple = F.max_pool2d_simple(simple, kernel, stride, padding)
    y_layer = F.max_pool2d(layer, kernel, stride, padding)
    np.testing.assert_array_equal(y_simple.numpy(), y_layer.numpy())
    upstream = rng.standard_normal(y_layer.shape)
    y_simple.backward(mc.tensor(upstream))
    y_layer.backward(mc.tensor(upstream))
    np.testing.assert_array_equal(simple.grad.numpy(), layer.grad.numpy())


def test_the_simple_layers_pass_gradcheck(rng):
    x = mc.tensor(rng.standard_normal((2, 2, 5, 4)), requires_grad=True)
    w = mc.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    assert gradcheck(lambda x, w: F.conv2d_simple(x, w, padding=1), [x, w])
    assert gradcheck(lambda x: F.max_pool2d_simple(x, 2, 1), [x])


def test_im2col_backward_is_its_adjoint_col2im(backend, rng):
    """<im2col(x), c> = <x, col2im(c)>: overlapping windows add their gradients up."""
    x = mc.tensor(rng.standard_normal((2, 3, 5, 5)), requires_grad=True)
    cols = F.im2col(x, 3, 1, 1)
    assert cols.shape == (3 * 9, 2 * 5 * 5)
    c = rng.standard_normal(cols.shape)
    cols.backward(mc.tensor(c))
    assert np.vdot(cols.numpy(), c) == pytest.approx(np.vdot(x.numpy(), x.grad.numpy()))


def test_max_picks_the_first_maximum_for_the_gradient(backend):
    x = mc.tensor(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]]), requires_grad=True)
    y = x.max(axis=1)
    np.testing.assert_array_equal(y.numpy(), [3.0, 2.0])
    y.backward(mc.tensor(np.array([10.0, 20.0])))
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 10, 0], [20, 0, 0]])
    with pytest.raises(TypeError, match="max: axis must be one int"):
        F.max(x, (0, 1))


def test_max_over_a_negative_axis_keeping_it(backend):
    x = mc.tensor(np.array([[1.0, 5.0], [7.0, 2.0], [0.0, 0.0]]), requires_grad=True)
    y = F.max(x, -2, keepdims=True)  # down the columns
    assert y.shape == (1, 2)
    np.testing.assert_array_equal(y.numpy(), [[7.0, 5.0]])
    y.backward(mc.tensor(np.array([[3.0, 4.0]])))
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 4], [3, 0], [0, 0]])


# ---- the reference switch ----------------------------------------------------------------
LAYERS = {  # a layer the numba backend computes otherwise: taps, dx by a convolution, Winograd
    "taps": ((2, 8, 6, 6), (4, 8, 3, 3), 1, 1),
    "winograd": ((2, 4, 6, 6), (4, 4, 3, 3), 1, 1),
}


@pytest.fixture
def numba_backend(monkeypatch):
    pytest.importorskip("numba", reason="needs Numba (pip install -e '.[numba]')")
    monkeypatch.setattr(tuning, "WINOGRAD_MIN_CHANNELS", 4)
    monkeypatch.setattr(tuning, "WINOGRAD_MIN_SIDE", 1)
    monkeypatch.setattr(tuning, "WINOGRAD_NARROW_MIN_SIDE", 1)
    with mc.use_backend("numba") as backend:
        yield backend


@pytest.mark.parametrize("case", LAYERS.values(), ids=LAYERS)
def test_the_switch_computes_the_chapters_im2col_and_the_same_numbers(numba_backend, rng, case):
    x_shape, w_shape, stride, padding = case
    arrays = [rng.standard_normal(s) for s in (x_shape, w_shape)]
    results = {}
    for reference in (False, True):
        with mc.config.using_reference(reference):
            x, w = (mc.tensor(a, requires_grad=True) for a in arrays)
            y = F.conv2d(x, w, stride=stride, padding=padding)
            algorithm = y.creator.algorithm  # read before backward frees the graph
            y.backward(mc.tensor(np.ones(y.shape)))
            results[reference] = (algorithm, y.numpy(), x.grad.numpy(), w.grad.numpy())
    assert results[True][0] == "im2col" != results[False][0]
    for fast, textbook in zip(results[False][1:], results[True][1:], strict=True):
        assert_allclose(fast, textbook, rtol=1e-12, atol=1e-12)
    assert mc.config.reference is False  # restored


@pytest.mark.parametrize(("x_shape", "w_shape", "algorithm"), [
    ((2, 8, 8, 8), (2, 8, 3, 3), "taps"),  # fewer output than input channels, 3x3
    ((2, 1, 8, 8), (4, 1, 5, 5), "direct"),  # one input channel
    ((2, 8, 10, 10), (8, 8, 3, 3), "Winograd F(2x2, 3x3)"),  # wide enough, as the fixture allows
])  # fmt: skip
def test_a_layer_names_its_algorithm_after_backward_too(numba_backend, rng, x_shape, w_shape, algorithm):
    x = mc.tensor(rng.standard_normal(x_shape), requires_grad=True)
    w = mc.tensor(rng.standard_normal(w_shape), requires_grad=True)
    y = F.conv2d(x, w)
    layer = y.creator
    assert layer.algorithm == algorithm
    y.sum().backward()  # frees the layer's saved arrays and its plan
    assert layer.algorithm == algorithm


def test_summary_names_each_layers_algorithm():
    pytest.importorskip("numba", reason="needs Numba (pip install -e '.[numba]')")
    with mc.use_backend("numba"):  # with the thresholds as shipped
        summary_names_each_layers_algorithm()


def summary_names_each_layers_algorithm():
    net = mc.models.get("resnet18")
    fast = {row.algorithm for row in mc.summary(net, (1, 1, 96, 96)).rows}
    assert {"im2col", "window max", "window mean", "matmul"} <= fast
    alexnet = {row.algorithm for row in mc.summary(mc.models.get("alexnet"), (1, 1, 224, 224)).rows}
    assert "Winograd F(2x2, 3x3)" in alexnet  # its wide layers (256 and 384 channels)
    densenet = {row.algorithm for row in mc.summary(mc.models.get("densenet"), (1, 1, 96, 96)).rows}
    assert {"taps, dx by conv", "im2col, dx by conv"} <= densenet  # narrowing layers
    with mc.config.using_reference():
        textbook = {row.algorithm for row in mc.summary(net, (1, 1, 96, 96)).rows}
    assert textbook == {"im2col", "window max", "window mean", "matmul", ""}
    with mc.use_backend("numpy"):
        assert {r.algorithm for r in mc.summary(mc.models.lenet(), (1, 1, 28, 28)).rows} == {
            "im2col", "window mean", "matmul", ""}  # fmt: skip


@pytest.mark.parametrize("value, expected", [("1", True), ("0", False), ("", False)])
def test_the_environment_variable_sets_the_switch(value, expected):
    env = dict(os.environ, MINICNN_REFERENCE=value)
    code = "import minicnn as mc; print(mc.config.reference)"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.stdout.strip() == str(expected), result.stderr


def test_a_bad_value_names_the_variable():
    env = dict(os.environ, MINICNN_REFERENCE="maybe")
    result = subprocess.run([sys.executable, "-c", "import minicnn"], env=env,
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode != 0
    assert "MINICNN_REFERENCE must be 1 or 0" in result.stderr and "'maybe'" in result.stderr


# ---- the receptive field, as the chapter computes it -------------------------------------
def test_lenets_receptive_fields_by_hand():
    """conv 5x5 pad 2: 5; pool 2 stride 2: 5 + 1 = 6 (jump 2); conv 5x5: 6 + 4*2 = 14;
    pool 2 stride 2: 14 + 1*2 = 16 (jump 4); then Flatten and Linear see all of it."""
    rows = mc.summary(mc.models.lenet(), (1, 1, 28, 28)).rows
    expected = ["5x5", "5x5", "6x6", "14x14", "14x14", "16x16", "16x16", "all", "all", "all",
                "all", "all"]  # fmt: skip
    assert [row.receptive_field for row in rows] == expected
    with mc.no_grad():  # the fields are traced through a graph, recorded even here
        assert [row.receptive_field for row in mc.summary(mc.models.lenet(), (1, 1, 28, 28)).rows
                ] == expected  # fmt: skip


def test_alexnets_receptive_fields_by_hand():
    """11x11 stride 4: 11 (jump 4); pool 3/2: 11 + 2*4 = 19 (jump 8); 5x5: 19 + 4*8 = 51;
    pool 3/2: 51 + 2*8 = 67 (jump 16); three 3x3: 99, 131, 163; pool 3/2: 163 + 2*16 = 195."""
    rows = mc.summary(mc.models.alexnet(), (1, 1, 224, 224)).rows
    fields = [row.receptive_field for row in rows if row.type in ("Conv2d", "MaxPool2d")]
    assert fields == ["11x11", "19x19", "51x51", "67x67", "99x99", "131x131", "163x163", "195x195"]


def test_receptive_fields_through_branches_take_the_widest():
    """GoogLeNet's first Inception sees its input (27x27, jump 8) through a 5x5 branch:
    27 + 4*8 = 59. ResNet-18's first residual: 11 + 2*4 + 2*4 = 27; its last, 435 (the
    published figure for ResNet-18)."""
    googlenet = mc.summary(mc.models.get("googlenet"), (1, 1, 96, 96), depth=2).rows
    assert {row.path: row.receptive_field for row in googlenet}["2.0"] == "59x59"
    resnet = {row.path: row.receptive_field
              for row in mc.summary(mc.models.get("resnet18"), (1, 1, 96, 96), depth=2).rows}  # fmt: skip
    assert resnet["1.0"] == "27x27" and resnet["4.1"] == "435x435"


# ---- gradients a leaf keeps ---------------------------------------------------------------
def test_a_fresh_array_is_kept_once_and_copied_for_a_second_leaf():
    adoptions = Adoptions(lambda array: array.base is None)
    fresh = np.ones(4)
    assert adoptions.adopt(fresh) is fresh
    second = adoptions.adopt(fresh)
    assert second is not fresh and not np.shares_memory(second, fresh)
    view = np.ones((2, 2))[0]
    assert not np.shares_memory(adoptions.adopt(view), view)
    del fresh, second
    assert adoptions._kept == {}  # forgotten once the array is gone
