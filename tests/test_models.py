"""The chapter's networks against the book's PyTorch code (tests/torch_models.py).

Torch's weights are copied into minicnn by ``state_dict`` (so the keys must be the
same), then, in float64, outputs, loss, every parameter's gradient and the batch-norm
statistics must agree to round-off; a finite-difference check covers each whole network.
Inputs are the smallest each network accepts, so the suite stays fast; the book's
resolutions are in the ``slow`` tier.
"""

from __future__ import annotations

import functools
import re

import numpy
import pytest

import minicnn as mc
from minicnn.gradcheck import gradcheck
from minicnn.models.vgg import conv_arch

torch = pytest.importorskip(
    "torch", reason="needs PyTorch as the reference (pip install -e '.[test]')"
)
import torch_models  # noqa: E402  (imports torch, so only after the skip above)

NAMES = mc.models.names()
BOOK_RESOLUTION = {
    "lenet": 28, "lenet_bn": 28, "alexnet": 224, "vgg11": 224,
    "nin": 224, "googlenet": 96, "resnet18": 96, "densenet": 96,
}  # fmt: skip


@functools.cache
def built(name):
    """One network per name, for the tests that only read it (AlexNet takes seconds to build)."""
    mc.manual_seed(0)
    return mc.models.get(name)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """The reference needs to be right, not fast: on shared cores, PyTorch's waiting
    OpenMP threads made its float64 convolutions 20 times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build_pair(name):
    """(minicnn network, torch network) holding the same weights: torch's, copied in."""
    mc.manual_seed(0)
    torch.manual_seed(0)
    torch_net = torch_models.NETWORKS[name]()
    net = mc.models.get(name)
    state = {k: v.detach().numpy() for k, v in torch_net.state_dict().items()}
    assert list(net.state_dict()) == list(state)
    net.load_state_dict(state)
    return net, torch_net


def float64_size(net) -> int:
    """The smallest input, except for GoogLeNet and ResNet, which accept 1x1: there 3x3
    convolutions would see only padding and batch norm 3 values, so take 33x33, which
    leaves every stage at least 2x2."""
    return net.min_size if net.min_size > 1 else 33


def has_batch_norm(net) -> bool:
    return any(isinstance(m, mc.nn.BatchNorm1d | mc.nn.BatchNorm2d) for m in net.modules())


def without_dropout(*nets) -> None:
    """p = 0 in every Dropout, so that training-mode outputs are deterministic."""
    for net in nets:
        for m in net.modules():
            if isinstance(m, mc.nn.Dropout | torch.nn.Dropout):
                m.p = 0.0


def assert_close(actual, expected, what, scale=None, rtol=1e-10):
    """Equal to round-off: within ``rtol`` relative, plus 1e-12 of ``scale`` (the largest
    |expected| by default) absolute, for values that are round-off themselves.
    (numpy.testing.assert_allclose, but fast enough for AlexNet's 47M gradients.)"""
    actual, expected = numpy.asarray(actual), numpy.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, torch's {expected.shape}"
    magnitude = numpy.abs(expected)
    scale = magnitude.max(initial=0.0) if scale is None else scale
    excess = numpy.abs(actual - expected) - (rtol * magnitude + 1e-12 * scale)
    if excess.size and excess.max() > 0:
        worst = numpy.unravel_index(excess.argmax(), excess.shape)
        raise AssertionError(
            f"{what}: {int((excess > 0).sum())} of {excess.size} values differ; worst at "
            f"{tuple(int(i) for i in worst)}: {actual[worst]!r}, torch's {expected[worst]!r}"
        )


def images(batch, size, seed=0, dtype=numpy.float64):
    return numpy.random.default_rng(seed).standard_normal((batch, 1, size, size)).astype(dtype)


# ---- the registry ----------------------------------------------------------------------


def test_names_lists_the_chapter_networks_in_order():
    assert NAMES == [
        "lenet", "lenet_bn", "alexnet", "vgg11", "nin", "googlenet", "resnet18", "densenet",
    ]  # fmt: skip


def test_get_unknown_name_lists_the_names():
    with pytest.raises(ValueError, match="unknown network 'resnet50'; choose one of: lenet, "):
        mc.models.get("resnet50")


@pytest.mark.parametrize("name", NAMES)
def test_network_knows_its_input(name):
    net = built(name)
    assert isinstance(net, mc.nn.Sequential)
    assert (net.name, net.in_channels, net.num_classes) == (name, 1, 10)
    assert net.resolution == BOOK_RESOLUTION[name]
    assert net.min_size <= net.resolution <= (net.max_size or net.resolution)


