"""``mc.nn``: the Module API (PyTorch's names), the layers' defaults, initialisation and forward
passes against PyTorch's, and ``mc.nn.init`` against its formulas."""

from __future__ import annotations

import math
import re
from collections import OrderedDict

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import minicnn as mc
import minicnn.backend
from minicnn import nn
from minicnn.nn import init


def small_net():
    """Nested: a conv stage and a dense stage, with batch norm in both."""
    return nn.Sequential(
        nn.Conv2d(1, 2, 3),
        nn.BatchNorm2d(2),
        nn.ReLU(),
        nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 4, 3), nn.BatchNorm1d(3), nn.Sigmoid()),
    )


def small_torch_net(tnn):
    return tnn.Sequential(
        tnn.Conv2d(1, 2, 3),
        tnn.BatchNorm2d(2),
        tnn.ReLU(),
        tnn.Sequential(tnn.Flatten(), tnn.Linear(2 * 4 * 4, 3), tnn.BatchNorm1d(3), tnn.Sigmoid()),
    )


def torch_state(torch_module):
    return {k: v.detach().numpy() for k, v in torch_module.state_dict().items()}


class Block(nn.Module):
    """A hand-written module: a buffer registered before its parameter, then a child."""

    def __init__(self):
        super().__init__()
        self.register_buffer("steps", np.zeros((), dtype=np.int64))
        self.scale = nn.Parameter(np.ones(3, dtype=np.float32))
        self.inner = nn.Linear(3, 3)

    def forward(self, x):
        return self.inner(x) * self.scale


# ---- walking the tree ------------------------------------------------------------------


def test_named_parameters_have_dotted_names_in_registration_order():
    names = [name for name, _ in small_net().named_parameters()]
    assert names == [
        "0.weight",
        "0.bias",
        "1.weight",
        "1.bias",
        "3.1.weight",
        "3.1.bias",
        "3.2.weight",
        "3.2.bias",
    ]
    net = small_net()
    assert [id(p) for p in net.parameters()] == [id(p) for _, p in net.named_parameters()]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())


def test_shared_parameters_and_modules_are_listed_once():
    shared = nn.Linear(2, 2)
    net = nn.Sequential(shared, nn.ReLU(), shared)
    assert [name for name, _ in net.named_parameters()] == ["0.weight", "0.bias"]
    assert [name for name, _ in net.named_modules()] == ["", "0", "1"]

    other = nn.Linear(2, 2)
    other.weight = shared.weight  # one Parameter in two modules
    pair = nn.Sequential(shared, other)
    assert [name for name, _ in pair.named_parameters()] == ["0.weight", "0.bias", "1.bias"]


def test_named_modules_equal_torch_order(torch):
    ours = [(name, type(m).__name__) for name, m in small_net().named_modules()]
    theirs = [(name, type(m).__name__) for name, m in small_torch_net(torch.nn).named_modules()]
    assert ours == theirs
    assert [type(m).__name__ for m in small_net().modules()] == [t for _, t in theirs]
    assert [name for name, _ in small_net().named_children()] == ["0", "1", "2", "3"]


# ---- registration by attribute ---------------------------------------------------------


def test_attributes_register_parameters_buffers_and_modules():
    block = Block()
    assert list(block._parameters) == ["scale"]
    assert list(block._buffers) == ["steps"]
    assert list(block._modules) == ["inner"]
    assert [n for n, _ in block.named_parameters()] == ["scale", "inner.weight", "inner.bias"]
    assert [n for n, _ in block.named_buffers()] == ["steps"]
    block.note = "plain"  # anything else is a plain attribute
    assert block.note == "plain" and "note" not in block.state_dict()
    with pytest.raises(AttributeError, match="Block has no attribute 'missing'"):
        _ = block.missing


def test_reassigning_none_removes_and_a_new_parameter_comes_back():
    lin = nn.Linear(3, 2)
    lin.bias = None
    assert lin.bias is None
    assert list(lin.state_dict()) == ["weight"]
    assert lin(np.ones((1, 3), np.float32)).shape == (1, 2)  # forward without the bias
    lin.bias = nn.Parameter(np.full(2, 7.0, dtype=np.float32))
    assert_array_equal(lin.bias.numpy(), [7.0, 7.0])  # not hidden by the earlier None
    assert list(lin.state_dict()) == ["weight", "bias"]

    net = nn.Sequential(nn.ReLU(), nn.Linear(2, 2))
    net[1].weight = None
    setattr(net, "1", None)
    assert [name for name, _ in net.named_modules()] == ["", "0"]
    assert list(net.state_dict()) == []


