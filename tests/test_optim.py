"""``mc.optim``: every update rule equals ``torch.optim``'s on the same parameters and
gradients (float64), a saved optimizer continues identically, bad arguments are refused."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import minicnn as mc
from minicnn import nn

torch = pytest.importorskip(
    "torch", reason="needs PyTorch as the reference (pip install -e '.[test]')"
)

SHAPES = [(3, 4), (4,), (2, 2, 3)]

CONFIGS = {
    "sgd": ("SGD", dict(lr=0.1)),
    "sgd_momentum": ("SGD", dict(lr=0.1, momentum=0.9)),
    "sgd_weight_decay": ("SGD", dict(lr=0.1, weight_decay=0.01)),
    "sgd_nesterov": ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    "sgd_all": ("SGD", dict(lr=0.05, momentum=0.5, weight_decay=0.1, nesterov=True)),
    "adam": ("Adam", dict(lr=0.01)),
    "adam_weight_decay": ("Adam", dict(lr=0.01, weight_decay=0.01)),
    "adam_betas_eps": ("Adam", dict(lr=0.1, betas=(0.5, 0.9), eps=1e-6)),
}


def make_problem(steps, seed=0):
    """Initial values and one gradient per parameter per step."""
    rng = np.random.default_rng(seed)
    start = [rng.standard_normal(shape) for shape in SHAPES]
    grads = [[rng.standard_normal(shape) for shape in SHAPES] for _ in range(steps)]
    return start, grads


def run_minicnn(optimizer, params, grads):
    for step_grads in grads:
        for p, g in zip(params, step_grads, strict=True):
            p.grad = mc.tensor(g)
        optimizer.step()
    return [p.numpy() for p in params]


def run_torch(kind, kwargs, start, grads):
    params = [torch.nn.Parameter(torch.tensor(v)) for v in start]
    optimizer = getattr(torch.optim, kind)(params, **kwargs)
    for step_grads in grads:
        for p, g in zip(params, step_grads, strict=True):
            p.grad = torch.tensor(g)
        optimizer.step()
    return [p.detach().numpy() for p in params]


def minicnn_params(start):
    return [nn.Parameter(v.copy()) for v in start]


@pytest.mark.parametrize("config", ["sgd", "sgd_all", "adam", "adam_weight_decay"])
def test_steps_on_every_backend_equal_the_numpy_backends(backend, config):
    """The same steps on each backend's arrays (plain SGD is a fused kernel on the GPU,
    the numba backend's a compiled loop; momentum and Adam array expressions) give the
    numpy backend's numbers."""
    kind, kwargs = CONFIGS[config]
    start, grads = make_problem(3)
    params = minicnn_params(start)  # on the backend under test
    assert all(p.backend is backend for p in params)
    ours = run_minicnn(getattr(mc.optim, kind)(params, **kwargs), params, grads)
    with mc.use_backend("numpy"):
        reference = minicnn_params(start)
        expected = run_minicnn(getattr(mc.optim, kind)(reference, **kwargs), reference, grads)
    for k, (a, b) in enumerate(zip(ours, expected, strict=True)):
        assert_allclose(a, b, rtol=1e-15, atol=0, err_msg=f"p{k}")


@pytest.mark.parametrize("steps", [1, 5])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_steps_equal_torch(config, steps):
    kind, kwargs = CONFIGS[config]
    start, grads = make_problem(steps)
    params = minicnn_params(start)
    ours = run_minicnn(getattr(mc.optim, kind)(params, **kwargs), params, grads)
    theirs = run_torch(kind, kwargs, start, grads)
    for name, a, b in zip(["p0", "p1", "p2"], ours, theirs, strict=True):
        assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=name)
        assert not np.allclose(a, start[int(name[1])])  # something moved


def test_plain_sgd_is_the_books_update():
    start, grads = make_problem(1)
    params = minicnn_params(start)
    run_minicnn(mc.optim.SGD(params, lr=0.3), params, grads)
    for p, v, g in zip(params, start, grads[0], strict=True):
        assert_allclose(p.numpy(), v - 0.3 * g, rtol=1e-15)


def test_update_is_in_place_without_a_graph_and_keeps_dtype():
    weight = nn.Parameter(np.ones((2, 3), np.float32))
    data = weight.data
    optimizer = mc.optim.Adam([weight], lr=0.1)
    weight.grad = mc.tensor(np.full((2, 3), 0.5, np.float32))
    optimizer.step()
    assert weight.data is data  # the module keeps seeing its own array
    assert weight.dtype == np.float32 and weight.creator is None
    assert_allclose(weight.numpy(), 0.9, rtol=1e-6)  # Adam's first step moves by lr