@pytest.mark.parametrize("name", NAMES)
def test_num_classes_and_in_channels(name):
    net = mc.models.get(name, num_classes=7, in_channels=3).eval()
    assert (net.in_channels, net.num_classes) == (3, 7)
    size = net.min_size if net.min_size > 1 else 16
    with mc.no_grad():
        assert net(images(2, size, dtype=numpy.float32).repeat(3, axis=1)).shape == (2, 7)


# ---- structure: the book's nesting gives torch's keys ----------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_keys_shapes_and_parameter_count_equal_torch(name):
    net, torch_net = built(name), torch_models.NETWORKS[name]()
    ours, theirs = net.state_dict(), torch_net.state_dict()
    assert list(ours) == list(theirs)  # same keys, same order
    assert {k: v.shape for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}
    assert [n for n, _ in net.named_parameters()] == [n for n, _ in torch_net.named_parameters()]
    count = sum(p.size for p in net.parameters())
    assert count == sum(p.numel() for p in torch_net.parameters())


def test_state_dict_keys_follow_the_book_nesting():
    assert "0.weight" in mc.models.lenet().state_dict()
    keys = list(mc.models.resnet18().state_dict())
    assert keys[keys.index("1.0.conv1.weight") :][:5] == [
        "1.0.conv1.weight", "1.0.conv1.bias", "1.0.conv2.weight", "1.0.conv2.bias", "1.0.bn1.weight",
    ]  # fmt: skip
    assert "2.0.conv3.weight" in keys and "1.0.conv3.weight" not in keys
    assert "0.1.num_batches_tracked" in keys
    assert "2.0.p1_1.weight" in mc.models.googlenet().state_dict()
    assert "1.net.3.2.weight" in mc.models.densenet().state_dict()


def test_inception_residual_and_dense_block_attributes():
    inception = mc.models.Inception(192, 64, (96, 128), (16, 32), 32)
    paths = ["p1_1", "p2_1", "p2_2", "p3_1", "p3_2", "p4_1", "p4_2"]
    assert [name for name, _ in inception.named_children()] == paths
    assert mc.models.Residual(64, 64).conv3 is None
    residual = mc.models.Residual(64, 128, use_1x1conv=True, strides=2)
    assert [n for n, _ in residual.named_children()] == ["conv1", "conv2", "conv3", "bn1", "bn2"]
    assert residual.conv3.stride == (2, 2)
    block = mc.models.DenseBlock(2, 3, 10)
    assert [c.in_channels for c in (block.net[0][2], block.net[1][2])] == [3, 13]
    assert block(numpy.ones((2, 3, 4, 4), numpy.float32)).shape == (2, 23, 4, 4)