def test_assigning_a_tensor_to_a_buffer_keeps_it_a_buffer():
    bn = nn.BatchNorm1d(3)
    bn.running_mean = mc.tensor(np.full(3, 2.0, dtype=np.float32))
    assert list(bn.state_dict()) == [
        "weight",
        "bias",
        "running_mean",
        "running_var",
        "num_batches_tracked",
    ]
    assert_array_equal(bn.state_dict()["running_mean"], [2.0, 2.0, 2.0])
    del bn.running_var
    assert "running_var" not in bn.state_dict()


def test_assigning_before_super_init_is_a_clear_error():
    class Forgetful(nn.Module):
        def __init__(self):
            self.weight = nn.Parameter(np.zeros(1))

    with pytest.raises(AttributeError, match=r"Forgetful: call super\(\).__init__\(\)"):
        Forgetful()


# ---- state_dict / load_state_dict ------------------------------------------------------


def test_state_dict_keys_equal_torch_order_including_num_batches_tracked(torch):
    ours = small_net().state_dict()
    theirs = small_torch_net(torch.nn).state_dict()
    assert list(ours) == list(theirs)
    assert "1.num_batches_tracked" in ours and "3.2.num_batches_tracked" in ours
    for name, value in ours.items():
        assert isinstance(value, np.ndarray)
        assert value.shape == tuple(theirs[name].shape), name
        assert value.dtype == theirs[name].numpy().dtype, name


def test_state_dict_orders_parameters_before_buffers_as_torch(torch):
    class TorchBlock(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("steps", torch.zeros((), dtype=torch.int64))
            self.scale = torch.nn.Parameter(torch.ones(3))
            self.inner = torch.nn.Linear(3, 3)

    assert list(Block().state_dict()) == list(TorchBlock().state_dict())
    assert list(Block().state_dict()) == ["scale", "steps", "inner.weight", "inner.bias"]


def test_state_dict_holds_copies():
    net = small_net()
    state = net.state_dict()
    state["0.weight"][...] = 42.0
    assert not np.any(net[0].weight.numpy() == 42.0)


def test_load_state_dict_from_torch_gives_the_same_outputs(torch, rng):
    tnet = small_torch_net(torch.nn).double().eval()
    with torch.no_grad():  # non-trivial running statistics
        tnet[1].running_mean.uniform_(-1, 1)
        tnet[1].running_var.uniform_(0.5, 2)
    net = small_net().double().eval()
    net.load_state_dict(tnet.state_dict())  # torch tensors are accepted as they are
    x = rng.standard_normal((2, 1, 6, 6))
    assert_allclose(net(x).numpy(), tnet(torch.from_numpy(x)).detach().numpy(), rtol=1e-12)
    for name, value in net.state_dict().items():
        assert_array_equal(value, tnet.state_dict()[name].numpy())


def test_load_state_dict_lists_every_bad_key_in_one_error():
    net = small_net()
    state = net.state_dict()
    del state["0.bias"], state["3.2.running_var"]
    state["extra.weight"] = np.zeros(3)
    state["3.1.weight"] = np.zeros((3, 31))
    with pytest.raises(ValueError) as caught:
        net.load_state_dict(state)
    message = str(caught.value)
    for piece in (
        "missing keys",
        "'0.bias'",
        "'3.2.running_var'",
        "unexpected keys",
        "'extra.weight'",
        "mis-shaped keys",
        "3.1.weight: expected (3, 32), got (3, 31)",
    ):
        assert piece in message, piece


def test_load_state_dict_non_strict_loads_what_matches():
    source, target = small_net(), small_net()
    state = source.state_dict()
    del state["0.bias"]
    state["extra"] = np.zeros(1)
    before = target[0].bias.numpy()
    target.load_state_dict(state, strict=False)
    assert_array_equal(target[0].weight.numpy(), source[0].weight.numpy())
    assert_array_equal(target[0].bias.numpy(), before)
    state["0.weight"] = np.zeros((2, 1, 5, 5))
    with pytest.raises(ValueError, match="mis-shaped"):  # a wrong shape is never ignored
        target.load_state_dict(state, strict=False)


def test_load_state_dict_casts_to_the_modules_dtype_and_copies():
    net = small_net()
    state = {
        k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in net.state_dict().items()
    }
    state["0.weight"] = np.full((2, 1, 3, 3), 0.5)
    net.load_state_dict(state)
    assert net[0].weight.dtype == np.float32
    assert net[1].num_batches_tracked.dtype == np.int64
    assert_array_equal(net[0].weight.numpy(), 0.5)
    state["0.weight"][...] = 9.0  # the module has its own copy
    assert_array_equal(net[0].weight.numpy(), 0.5)
    net.double().load_state_dict(small_net().state_dict())  # float32 into float64
    assert net[0].weight.dtype == np.float64


# ---- modes, gradients, dtypes, devices -------------------------------------------------


def test_train_and_eval_are_recursive():
    net = small_net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.train(False)
    assert not any(m.training for m in net.modules())


def test_batch_norm_and_dropout_follow_the_mode(rng):
    net = nn.Sequential(nn.BatchNorm1d(4), nn.Dropout(0.5)).double()
    x = rng.standard_normal((64, 4)) * 3 + 5
    y = net(x).numpy()
    assert np.mean(y == 0) > 0.3  # dropout zeroes about half in training
    assert int(net[0].num_batches_tracked.item()) == 1
    assert_allclose(net[0].running_mean.numpy(), 0.1 * x.mean(axis=0), rtol=1e-12)

    net.eval()
    y = net(x).numpy()
    mean, var = net[0].running_mean.numpy(), net[0].running_var.numpy()
    assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-12)  # running stats, no drop
    assert int(net[0].num_batches_tracked.item()) == 1  # evaluation tracks nothing
    assert_allclose(net[0].running_mean.numpy(), mean)


