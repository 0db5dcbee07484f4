"""The autograd core (minicnn/tensor.py): accumulation, graph order and lifetime,
no_grad, detach, broadcasting, dtypes and the Tensor contract."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import minicnn as mc
from minicnn import functional as F


def leaf(array, requires_grad=True):
    return mc.tensor(np.asarray(array, dtype=np.float64), requires_grad=requires_grad)


# ---- a value used more than once accumulates its gradients ----------------------------
def test_x_plus_x_accumulates(backend):
    x = leaf([1.0, -2.0, 3.0])
    (x + x).sum().backward()
    assert_allclose(x.grad.numpy(), [2.0, 2.0, 2.0])


def test_x_times_x_accumulates(backend):
    x = leaf([1.0, -2.0, 3.0])
    (x * x).sum().backward()
    assert_allclose(x.grad.numpy(), [2.0, -4.0, 6.0])


def test_diamond_graph_sums_both_paths(backend):
    """x -> a -> (b, c) -> y: a feeds two branches that meet again."""
    xv = np.array([0.3, -0.7, 1.1])
    x = leaf(xv)
    a = x * 2.0
    y = (a.exp() * a.tanh()).sum()
    y.backward()
    av = 2 * xv
    expected = 2 * (np.exp(av) * np.tanh(av) + np.exp(av) * (1 - np.tanh(av) ** 2))
    assert_allclose(x.grad.numpy(), expected, rtol=1e-12)


def test_residual_and_dense_connections_accumulate(backend):
    """y = x + relu(x) (a residual block) and cat([x, x * 3]) (a dense block)."""
    xv = np.array([[0.5, -1.5], [2.0, -0.25]])
    x = leaf(xv)
    (x + F.relu(x)).sum().backward()
    assert_allclose(x.grad.numpy(), 1 + (xv > 0))
    x.zero_grad()
    F.cat([x, x * 3.0], dim=1).sum().backward()
    assert_allclose(x.grad.numpy(), np.full((2, 2), 4.0))


def test_shared_subgraph_is_walked_once():
    """Each function runs its backward exactly once, however many paths reach it."""
    calls = []

    class Twice(mc.Function):
        def forward(self, x):
            return 2 * x

        def backward(self, gy):
            calls.append(1)
            return 2 * gy

    x = leaf([1.0, 2.0])
    h = Twice()(x)
    y = (h + h * h + h.exp()).sum()
    y.backward()
    assert len(calls) == 1
    hv = 2 * np.array([1.0, 2.0])
    assert_allclose(x.grad.numpy(), 2 * (1 + 2 * hv + np.exp(hv)), rtol=1e-12)


def test_deep_chain_backpropagates_without_recursion_error():
    x = leaf([1.0])
    y = x
    for _ in range(10_000):
        y = y * 1.0001 + 0.0
    y.sum().backward()
    assert_allclose(x.grad.numpy(), [1.0001**10_000], rtol=1e-9)


def test_deep_graph_dropped_without_backward_is_freed():
    x = leaf([1.0])
    y = x
    for _ in range(20_000):
        y = y + 1.0
    del y  # must not overflow the C stack while deallocating the chain
    assert_allclose(x.numpy(), [1.0])


# ---- graph lifetime -------------------------------------------------------------------
def test_second_backward_raises_once_the_graph_is_freed():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="already freed.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward_that_accumulates():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    assert_allclose(x.grad.numpy(), [2.0, 4.0])
    y.backward()
    assert_allclose(x.grad.numpy(), [4.0, 8.0])


def test_backward_frees_saved_arrays():
    x = leaf(np.ones(3))
    h = x * x
    fn = h.creator
    h.sum().backward()
    assert fn.inputs is None
    assert not hasattr(fn, "a")


def test_leaf_grad_accumulates_across_backward_calls_until_zero_grad():
    x = leaf([1.0, 2.0, 3.0])
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    assert_allclose(x.grad.numpy(), [3 + 2, 3 + 4, 3 + 6])
    x.zero_grad()
    assert x.grad is None
    x.sum().backward()
    assert_allclose(x.grad.numpy(), [1.0, 1.0, 1.0])


def test_leaf_grad_is_its_own_writable_array():
    """backward hands out broadcast views and shares one array between a and b in a + b;
    each leaf's .grad must still be its own (an optimizer may update it in place)."""
    a, b = leaf(np.ones(3)), leaf(np.ones(3))
    (a + b).backward(mc.tensor(np.ones(3)))
    a.grad.data += 1.0
    assert_allclose(b.grad.numpy(), np.ones(3))
    x = leaf(np.ones((2, 3)))
    x.sum().backward()
    x.grad.data *= 5.0  # a read-only broadcast view would raise here
    assert_allclose(x.grad.numpy(), np.full((2, 3), 5.0))


