"""conv2d's table of algorithms (engine_room/conv.py), row by row.

- One layer per row of the table, shaped so that the numba backend takes that row
  (Winograd's at the shipped thresholds, not lowered ones), and what each backend takes
  for it: each pass's row is asserted, then forward and every gradient equal PyTorch's.
- Every row of the table has such a layer, in each pass it computes.
- A switch turns its rows off (another row takes over, with the same numbers), every
  switch off is the reference, and a misspelt switch is an error that lists the switches.
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
from minicnn.backend import Window2d
from minicnn.engine_room import conv as engine_conv

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
    mine = [mc.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y = F.conv2d(*mine, stride=stride, padding=padding)
    ty = torch.nn.functional.conv2d(*theirs, stride=stride, padding=padding)
    assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    algorithm = y.creator.algorithm
    upstream = rng.standard_normal(y.shape)
    y.backward(mc.tensor(upstream))
    ty.backward(torch.tensor(upstream))
    for name, a, t in zip(("x", "weight", "bias"), mine, theirs, strict=True):
        assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
    return algorithm


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