def test_zero_grad_clears_every_gradient(rng):
    net = small_net()
    net(rng.standard_normal((2, 1, 6, 6)).astype(np.float32)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_double_and_float_convert_float_state_only(rng):
    net = small_net()
    assert all(v.dtype == np.float32 for k, v in net.state_dict().items() if "num_batches" not in k)
    assert net.double() is net
    for name, value in net.state_dict().items():
        expected = np.int64 if name.endswith("num_batches_tracked") else np.float64
        assert value.dtype == expected, name
    assert net(rng.standard_normal((2, 1, 6, 6))).dtype == np.float64
    net.float()
    for name, value in net.state_dict().items():
        expected = np.int64 if name.endswith("num_batches_tracked") else np.float32
        assert value.dtype == expected, name


def test_to_numpy_keeps_numpy_arrays():
    net = small_net()
    before = net.state_dict()
    assert net.to("numpy") is net
    for name, value in net.named_parameters():
        assert isinstance(value.data, np.ndarray)
        assert_array_equal(value.numpy(), before[name])


def test_to_cupy_moves_every_parameter_and_buffer(rng):
    reason = minicnn.backend.unavailable_reason("cupy")
    if reason:
        pytest.skip(f"backend 'cupy' unavailable: {reason}")
    net = small_net().double()
    x = rng.standard_normal((2, 1, 6, 6))
    expected = net.eval()(x).numpy()
    net.to("cupy")
    assert all(v.device != "cpu" for _, v in net._named_state())
    with mc.use_backend("cupy"):
        assert_allclose(net(x).numpy(), expected, rtol=1e-10)
    net.to("numpy")
    assert all(isinstance(v.data, np.ndarray) for _, v in net._named_state())


def test_to_an_unknown_backend_names_the_available_ones():
    with pytest.raises(ValueError, match=r"unknown backend 'tpu'.*available here: \['numpy'"):
        small_net().to("tpu")


# ---- printing --------------------------------------------------------------------------


def _repr_shape(text):
    """Each line's indentation, child name and type, without the arguments."""
    return [re.match(r"\s*(\(\w+\): )?\w*", line).group(0) for line in text.splitlines()]


def test_repr_has_torchs_shape(torch):
    tnn = torch.nn
    ours = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),
        nn.Sigmoid(),
        nn.AvgPool2d(2, 2),
        nn.Sequential(nn.Flatten(), nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU()),
        nn.Dropout(0.5),
        nn.MaxPool2d(3, 2, 1),
        nn.AdaptiveAvgPool2d((1, 1)),
    )
    theirs = tnn.Sequential(
        tnn.Conv2d(1, 6, 5, padding=2),
        tnn.Sigmoid(),
        tnn.AvgPool2d(2, 2),
        tnn.Sequential(tnn.Flatten(), tnn.Linear(3, 4), tnn.BatchNorm1d(4), tnn.ReLU()),
        tnn.Dropout(0.5),
        tnn.MaxPool2d(3, 2, 1),
        tnn.AdaptiveAvgPool2d((1, 1)),
    )
    assert _repr_shape(repr(ours)) == _repr_shape(repr(theirs))
    # the layers minicnn supports completely print exactly as torch's
    for k in (0, 1, 2, 6):
        assert repr(ours[k]) == repr(theirs[k])
    assert repr(ours[3][1]) == repr(theirs[3][1])
    assert repr(ours[3][3]) == repr(theirs[3][3])
    assert repr(nn.Conv2d(3, 8, (3, 5), stride=2, bias=False)) == repr(
        tnn.Conv2d(3, 8, (3, 5), stride=2, bias=False)
    )