def test_backward_on_a_leaf_itself():
    x = leaf([1.0, 2.0])
    upstream = np.array([3.0, 4.0])
    x.backward(mc.tensor(upstream))
    upstream[:] = 0.0
    assert_allclose(x.grad.numpy(), [3.0, 4.0])


def test_non_scalar_backward_needs_grad():
    x = leaf([1.0, 2.0, 3.0])
    y = x * x
    with pytest.raises(RuntimeError, match=r"implicit only for a scalar, shape is \(3,\)"):
        y.backward()
    y.backward(mc.tensor(np.array([1.0, 0.5, -1.0])))
    assert_allclose(x.grad.numpy(), [2.0, 2.0, -6.0])


def test_backward_grad_may_be_a_number_a_list_or_an_array(backend):
    x = mc.tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    (x * x).sum().backward(2.0)
    assert_allclose(x.grad.numpy(), [4.0, 8.0])
    assert x.grad.dtype == np.float32
    x.zero_grad()
    (x * 3).backward([1.0, -1.0])
    assert_allclose(x.grad.numpy(), [3.0, -3.0])
    x.zero_grad()
    (x * 3).backward(np.array([2.0, 0.0], np.float32))
    assert_allclose(x.grad.numpy(), [6.0, 0.0])


def test_backward_grad_of_the_wrong_shape_is_refused():
    x = leaf([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"grad has shape \(2,\) but the tensor has shape \(3,\)"):
        (x * x).backward(mc.tensor(np.ones(2)))


def test_backward_without_a_graph_is_refused():
    x = leaf([1.0, 2.0], requires_grad=False)
    with pytest.raises(RuntimeError, match="does not require grad"):
        (x * 2.0).sum().backward()


def test_only_inputs_that_require_grad_get_one():
    x, c = leaf([1.0, 2.0]), leaf([3.0, 4.0], requires_grad=False)
    (x * c).sum().backward()
    assert_allclose(x.grad.numpy(), [3.0, 4.0])
    assert c.grad is None


# ---- no_grad and detach -----------------------------------------------------------------
def test_no_grad_builds_no_graph_and_restores_the_mode():
    x = leaf([1.0, 2.0])
    assert mc.is_grad_enabled()
    with mc.no_grad():
        assert not mc.is_grad_enabled()
        y = F.relu(x * 2.0).sum()
        with mc.no_grad():
            pass
        assert not mc.is_grad_enabled()
    assert mc.is_grad_enabled()
    assert y.creator is None and not y.requires_grad
    assert_allclose(y.numpy(), 6.0)
    with pytest.raises(KeyError), mc.no_grad():
        raise KeyError("the mode is restored even on an exception")
    assert mc.is_grad_enabled()
    z = (x * 2.0).sum()
    assert z.requires_grad and z.creator is not None


def test_detach_cuts_the_graph_and_shares_the_data():
    x = leaf([1.0, 2.0])
    h = x * x
    d = h.detach()
    assert d.creator is None and not d.requires_grad
    assert_array_equal(d.numpy(), h.numpy())
    (d * x).sum().backward()  # d is a constant: only the direct path reaches x
    assert_allclose(x.grad.numpy(), [1.0, 4.0])


# ---- broadcasting -------------------------------------------------------------------------
BROADCASTS = [
    ((2, 3), (3,)),
    ((2, 3), (1, 3)),
    ((2, 3), (2, 1)),
    ((4, 1, 3), (2, 1)),
    ((2, 3), ()),
    ((1,), (2, 3)),
    ((5, 1, 1), (1, 4, 1)),
    ((2, 1, 4, 1), (3, 1, 5)),
]


def _sum_to_reference(grad, shape):
    """Undo broadcasting with explicit NumPy calls: sum the added leading axes, then the
    axes where ``shape`` has 1."""
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))
    axes = tuple(k for k, n in enumerate(shape) if n == 1)
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize(("a_shape", "b_shape"), BROADCASTS, ids=str)
def test_broadcasting_backward_reduces_to_each_input_shape(backend, rng, op, a_shape, b_shape):
    av = rng.uniform(0.5, 1.5, a_shape)
    bv = rng.uniform(0.5, 1.5, b_shape)
    a, b = leaf(av), leaf(bv)
    y = getattr(F, op)(a, b)
    out_shape = np.broadcast_shapes(a_shape, b_shape)
    assert y.shape == out_shape
    gy = rng.standard_normal(out_shape)
    y.backward(mc.tensor(gy))
    d_a, d_b = {
        "add": (np.ones_like(bv), np.ones_like(av)),
        "sub": (np.ones_like(bv), -np.ones_like(av)),
        "mul": (bv, av),
        "div": (1 / bv, -av / bv**2),
    }[op]
    assert a.grad.shape == a_shape and b.grad.shape == b_shape
    assert_allclose(a.grad.numpy(), _sum_to_reference(gy * d_a, a_shape), rtol=1e-12)
    assert_allclose(b.grad.numpy(), _sum_to_reference(gy * d_b, b_shape), rtol=1e-12)