def test_parameters_without_gradient_are_left_alone():
    start, grads = make_problem(2)
    params = minicnn_params(start)
    optimizer = mc.optim.SGD(params, lr=0.1, momentum=0.9)
    for _ in range(2):
        params[0].grad = mc.tensor(grads[0][0])
        optimizer.step()
    assert_array_equal(params[1].numpy(), start[1])
    assert_array_equal(params[2].numpy(), start[2])
    assert set(optimizer.state_dict()["state"]) == {0}


def test_zero_grad_and_a_changed_learning_rate():
    start, grads = make_problem(1)
    params = minicnn_params(start)
    optimizer = mc.optim.SGD(params, lr=0.1)
    for p, g in zip(params, grads[0], strict=True):
        p.grad = mc.tensor(g)
    optimizer.zero_grad()
    assert all(p.grad is None for p in params)
    optimizer.lr = 0.01  # what a learning-rate schedule does
    params[0].grad = mc.tensor(grads[0][0])
    optimizer.step()
    assert_allclose(params[0].numpy(), start[0] - 0.01 * grads[0][0], rtol=1e-15)


def test_module_parameters_train_a_layer():
    layer = nn.Linear(3, 1).double()
    x = np.random.default_rng(1).standard_normal((16, 3))
    target = x @ np.array([1.0, -2.0, 0.5])
    optimizer = mc.optim.SGD(layer.parameters(), lr=0.1)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = ((layer(x).reshape(-1) - target) ** 2).mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]


@pytest.mark.parametrize("config", ["sgd_momentum", "sgd_all", "adam", "adam_weight_decay"])
def test_state_dict_round_trip_continues_identically(config):
    kind, kwargs = CONFIGS[config]
    start, grads = make_problem(5)
    params = minicnn_params(start)
    first = getattr(mc.optim, kind)(params, **kwargs)
    run_minicnn(first, params, grads[:2])
    saved_values = [p.numpy() for p in params]
    saved = first.state_dict()
    snapshot = {i: {k: np.copy(v) for k, v in s.items()} for i, s in saved["state"].items()}
    expected = run_minicnn(first, params, grads[2:])
    # the saved state is a copy: three more steps of ``first`` left it as it was
    for index, buffers in saved["state"].items():
        for key, value in buffers.items():
            assert_array_equal(value, snapshot[index][key], err_msg=f"{index}.{key}")

    resumed_params = minicnn_params(saved_values)
    resumed = getattr(mc.optim, kind)(resumed_params, lr=123.0)  # hyper-parameters come back too
    resumed.load_state_dict(saved)
    assert resumed.lr == kwargs["lr"]
    got = run_minicnn(resumed, resumed_params, grads[2:])
    for a, b in zip(got, expected, strict=True):
        assert_array_equal(a, b)
    # and the loaded state is the optimizer's own: stepping it did not touch ``saved``
    for index, buffers in saved["state"].items():
        for key, value in buffers.items():
            assert_array_equal(value, snapshot[index][key], err_msg=f"{index}.{key}")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: mc.optim.SGD(p, lr=-0.1), "SGD: lr, momentum and weight_decay must be >= 0"),
        (lambda p: mc.optim.SGD(p, lr=0.1, momentum=-0.5), "must be >= 0, got 0.1, -0.5, 0.0"),
        (lambda p: mc.optim.SGD(p, lr=0.1, weight_decay=-1), "must be >= 0"),
        (
            lambda p: mc.optim.SGD(p, lr=0.1, nesterov=True),
            "SGD: nesterov=True needs a momentum > 0",
        ),
        (lambda p: mc.optim.Adam(p, lr=-1.0), "Adam: lr, eps and weight_decay must be >= 0"),
        (lambda p: mc.optim.Adam(p, eps=-1e-8), "Adam: lr, eps and weight_decay must be >= 0"),
        (
            lambda p: mc.optim.Adam(p, betas=(0.9, 1.0)),
            r"Adam: betas must be two numbers in \[0, 1\)",
        ),
        (lambda p: mc.optim.Adam(p, betas=(0.9,)), r"Adam: betas must be two numbers"),
        (lambda p: mc.optim.SGD([], lr=0.1), "SGD: got an empty parameter list"),
    ],
)
def test_bad_arguments_are_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make([nn.Parameter(np.zeros(2))])


def test_a_module_instead_of_its_parameters_is_a_clear_error():
    with pytest.raises(TypeError, match=r"SGD: parameter 0 is a Linear, not a Tensor \(pass"):
        mc.optim.SGD(nn.Sequential(nn.Linear(2, 2)), lr=0.1)