# ---- Sequential ----------------------------------------------------------------------


def test_sequential_indexing_slicing_iteration_len_append():
    layers = [nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3)]
    net = nn.Sequential(*layers)
    assert len(net) == 4
    assert list(net) == layers
    assert net[0] is layers[0] and net[-1] is layers[-1]
    head = net[2:]
    assert isinstance(head, nn.Sequential) and list(head) == layers[2:]
    assert list(head.state_dict()) == ["3.weight", "3.bias"]  # names kept, as in torch
    extra = nn.Sigmoid()
    assert net.append(extra) is net
    assert len(net) == 5 and net[4] is extra
    named = nn.Sequential(OrderedDict(conv=layers[0], act=layers[1]))
    assert [n for n, _ in named.named_children()] == ["conv", "act"]
    assert named.conv is layers[0] and named[1] is layers[1]
    with pytest.raises(IndexError):
        net[5]


def test_sequential_applies_children_in_order(rng):
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).double()
    x = rng.standard_normal((5, 3))
    hand = np.maximum(x @ net[0].weight.numpy().T + net[0].bias.numpy(), 0)
    hand = hand @ net[2].weight.numpy().T + net[2].bias.numpy()
    assert_allclose(net(x).numpy(), hand, rtol=1e-12)


def test_calling_with_a_numpy_array_equals_calling_with_a_tensor(rng):
    net = small_net().eval()
    x = rng.standard_normal((2, 1, 6, 6)).astype(np.float32)
    y = net(x)
    assert isinstance(y, mc.Tensor)
    assert_array_equal(y.numpy(), net(mc.tensor(x)).numpy())


# ---- naming the failing layer ----------------------------------------------------------


def test_error_names_the_dotted_path_of_the_failing_layer():
    net = nn.Sequential(nn.ReLU(), nn.Sequential(nn.Conv2d(1, 2, 3)))
    with pytest.raises(ValueError) as caught:
        net(np.zeros((1, 3, 5, 5), np.float32))
    message = str(caught.value)
    assert "layer '1.0'" in message
    assert "Conv2d(1, 2" in message
    assert "3 channels" in message and "expects 1" in message


def test_error_in_a_deeper_custom_module_names_its_path():
    net = nn.Sequential(nn.Sequential(nn.Flatten(), Block()))
    with pytest.raises(ValueError, match=r"layer '0\.1\.inner' \(Linear\(in_features=3"):
        net(np.zeros((2, 5), np.float32))


def test_error_on_the_called_layer_itself_is_not_renamed():
    with pytest.raises(ValueError) as caught:
        nn.Linear(3, 2)(np.zeros((1, 4), np.float32))
    assert "layer '" not in str(caught.value) and "4 features" in str(caught.value)


def test_wrong_input_rank_for_batch_norm_is_named():
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected a 4-D input, got shape \(2, 3\)"):
        nn.BatchNorm2d(3)(np.zeros((2, 3), np.float32))