def test_numbers_and_arrays_mix_with_tensors():
    x = leaf([1.0, 2.0])
    y = 3.0 - x * 2 + np.array([1.0, 1.0]) / (x + 1)
    y.sum().backward()
    assert_allclose(y.numpy(), [3 - 2 + 0.5, 3 - 4 + 1 / 3])
    assert_allclose(x.grad.numpy(), [-2 - 1 / 4, -2 - 1 / 9])


# ---- dtypes -------------------------------------------------------------------------------
def _float32_cases():
    """(name, function of tensors, input shapes) for every op, run in float32."""
    target = np.array([1, 0])
    return [
        ("add", lambda a, b: a + b, [(2, 3), (3,)]),
        ("sub", lambda a, b: a - 1.5 - b, [(2, 3), (3,)]),
        ("mul", lambda a, b: a * b * 2, [(2, 3), (2, 1)]),
        ("div", lambda a, b: a / (b * b + 1) / 3, [(2, 3), (3,)]),
        ("neg_pow", lambda a: -(a**2) + a ** np.float64(3.0), [(2, 3)]),
        ("exp_log", lambda a: (a * a + 1).log() + a.exp(), [(2, 3)]),
        ("activations", lambda a: F.relu(a) + F.sigmoid(a) + F.tanh(a), [(2, 3)]),
        ("sum_mean", lambda a: a.sum(axis=1) + a.mean(axis=1), [(2, 3)]),
        ("matmul", lambda a, b: a @ b, [(2, 3, 4), (4, 2)]),
        ("linear", F.linear, [(2, 3), (4, 3), (4,)]),
        (
            "conv2d",
            lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
            [(2, 2, 5, 5), (3, 2, 3, 3), (3,)],
        ),
        ("max_pool2d", lambda x: F.max_pool2d(x, 3, 2, 1), [(2, 2, 5, 5)]),
        ("avg_pool2d", lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), [(2, 2, 5, 5)]),
        ("adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, 2), [(2, 2, 5, 5)]),
        ("global_avg_pool", lambda x: F.adaptive_avg_pool2d(x, (1, 1)), [(2, 2, 5, 5)]),
        (
            "batch_norm_train",
            lambda x, w, b: F.batch_norm(x, None, None, w, b, True),
            [(3, 2, 2, 2), (2,), (2,)],
        ),
        (
            "batch_norm_eval",
            lambda x: F.batch_norm(
                x, mc.tensor(np.zeros(2, np.float32)), mc.tensor(np.ones(2, np.float32))
            ),
            [(3, 2)],
        ),
        ("dropout", lambda x: F.dropout(x, 0.5), [(4, 5)]),
        ("log_softmax", lambda x: F.log_softmax(x, 1), [(2, 3)]),
        ("softmax", lambda x: F.softmax(x, 0), [(2, 3)]),
        ("cross_entropy", lambda x: F.cross_entropy(x, mc.tensor(target)), [(2, 3)]),
        (
            "cross_entropy_none",
            lambda x: F.cross_entropy(x, mc.tensor(target), reduction="none"),
            [(2, 3)],
        ),
        ("shape_ops", lambda x: F.flatten(x, 1).reshape(3, 4).T[1:, ::2], [(2, 2, 3)]),
        ("getitem_cat", lambda a, b: F.cat([a[:, 0], b, a[0]], dim=0), [(2, 3), (4,)]),
        ("transpose", lambda a: a.transpose(2, 0, 1), [(2, 3, 4)]),
    ]


