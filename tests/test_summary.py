"""``mc.summary``: the book's shape walk-throughs, parameter totals equal to PyTorch's,
FLOPs by the documented formulas, and a network left exactly as it was found."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import minicnn as mc
from minicnn import nn
from minicnn.summary import Row, Summary

# the input each network is summarised at here: the book's, or a smaller one it accepts
SIZES = {
    "lenet": 28,
    "lenet_bn": 28,
    "alexnet": 224,
    "vgg11": 224,
    "nin": 96,
    "googlenet": 96,
    "resnet18": 96,
    "densenet": 96,
}


def test_mc_summary_is_the_function():
    assert mc.summary.__name__ == "summary" and "summary" in mc.__all__


def test_lenet_walk_through():
    """D2L 7.6.1: the shape after each layer of LeNet on a 28x28 image."""
    result = mc.summary(mc.models.lenet(), (1, 1, 28, 28))
    assert isinstance(result, Summary) and all(isinstance(row, Row) for row in result.rows)
    assert [row.path for row in result.rows] == [str(k) for k in range(12)]
    assert [row.type for row in result.rows] == [
        "Conv2d", "Sigmoid", "AvgPool2d", "Conv2d", "Sigmoid", "AvgPool2d",
        "Flatten", "Linear", "Sigmoid", "Linear", "Sigmoid", "Linear",
    ]  # fmt: skip
    shapes = {row.path: row.output_shape[1:] for row in result.rows}
    expected = {
        "0": (6, 28, 28),
        "2": (6, 14, 14),
        "3": (16, 10, 10),
        "5": (16, 5, 5),
        "6": (400,),
        "7": (120,),
        "9": (84,),
        "11": (10,),
    }
    assert {path: shapes[path] for path in expected} == expected
    assert result.output_shape == (1, 10)
    assert result.total_params == 61706


def test_resnet18_walk_through_by_top_level_block():
    """D2L 8.6.3: ``for layer in net: X = layer(X)`` on a 224x224 image."""
    result = mc.summary(mc.models.resnet18(), (1, 1, 224, 224), depth=1)
    assert [row.path for row in result.rows] == [str(k) for k in range(8)]
    assert [row.output_shape[1:] for row in result.rows] == [
        (64, 56, 56),
        (64, 56, 56),
        (128, 28, 28),
        (256, 14, 14),
        (512, 7, 7),
        (512, 1, 1),
        (512,),
        (10,),
    ]
    assert [row.type for row in result.rows][:5] == ["Sequential"] * 5
    # a block's row holds everything inside it
    assert sum(row.params for row in result.rows) == result.total_params
    assert sum(row.flops for row in result.rows) == result.total_flops


def _torch_count(name):
    torch_models = importlib.import_module("torch_models")
    factory = getattr(torch_models, name)
    return sum(p.numel() for p in factory().parameters())


@pytest.mark.parametrize("name", list(SIZES))
def test_parameter_totals_equal_torchs(name, torch):
    net = mc.models.get(name)
    size = SIZES[name]
    result = mc.summary(net, (1, 1, size, size))
    assert result.total_params == sum(p.size for p in net.parameters()) == _torch_count(name)
    assert sum(row.params for row in result.rows) == result.total_params  # no shared weights
    assert result.total_param_bytes == 4 * result.total_params
    assert result.output_shape == (1, 10)
    assert sum(row.flops for row in result.rows) == result.total_flops > 0
    assert sum(row.activation_bytes for row in result.rows) == result.total_activation_bytes


def test_depth_one_agrees_with_leaves():
    net = mc.models.lenet_bn()
    leaves = mc.summary(net, (2, 1, 28, 28))
    blocks = mc.summary(net, (2, 1, 28, 28), depth=1)
    assert [row.path for row in leaves.rows] == [row.path for row in blocks.rows]  # all leaves
    whole = mc.summary(net, (2, 1, 28, 28), depth=0)
    assert [(row.path, row.type) for row in whole.rows] == [("", "Network")]
    assert whole.rows[0].flops == leaves.total_flops
    assert whole.rows[0].params == leaves.total_params
    deeper = mc.summary(mc.models.googlenet(), (1, 1, 96, 96), depth=2)
    assert [row.path for row in deeper.rows][:3] == ["0.0", "0.1", "0.2"]
    assert deeper.rows[-1].path == "5"  # the final Linear is a leaf above depth 2
    assert {row.type for row in deeper.rows} >= {"Inception", "Conv2d", "Linear"}


# ---- FLOPs and memory by the formulas ---------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_conv_flops_equal_the_formula(bias):
    n, cin, cout, kh, kw, oh, ow = 2, 3, 8, 3, 5, 5, 4
    conv = nn.Conv2d(cin, cout, (kh, kw), stride=2, padding=(1, 2), bias=bias)
    result = mc.summary(conv, (n, cin, 9, 8))
    (row,) = result.rows
    assert (row.path, row.type, row.output_shape) == ("", "Conv2d", (n, cout, oh, ow))
    expected = 2 * cin * kh * kw * cout * oh * ow * n + (cout * oh * ow * n if bias else 0)
    assert row.flops == result.total_flops == expected
    assert row.params == cout * cin * kh * kw + (cout if bias else 0)
    assert row.activation_bytes == n * cout * oh * ow * 4


@pytest.mark.parametrize("bias", [True, False])
def test_linear_flops_equal_the_formula(bias):
    result = mc.summary(nn.Linear(5, 3, bias=bias), (4, 5))
    assert result.total_flops == 2 * 5 * 3 * 4 + (3 * 4 if bias else 0)


def test_elementwise_and_pooling_flops_follow_the_convention():
    net = nn.Sequential(
        nn.BatchNorm2d(2),  # 4 per element
        nn.ReLU(),  # 1
        nn.Sigmoid(),  # 4
        nn.MaxPool2d(3, 1, 1),  # 9 per output element
        nn.AvgPool2d(2),  # 4 per output element
        nn.AdaptiveAvgPool2d(1),  # 1 per input element
        nn.Dropout(),  # 0 in evaluation
        nn.Flatten(),  # 0
    )
    result = mc.summary(net, (1, 2, 4, 4))
    assert [row.flops for row in result.rows] == [4 * 32, 32, 4 * 32, 9 * 32, 4 * 8, 8, 0, 0]
    assert [row.activation_bytes for row in result.rows] == [128, 128, 128, 128, 32, 8, 8, 8]


def test_dtype_follows_the_network():
    net = nn.Sequential(nn.Linear(4, 3)).double()
    result = mc.summary(net, (2, 4))
    assert result.dtype == np.float64
    assert result.rows[0].activation_bytes == 2 * 3 * 8
    assert result.total_param_bytes == 15 * 8


def test_a_module_called_twice_gets_two_rows_and_its_parameters_count_once():
    shared = nn.Linear(3, 3)
    result = mc.summary(nn.Sequential(shared, nn.ReLU(), shared), (2, 3))
    assert [row.path for row in result.rows] == ["0", "1", "0"]
    assert result.total_params == 12
    assert result.total_flops == 2 * (2 * 3 * 3 * 2 + 6) + 6


def test_runs_on_every_backend(backend):
    result = mc.summary(mc.models.lenet(), (2, 1, 28, 28))
    assert [row.output_shape for row in result.rows][-1] == (2, 10)


# ---- the network is left as it was ----------------------------------------------------------


class Spy(nn.Module):
    """A leaf that remembers the mode and grad switch it ran under."""

    def forward(self, x):
        self.seen = (self.training, mc.is_grad_enabled())
        return x


def test_runs_in_eval_and_restores_every_mode():
    spy = Spy()
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(), spy)
    net[2].eval()  # a mixed set of modes comes back mixed
    before = net.state_dict()
    mc.summary(net, (1, 3))  # one example: batch norm in training would refuse it
    assert spy.seen[0] is False  # eval mode; a graph is recorded (receptive fields), no backward
    assert [m.training for m in net.modules()] == [True, True, True, False, True]
    after = net.state_dict()
    for name in before:  # no running statistic moved
        np.testing.assert_array_equal(after[name], before[name])
    assert all("forward" not in m.__dict__ for m in net.modules())
    assert all(p.grad is None for p in net.parameters())


def test_a_failing_forward_leaves_the_network_as_it_was():
    net = mc.models.lenet()
    with pytest.raises(ValueError, match="lenet"):
        mc.summary(net, (1, 3, 28, 28))
    assert all(m.training for m in net.modules())
    assert all("forward" not in m.__dict__ for m in net.modules())
    assert mc.summary(net, (1, 1, 28, 28)).output_shape == (1, 10)


def test_the_global_random_stream_is_untouched():
    net = nn.Sequential(nn.Linear(4, 4))
    mc.manual_seed(5)
    expected = nn.Linear(4, 4).weight.numpy()
    mc.manual_seed(5)
    mc.summary(net, (1, 4))  # draws its input from a generator of its own
    np.testing.assert_array_equal(nn.Linear(4, 4).weight.numpy(), expected)


# ---- printing and arguments ---------------------------------------------------------------


def test_table_is_aligned_and_readable():
    result = mc.summary(mc.models.lenet(), (1, 1, 28, 28))
    text = str(result)
    lines = text.splitlines()
    assert lines[0].split() == [
        "layer",
        "type",
        "output",
        "shape",
        "algorithm",
        "receptive",
        "field",
        "params",
        "FLOPs",
        "activations",
    ]
    table = lines[:-1]  # the last line is a sentence of totals
    assert len({len(line) for line in table}) == 1  # every row as wide as the header
    assert set(lines[1]) == {"-"}
    assert len(lines) == 1 + 1 + 12 + 1 + 1 + 1
    assert lines[2].split()[:4] == ["0", "Conv2d", "(1,", "6,"]
    first_layer = "direct" if mc.backend.current_backend().name == "numba" else "im2col"
    assert lines[2].split()[6:9] == [first_layer, "5x5", "156"]
    assert lines[-2].split()[:2] == ["total", "61,706"]
    assert f"{result.total_flops:,}" in lines[-2]
    assert "input (1, 1, 28, 28) float32, output (1, 10)" in lines[-1]
    assert repr(result) == text


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(input_shape="28x28"), "input_shape must be a tuple of positive ints"),
        (dict(input_shape=(1, 0, 28, 28)), r"got \(1, 0, 28, 28\)"),
        (dict(input_shape=(1, 1, 28, 28), depth=-1), "depth must be None or an int >= 0, got -1"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mc.summary(mc.models.lenet(), **kwargs)