# ---- defaults and initialisation --------------------------------------------------------


def test_layer_defaults_follow_torch(torch):
    tnn = torch.nn
    conv, tconv = nn.Conv2d(3, 4, 3), tnn.Conv2d(3, 4, 3)
    assert (conv.kernel_size, conv.stride, conv.padding) == (
        tconv.kernel_size,
        tconv.stride,
        tconv.padding,
    )
    assert conv.bias is not None and conv.weight.dtype == np.float32
    pool = nn.MaxPool2d(3)
    assert pool.stride == tnn.MaxPool2d(3).stride == 3 and pool.padding == 0
    assert nn.AvgPool2d(2).stride == tnn.AvgPool2d(2).stride == 2
    for ours, theirs in (
        (nn.BatchNorm1d(5), tnn.BatchNorm1d(5)),
        (nn.BatchNorm2d(5), tnn.BatchNorm2d(5)),
    ):
        assert (ours.eps, ours.momentum) == (theirs.eps, theirs.momentum) == (1e-5, 0.1)
        for name, value in ours.state_dict().items():
            assert_array_equal(value, theirs.state_dict()[name].numpy())
            assert value.dtype == theirs.state_dict()[name].numpy().dtype, name
    assert nn.Dropout().p == tnn.Dropout().p == 0.5
    assert (nn.Flatten().start_dim, nn.Flatten().end_dim) == (1, -1)


@pytest.mark.parametrize(
    "make, fan_in",
    [(lambda: nn.Conv2d(64, 128, 3), 64 * 9), (lambda: nn.Linear(800, 400), 800)],
    ids=["conv2d", "linear"],
)
def test_default_init_is_torchs_uniform(make, fan_in):
    mc.manual_seed(0)
    layer = make()
    bound = 1 / math.sqrt(fan_in)
    for param in (layer.weight, layer.bias):
        values = param.numpy()
        assert np.abs(values).max() <= bound
        assert np.abs(values).max() > 0.95 * bound
    # U(-b, b) has standard deviation b / sqrt(3); 73k weights pin it to well within 2 %
    assert_allclose(layer.weight.numpy().std(), bound / math.sqrt(3), rtol=0.02)
    assert_allclose(layer.weight.numpy().mean(), 0, atol=0.02 * bound)
    assert_allclose(layer.bias.numpy().std(), bound / math.sqrt(3), rtol=0.15)  # only 128/400


def test_construction_is_reproducible_with_manual_seed():
    mc.manual_seed(7)
    a = small_net().state_dict()
    mc.manual_seed(7)
    b = small_net().state_dict()
    mc.manual_seed(8)
    c = small_net().state_dict()
    for name in a:
        assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["0.weight"], c["0.weight"])


# ---- forward equals torch's, float64 ----------------------------------------------------

LAYERS = {
    "conv2d": (lambda m: m.Conv2d(3, 4, 3, stride=2, padding=1), (2, 3, 7, 7)),
    "conv2d_rect_no_bias": (
        lambda m: m.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=(1, 0), bias=False),
        (2, 2, 6, 5),
    ),
    "linear": (lambda m: m.Linear(5, 3), (4, 5)),
    "linear_no_bias": (lambda m: m.Linear(5, 3, bias=False), (4, 5)),
    "max_pool2d": (lambda m: m.MaxPool2d(3, 2, 1), (2, 3, 7, 7)),
    "max_pool2d_default_stride": (lambda m: m.MaxPool2d(2), (2, 3, 6, 6)),
    "avg_pool2d": (lambda m: m.AvgPool2d(3, 2, 1), (2, 3, 7, 7)),
    "avg_pool2d_default_stride": (lambda m: m.AvgPool2d(2), (2, 3, 6, 6)),
    "adaptive_avg_pool2d": (lambda m: m.AdaptiveAvgPool2d((1, 1)), (2, 3, 5, 5)),
    "batch_norm2d": (lambda m: m.BatchNorm2d(3), (4, 3, 3, 3)),
    "batch_norm1d": (lambda m: m.BatchNorm1d(3), (6, 3)),
    "relu": (lambda m: m.ReLU(), (3, 4)),
    "sigmoid": (lambda m: m.Sigmoid(), (3, 4)),
    "tanh": (lambda m: m.Tanh(), (3, 4)),
    "flatten": (lambda m: m.Flatten(), (2, 3, 2, 2)),
    "dropout_eval": (lambda m: m.Dropout(0.5), (3, 4)),
}