@pytest.mark.parametrize(
    ("name", "fn", "shapes"), _float32_cases(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_float32_stays_float32_forward_and_backward(backend, rng, name, fn, shapes):
    inputs = [
        mc.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True) for s in shapes
    ]
    y = fn(*inputs)
    assert y.dtype == np.float32, f"{name}: forward gave {y.dtype}"
    y.backward(mc.tensor(rng.standard_normal(y.shape).astype(np.float32)))
    for k, x in enumerate(inputs):
        assert x.grad is not None, f"{name}: input {k} got no gradient"
        assert x.grad.dtype == np.float32, f"{name}: gradient of input {k} is {x.grad.dtype}"
        assert x.grad.shape == x.shape
        assert np.isfinite(x.grad.numpy()).all()


def test_batch_norm_running_statistics_stay_float32(backend, rng):
    mean, var = mc.tensor(np.zeros(2, np.float32)), mc.tensor(np.ones(2, np.float32))
    F.batch_norm(
        mc.tensor(rng.standard_normal((4, 2)).astype(np.float32)), mean, var, training=True
    )
    assert mean.dtype == np.float32 and var.dtype == np.float32


def test_astype_changes_dtype_and_the_gradient_changes_back():
    x = mc.tensor(np.array([1.5, -2.0], np.float32), requires_grad=True)
    y = x.double()
    assert y.dtype == np.float64
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    assert_allclose(x.grad.numpy(), [3.0, -4.0])
    assert x.double().float().dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.uint8, np.bool_])
def test_tensor_keeps_the_arrays_dtype(backend, dtype):
    array = np.arange(6).reshape(2, 3).astype(dtype)
    t = mc.tensor(array)
    assert t.dtype == dtype
    assert t.shape == (2, 3)
    assert_array_equal(t.numpy(), array)


def test_tensor_from_python_values_and_with_a_dtype(backend):
    assert mc.tensor([1.0, 2.0]).dtype == np.float64
    assert mc.tensor([1, 2]).dtype == np.int64
    assert mc.tensor(2.5).shape == ()
    assert mc.tensor([1, 2], dtype=np.float32).dtype == np.float32
    assert mc.tensor(np.ones(2), dtype="float32").dtype == np.float32


def test_tensor_copies_its_data_and_as_tensor_shares_it():
    array = np.zeros(3)
    t = mc.tensor(array)
    array[0] = 7.0
    assert_array_equal(t.numpy(), [0.0, 0.0, 0.0])
    u = mc.tensor(t)
    u.data[1] = 5.0
    assert_array_equal(t.numpy(), [0.0, 0.0, 0.0])
    s = mc.as_tensor(array)
    array[2] = 9.0
    assert_array_equal(s.numpy(), [7.0, 0.0, 9.0])
    assert mc.as_tensor(t) is t


def test_numpy_returns_a_copy(backend):
    t = mc.tensor(np.arange(4.0))
    out = t.numpy()
    assert isinstance(out, np.ndarray)
    out[:] = -1.0
    assert_array_equal(t.numpy(), [0.0, 1.0, 2.0, 3.0])


def test_tensor_basics(backend):
    t = mc.tensor(np.arange(6.0).reshape(2, 3))
    assert (t.shape, t.ndim, t.size, len(t)) == ((2, 3), 2, 6, 2)
    assert t.device == backend.device
    assert t.sum().item() == 15.0
    with pytest.raises(ValueError, match=r"item\(\): only a one-element tensor.*\(2, 3\)"):
        t.item()
    assert_array_equal(t.argmax(axis=1).numpy(), [2, 2])
    assert "tensor(" in repr(t) and "float64" in repr(t)
    assert_array_equal(t.reshape(6).numpy(), np.arange(6.0))
    assert_array_equal(t.reshape(3, 2).numpy(), np.arange(6.0).reshape(3, 2))
    assert_array_equal(t.T.numpy(), np.arange(6.0).reshape(2, 3).T)


def test_tensor_rejects_non_arrays():
    with pytest.raises(TypeError, match="not an array of any minicnn backend: list"):
        mc.Tensor([1.0, 2.0])