def test_vgg_divides_every_width_by_ratio():
    assert conv_arch == ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))
    net = mc.models.vgg11()
    convs = [m for m in net.modules() if isinstance(m, mc.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 64, 128, 128, 128, 128]
    assert net[6].in_features == 128 * 7 * 7
    block = mc.models.vgg_block(2, 3, 8)
    assert [type(m).__name__ for m in block] == ["Conv2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d"]


def test_resnet_block_halves_all_but_the_first_stage():
    first = mc.models.resnet_block(64, 64, 2, first_block=True)
    later = mc.models.resnet_block(64, 128, 2)
    assert [r.conv3 is None for r in first + later] == [True, True, False, True]
    assert later[0].conv1.stride == (2, 2) and later[1].conv1.stride == (1, 1)


def test_lenet_shape_walk_through_matches_the_book():
    x = mc.tensor(images(1, 28, dtype=numpy.float32))
    shapes = []
    for layer in mc.models.lenet():
        x = layer(x)
        if not isinstance(layer, mc.nn.Sigmoid):
            shapes.append(x.shape[1:])
    assert shapes == [
        (6, 28, 28),
        (6, 14, 14),
        (16, 10, 10),
        (16, 5, 5),
        (400,),
        (120,),
        (84,),
        (10,),
    ]


# ---- loading weights --------------------------------------------------------------------


def test_load_state_dict_with_a_wrong_key_is_one_clear_error():
    net = mc.models.lenet()
    state = net.state_dict()
    state["0.weights"] = state.pop("0.weight")
    with pytest.raises(
        ValueError, match=r"missing keys: \['0.weight'\]; unexpected keys: \['0.weights'\]"
    ):
        net.load_state_dict(state)


def test_load_state_dict_with_a_wrong_shape_is_one_clear_error():
    net, other = mc.models.resnet18(), mc.models.resnet18(num_classes=5)
    with pytest.raises(
        ValueError,
        match=re.escape("mis-shaped keys: ['7.weight: expected (10, 512), got (5, 512)'"),
    ):
        net.load_state_dict(other.state_dict())


# ---- the input check ---------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_min_size_works_and_one_less_fails(name):
    """Found by experiment; torch agrees. Below min_size the layers themselves refuse
    (the check only says it first, and more clearly)."""
    net, torch_net = built(name), torch_models.NETWORKS[name]()
    net.eval()
    torch_net.eval()
    sizes = [(net.min_size, net.min_size - 1)]
    if net.max_size is not None:
        sizes.append((net.max_size, net.max_size + 1))
    for works, fails in sizes:
        x, bad = images(1, works, dtype=numpy.float32), images(1, fails, dtype=numpy.float32)
        with mc.no_grad(), torch.no_grad():
            assert net(x).shape == (1, 10)
            assert torch_net(torch.from_numpy(x)).shape == (1, 10)
            with pytest.raises(
                ValueError, match=f"{name}: input of shape \\(1, 1, {fails}, {fails}\\) is too"
            ):
                net(bad)
            with pytest.raises(ValueError):
                mc.nn.Sequential.forward(net, mc.tensor(bad))  # the layers, without the check
            with pytest.raises(RuntimeError):
                torch_net(torch.from_numpy(bad))


@pytest.mark.parametrize("name", NAMES)
def test_too_small_input_names_the_network_the_shapes_and_the_minimum(name):
    net = built(name)
    if net.min_size == 1:
        shape = (1, 1, 0, 8)
    else:
        shape = (1, 1, net.min_size - 1, net.resolution)
    with pytest.raises(ValueError) as error:
        net(numpy.zeros(shape, numpy.float32))
    message = str(error.value)
    assert message.startswith(
        f"{name}: input of shape {shape} is too small: this network needs (N, 1, H, W)"
    )
    assert f"{net.min_size}x{net.min_size}" in message
    assert f"(the book uses {net.resolution}x{net.resolution})" in message


def test_the_error_messages_in_full():
    with pytest.raises(ValueError) as error:
        mc.models.densenet()(numpy.zeros((1, 1, 16, 16), numpy.float32))
    assert str(error.value) == (
        "densenet: input of shape (1, 1, 16, 16) is too small: this network needs "
        "(N, 1, H, W) with H x W at least 29x29 (the book uses 96x96)"
    )
    with pytest.raises(ValueError) as error:
        mc.models.lenet()(numpy.zeros((2, 1, 32, 32), numpy.float32))
    assert str(error.value) == (
        "lenet: input of shape (2, 1, 32, 32) is too large: this network needs "
        "(N, 1, H, W) with H x W between 28x28 and 31x31 (the book uses 28x28)"
    )
    with pytest.raises(
        ValueError, match=r"^resnet18: input of shape \(2, 3, 96, 96\) has 3 channels, not 1: "
    ):
        mc.models.resnet18()(numpy.zeros((2, 3, 96, 96), numpy.float32))
    with pytest.raises(ValueError, match=r"^nin: input of shape \(1, 224, 224\) is not 4-D: "):
        mc.models.nin()(numpy.zeros((1, 224, 224), numpy.float32))


def test_a_failing_inner_layer_is_named_by_its_path():
    net = mc.models.resnet18()
    net[1][0].conv2 = mc.nn.Conv2d(32, 64, kernel_size=3, padding=1)  # expects 32 channels, gets 64
    with pytest.raises(ValueError, match=r"^layer '1\.0\.conv2' \(Conv2d\(32, 64"):
        net(numpy.zeros((2, 1, 33, 33), numpy.float32))


# ---- numerics: equal to torch, and to finite differences ----------------------------------


@pytest.fixture(scope="module", params=NAMES, ids=NAMES)
def float64_pair(request):
    """(minicnn, torch) networks with torch's weights, in float64, without dropout:
    built once per network for the two tests below (AlexNet's take seconds)."""
    net, torch_net = build_pair(request.param)
    net.double()
    torch_net.double()
    without_dropout(net, torch_net)
    return net, torch_net


def test_float64_forward_backward_and_step_equal_torch(float64_pair):
    net, torch_net = float64_pair
    net.load_state_dict(torch_net.state_dict())  # whatever ran before, start equal
    net.zero_grad()
    torch_net.zero_grad()
    net.train()
    torch_net.train()
    batch = 3 if has_batch_norm(net) else 2
    x, y = images(batch, float64_size(net)), numpy.array([3, 1, 4][:batch])

    # training mode: outputs, loss, every parameter's gradient
    out = net(x)
    loss = mc.nn.CrossEntropyLoss()(out, y)
    loss.backward()
    torch_out = torch_net(torch.from_numpy(x))
    torch_loss = torch.nn.functional.cross_entropy(torch_out, torch.from_numpy(y))
    torch_loss.backward()
    assert_close(out.numpy(), torch_out.detach().numpy(), "train-mode output")
    assert_close(loss.item(), torch_loss.item(), "loss")
    torch_params = dict(torch_net.named_parameters())
    assert [n for n, _ in net.named_parameters()] == list(torch_params)
    # biases just before a batch norm have gradient 0, computed as round-off: hence the scale
    scale = max(p.grad.abs().max().item() for p in torch_params.values())
    for n, p in net.named_parameters():
        assert_close(p.grad.numpy(), torch_params[n].grad.numpy(), f"gradient of {n}", scale)

    # one SGD step: parameters, running statistics and num_batches_tracked
    mc.optim.SGD(net.parameters(), lr=0.1).step()
    torch.optim.SGD(torch_net.parameters(), lr=0.1).step()
    torch_state = torch_net.state_dict()
    for n, value in net.state_dict().items():
        assert_close(value, torch_state[n].numpy(), f"{n} after one step")

    # evaluation mode: running statistics instead of the batch's
    net.eval()
    torch_net.eval()
    with mc.no_grad(), torch.no_grad():
        assert_close(net(x).numpy(), torch_net(torch.from_numpy(x)).numpy(), "eval-mode output")


def test_whole_network_gradcheck(float64_pair):
    """Every parameter moved at once along 3 random unit directions (training mode; batch
    norm's running statistics change on each call, which its output does not read)."""
    net = float64_pair[0].train()
    batch = 3 if has_batch_norm(net) else 2
    x, y = mc.tensor(images(batch, float64_size(net))), numpy.array([3, 1, 4][:batch])
    loss = mc.nn.CrossEntropyLoss()
    params = list(net.parameters())
    assert gradcheck(lambda *p: loss(net(x), y), params, joint=True, directions=3)


# ---- the book's resolutions (slow) ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_float32_at_the_book_resolution_equals_torch(name):
    """Eval mode, batch 2: max |ours - torch's| within 1e-4 of max |torch's|."""
    net, torch_net = build_pair(name)
    net.eval()
    torch_net.eval()
    x = numpy.random.default_rng(1).random((2, 1, net.resolution, net.resolution), numpy.float32)
    with mc.no_grad(), torch.no_grad():
        out, expected = net(x).numpy(), torch_net(torch.from_numpy(x)).numpy()
    assert out.dtype == numpy.float32 and out.shape == (2, 10)
    assert numpy.abs(out - expected).max() <= 1e-4 * numpy.abs(expected).max()


@pytest.mark.slow
def test_full_width_vgg11_equals_torch_in_structure():
    net, torch_net = mc.models.vgg11(ratio=1), torch_models.vgg11(ratio=1)
    ours, theirs = net.state_dict(), torch_net.state_dict()
    assert [(k, v.shape) for k, v in ours.items()] == [
        (k, tuple(v.shape)) for k, v in theirs.items()
    ]
    assert ours["0.0.weight"].shape == (64, 1, 3, 3) and ours["6.weight"].shape == (
        4096,
        512 * 7 * 7,
    )


@pytest.mark.slow
def test_resnet18_shape_walk_through_matches_the_book():
    x = mc.tensor(images(1, 224, dtype=numpy.float32))
    shapes = []
    with mc.no_grad():
        for block in mc.models.resnet18():
            x = block(x)
            shapes.append(x.shape[1:])
    assert shapes == [
        (64, 56, 56),
        (64, 56, 56),
        (128, 28, 28),
        (256, 14, 14),
        (512, 7, 7),
        (512, 1, 1),
        (512,),
        (10,),
    ]