CASES = [  # dropout in training is random: see test_batch_norm_and_dropout_follow_the_mode
    (name, training)
    for name in LAYERS
    for training in (True, False)
    if name != "dropout_eval" or not training
]


@pytest.mark.parametrize(
    "name, training", CASES, ids=[f"{n}-{'train' if t else 'eval'}" for n, t in CASES]
)
def test_layer_forward_and_backward_equal_torch(name, training, backend, torch, rng):
    make, shape = LAYERS[name]
    theirs = make(torch.nn).double().train(training)
    ours = make(nn).double().train(training)
    if isinstance(theirs, torch.nn.modules.batchnorm._BatchNorm):
        with torch.no_grad():  # non-trivial affine parameters and running statistics
            for t in (theirs.weight, theirs.bias, theirs.running_mean):
                t.uniform_(-1, 1)
            theirs.running_var.uniform_(0.5, 2)
    ours.load_state_dict(theirs.state_dict())
    x = rng.standard_normal(shape)
    tx = torch.tensor(x, requires_grad=True)
    ty = theirs(tx)
    xt = mc.tensor(x, requires_grad=True)
    y = ours(xt)
    assert y.shape == tuple(ty.shape)
    assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)

    weights = rng.standard_normal(y.shape)
    (ty * torch.from_numpy(weights)).sum().backward()
    (y * mc.tensor(weights)).sum().backward()  # the weights on y's backend
    assert_allclose(xt.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    for (pname, p), (tname, tp) in zip(
        ours.named_parameters(), theirs.named_parameters(), strict=True
    ):
        assert pname == tname
        assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=pname)
    for bname, value in ours.state_dict().items():  # running statistics moved alike
        assert_allclose(value, theirs.state_dict()[bname].numpy(), rtol=1e-12, err_msg=bname)


def test_cross_entropy_loss_equals_torch(torch, rng):
    logits = rng.standard_normal((5, 4))
    target = np.array([0, 3, 1, 1, 2])
    for reduction in ("mean", "sum"):
        ours = nn.CrossEntropyLoss(reduction=reduction)(mc.tensor(logits), mc.tensor(target))
        theirs = torch.nn.CrossEntropyLoss(reduction=reduction)(
            torch.from_numpy(logits), torch.from_numpy(target)
        )
        assert_allclose(ours.item(), theirs.item(), rtol=1e-12)


# ---- mc.nn.init ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(30, 20), (16, 8, 3, 3), (4, 6, 5, 1)])
def test_fans_equal_torchs(shape, torch):
    weight = nn.Parameter(np.zeros(shape, np.float32))
    assert init.calculate_fan_in_and_fan_out(weight) == torch.nn.init._calculate_fan_in_and_fan_out(
        torch.zeros(shape)
    )


