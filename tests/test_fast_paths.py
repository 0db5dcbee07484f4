"""The fast paths equal the plain ones they replace, on every backend.

- conv2d unfolds its input a chunk of images at a time, on the textbook path
  (functional/conv.py, every backend with the reference switch, the numpy backend
  always) and in the engine room (engine_room/conv.py, the numba and cupy backends). The
  engine room computes y tap by tap (``tap_sum``) with stride 1 and fewer output than
  input channels, y and dW by direct loops with stride 1 and one input channel (numba),
  and dx as a convolution of dy with stride 1 and fewer output than input channels
  (the case ids say which); on the numba backend, the stride-1 cases other than the
  direct ones and "im2col-small-map" unfold their columns on wide rows (y too, where
  there are at most 16 output channels). Forward and every gradient equal PyTorch's
  whatever the chunk size (one image per chunk, uneven chunks, the whole batch),
  whichever way each is computed, and on one thread or cut into parts for several.
- a leaf's gradient is its own array: never the caller's, never shared by two leaves.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

import minicnn as mc
from minicnn import functional as F
from minicnn.engine_room import tuning
from minicnn.functional import conv

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


def test_leaf_gradients_are_their_own_arrays(backend, rng):
    # backward hands the leaves fresh arrays without copying, and copies any array that is
    # shared or a view: a + b gives both the same array; sum broadcasts; the caller's grad.
    a, b = (mc.tensor(rng.standard_normal((2, 3)), requires_grad=True) for _ in range(2))
    upstream = mc.tensor(np.ones((2, 3)))
    (a + b).backward(upstream)
    assert not np.shares_memory(a.grad.data, b.grad.data)
    assert not np.shares_memory(a.grad.data, upstream.data)
    c = mc.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    c.sum().backward()
    assert getattr(c.grad.data.flags, "writeable", True)  # CuPy's arrays are always writeable
    assert c.grad.data.base is None
    c.grad.data[...] = 0  # the gradient can be changed in place, as an optimizer might
    assert a.grad.numpy().sum() == 6 and b.grad.numpy().sum() == 6