@pytest.mark.parametrize(
    "nonlinearity, param",
    [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
     ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", 0)],
)  # fmt: skip
def test_calculate_gain_equals_torchs(nonlinearity, param, torch):
    assert_allclose(
        init.calculate_gain(nonlinearity, param),
        torch.nn.init.calculate_gain(nonlinearity, param),
        rtol=1e-15,
    )


SHAPE = (64, 32, 5, 5)  # fan_in 800, fan_out 1600, 51200 draws
FAN_IN, FAN_OUT = 32 * 25, 64 * 25


def _draw(initialiser, **kwargs):
    weight = nn.Parameter(np.zeros(SHAPE, np.float32))
    assert initialiser(weight, **kwargs) is weight
    assert weight.dtype == np.float32
    return weight.numpy().astype(np.float64)


@pytest.mark.parametrize(
    "initialiser, kwargs, bound",
    [
        (init.xavier_uniform_, {}, math.sqrt(6 / (FAN_IN + FAN_OUT))),
        (init.xavier_uniform_, {"gain": 2.0}, 2 * math.sqrt(6 / (FAN_IN + FAN_OUT))),
        (init.kaiming_uniform_, {}, math.sqrt(2) * math.sqrt(3 / FAN_IN)),
        (
            init.kaiming_uniform_,
            {"nonlinearity": "relu", "mode": "fan_out"},
            math.sqrt(6 / FAN_OUT),
        ),
        (init.kaiming_uniform_, {"a": math.sqrt(5)}, 1 / math.sqrt(FAN_IN)),
        (init.uniform_, {"a": -0.3, "b": 0.3}, 0.3),
    ],
)
def test_uniform_initialisers_bound_and_spread(initialiser, kwargs, bound):
    values = _draw(initialiser, **kwargs)
    assert np.abs(values).max() <= bound * (1 + 1e-6)
    assert np.abs(values).max() > 0.99 * bound
    assert_allclose(values.std(), bound / math.sqrt(3), rtol=0.02)


@pytest.mark.parametrize(
    "initialiser, kwargs, std",
    [
        (init.xavier_normal_, {}, math.sqrt(2 / (FAN_IN + FAN_OUT))),
        (
            init.xavier_normal_,
            {"gain": init.calculate_gain("tanh")},
            5 / 3 * math.sqrt(2 / (FAN_IN + FAN_OUT)),
        ),
        (init.kaiming_normal_, {}, math.sqrt(2 / FAN_IN)),
        (init.kaiming_normal_, {"mode": "fan_out", "nonlinearity": "relu"}, math.sqrt(2 / FAN_OUT)),
        (init.normal_, {"mean": 0.0, "std": 0.05}, 0.05),
    ],
)
def test_normal_initialisers_spread(initialiser, kwargs, std):
    values = _draw(initialiser, **kwargs)
    assert_allclose(values.std(), std, rtol=0.02)
    assert_allclose(values.mean(), 0, atol=0.02 * std)


def test_initialisers_match_torchs_statistics(torch):
    """The same formulas as torch's: the spread of 51200 draws agrees within 3 %."""
    pairs = [
        (init.xavier_uniform_, torch.nn.init.xavier_uniform_, {}),
        (init.xavier_normal_, torch.nn.init.xavier_normal_, {}),
        (init.kaiming_uniform_, torch.nn.init.kaiming_uniform_, {"nonlinearity": "relu"}),
        (init.kaiming_normal_, torch.nn.init.kaiming_normal_, {"mode": "fan_out"}),
    ]
    torch.manual_seed(0)
    for ours, theirs, kwargs in pairs:
        expected = theirs(torch.empty(SHAPE), **kwargs).numpy().std()
        assert_allclose(_draw(ours, **kwargs).std(), expected, rtol=0.03, err_msg=ours.__name__)


def test_constant_initialisers():
    weight = nn.Parameter(np.full((2, 3), 5.0))
    assert_array_equal(init.zeros_(weight).numpy(), 0.0)
    assert_array_equal(init.ones_(weight).numpy(), 1.0)
    assert_array_equal(init.constant_(weight, 0.25).numpy(), 0.25)


def test_seeded_draws_are_reproducible():
    mc.manual_seed(3)
    first = _draw(init.xavier_uniform_)
    second = _draw(init.xavier_uniform_)
    mc.manual_seed(3)
    assert_array_equal(_draw(init.xavier_uniform_), first)
    assert_array_equal(_draw(init.xavier_uniform_), second)
    assert not np.array_equal(first, second)


def test_one_seed_gives_the_same_weights_on_every_backend(backend):
    """Init draws on the host and copies to the device: a network built on the GPU
    starts from the NumPy reference's weights. (The CPU backends share one generator
    anyway: this test means something where cupy runs.)"""
    with mc.use_backend("numpy"):
        mc.manual_seed(5)
        expected = nn.Conv2d(3, 4, 3).state_dict()
    mc.manual_seed(5)
    layer = nn.Conv2d(3, 4, 3)  # built on ``backend``, the active one
    assert layer.weight.device == backend.device
    for name, value in layer.state_dict().items():
        assert_array_equal(value, expected[name], err_msg=name)


def test_init_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"at least 2 dimensions, got shape \(5,\)"):
        init.xavier_uniform_(nn.Parameter(np.zeros(5)))
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out', got 'fan_avg'"):
        init.kaiming_normal_(nn.Parameter(np.zeros((2, 2))), mode="fan_avg")
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")
