"""The numba backend's buffer pool (engine_room/pool.py): a buffer goes back to work only once
nothing holds it, or any view of it; and training on reused memory gives the same
numbers as training on fresh memory."""

import numpy
import pytest
from numpy.testing import assert_array_equal

import minicnn as mc
from minicnn.engine_room import pool as pool_module
from minicnn.engine_room.pool import BufferPool

MIB = 1 << 20
SHAPE = (256, 1024)  # float32: 1 MiB, the smallest size these tests' pools take


def small_pool(**limit):
    """A pool of buffers from 1 MiB."""
    return BufferPool(min_bytes=MIB, **limit)


@pytest.fixture
def numba_pool(monkeypatch):
    """The numba backend's own pool, taking buffers from 1 MiB, empty at the start of
    the test and emptied after it (no buffer crosses from one test to another)."""
    reason = mc.backend.unavailable_reason("numba")
    if reason:
        pytest.skip(f"backend 'numba' unavailable: {reason}")
    pool = mc.get_backend("numba").pool
    monkeypatch.setattr(pool, "min_bytes", MIB)
    pool.clear()
    yield pool
    pool.clear()


def test_this_interpreter_counts_references_as_the_pool_needs():
    """Else the pool would hand out fresh arrays only (safe, but no reuse)."""
    assert pool_module._COUNTS_HOLDERS


def buffer_id(array):
    """Which buffer an array's memory belongs to (an id: holding the buffer itself
    would keep it from being reused)."""
    return id(array.base if array.base is not None else array)


def test_a_released_buffer_is_reused():
    pool = small_pool()
    first = pool.empty(SHAPE, numpy.float32)
    buffer = buffer_id(first)
    del first
    second = pool.empty(SHAPE, numpy.float32)
    assert buffer_id(second) == buffer
    assert (pool.allocated, pool.reused) == (1, 1)


def test_a_buffer_is_not_reused_while_any_view_of_it_lives():
    pool = small_pool()
    array = pool.empty(SHAPE, numpy.float32)
    view = array.reshape(-1, 8)[1:].T[::3]  # a view of a view of a view
    del array
    other = pool.empty(SHAPE, numpy.float32)
    assert not numpy.shares_memory(other, view)
    assert (pool.allocated, pool.reused) == (2, 0)
    del view, other
    pool.empty(SHAPE, numpy.float32)
    assert pool.reused == 1


def test_the_same_bytes_serve_any_shape_and_dtype():
    pool = small_pool()
    pool.empty(SHAPE, numpy.float32)  # released at once
    array = pool.empty((128, 2, 512), numpy.float64)
    assert array.shape == (128, 2, 512) and array.dtype == numpy.float64
    assert array.flags.c_contiguous and array.flags.writeable
    assert pool.reused == 1


def test_zeros_are_zero_on_reused_memory():
    pool = small_pool()
    dirty = pool.empty(SHAPE, numpy.float32)
    dirty.fill(7.0)
    del dirty
    zeros = pool.zeros(SHAPE, numpy.float32)
    assert pool.reused == 1
    assert_array_equal(zeros, 0.0)


def test_shapes_may_be_numpy_integers():
    pool = small_pool()
    array = pool.empty(numpy.int64(MIB), numpy.uint8)
    assert array.shape == (MIB,) and pool.cached_bytes == MIB


def test_small_arrays_are_left_to_numpy():
    pool = small_pool()
    array = pool.empty((3, 4), numpy.float32)
    assert array.base is None and pool.cached_bytes == 0


def test_the_limit_drops_free_buffers_and_then_stops_pooling():
    pool = small_pool(limit_bytes=4 * MIB)
    held = pool.empty(SHAPE, numpy.float32)  # 1 MiB in use
    pool.empty((2,) + SHAPE, numpy.float32)  # 2 MiB, free again at once
    assert pool.cached_bytes == 3 * MIB
    other = pool.empty((5, 512, 1024), numpy.uint8)  # 2.5 MiB: the free 2 MiB make room
    assert other.base is not None and pool.cached_bytes == MIB + 5 * MIB // 2
    too_big = pool.empty((4,) + SHAPE, numpy.float32)  # nothing free to drop: not pooled
    assert too_big.base is None and pool.cached_bytes == MIB + 5 * MIB // 2
    assert not numpy.shares_memory(held, other)


def test_only_the_array_handed_out_counts_as_the_original():
    pool = small_pool()
    array = pool.empty(SHAPE, numpy.float32)
    assert pool.is_original(array)
    assert not pool.is_original(array.T) and not pool.is_original(array[1:])
    assert not pool.is_original(numpy.empty(SHAPE, numpy.float32))


def test_a_weight_keeps_its_pooled_gradient_uncopied_and_returns_it(numba_pool):
    """Linear's dW comes from the pool; the weight takes that very array as its .grad,
    and once zero_grad lets go of it, the next step's dW reuses its memory."""
    pool = numba_pool
    with mc.use_backend("numba"):
        layer = mc.nn.Linear(1024, 512)  # a 2 MiB weight
        x = mc.tensor(numpy.ones((4, 1024), numpy.float32))
        layer(x).sum().backward()
        grad = layer.weight.grad.data
        assert pool.is_original(grad)
        memory = buffer_id(grad)
        del grad
        layer.weight.grad = None  # what zero_grad does
        layer(x).sum().backward()
        assert buffer_id(layer.weight.grad.data) == memory


def test_a_limit_of_zero_turns_the_pool_off():
    pool = small_pool(limit_bytes=0)
    array = pool.empty(SHAPE, numpy.float32)
    assert array.base is None and pool.cached_bytes == 0


def test_the_numba_backend_pools_arrays_from_128_kib():
    numba_backend = pytest.importorskip("minicnn.engine_room.numba_", reason="needs numba")
    pool = numba_backend.NumbaBackend().pool
    kib_128 = 128 << 10  # where glibc starts handing out pages it gives back on free
    assert pool.min_bytes == kib_128
    assert pool.empty((kib_128 // 8,), numpy.float64).base is not None  # 128 KiB: pooled
    assert pool.empty((kib_128 // 8 - 1,), numpy.float64).base is None


def test_a_free_buffer_serves_smaller_arrays_up_to_a_quarter_of_its_size():
    pool = small_pool()
    big = pool.empty((4 * MIB,), numpy.uint8)
    buffer = buffer_id(big)
    del big
    smaller = pool.empty((MIB + 8,), numpy.uint8)  # fits, and is more than a quarter
    assert buffer_id(smaller) == buffer and smaller.shape == (MIB + 8,)
    assert pool.is_original(smaller)
    del smaller
    tiny = pool.empty((MIB,), numpy.uint8)  # a quarter exactly: still served by it
    assert buffer_id(tiny) == buffer
    del tiny
    pool.empty((4 * MIB + 1,), numpy.uint8)  # larger than any buffer: a new one
    assert pool.allocated == 2


def test_clear_forgets_every_buffer():
    pool = small_pool()
    kept = pool.empty(SHAPE, numpy.float32)
    kept.fill(1.0)
    pool.clear()
    assert pool.cached_bytes == 0
    assert_array_equal(kept, 1.0)  # still a working array


def test_training_on_reused_memory_equals_numpy(numba_pool):
    """Four SGD steps of LeNet at batch 256 in float64, its activations of 5 to 10 MiB
    pooled: the numba backend's numbers equal the NumPy backend's, and from the second
    step on, it ran on reused buffers."""
    backend_name, pool = "numba", numba_pool
    reused_before = pool.reused
    losses, weights = {}, {}
    for name in ("numpy", backend_name):
        with mc.use_backend(name):
            mc.manual_seed(0)
            net = mc.models.get("lenet").double()
            optimizer = mc.optim.SGD(net.parameters(), lr=0.9)
            rng = numpy.random.default_rng(1)
            losses[name] = []
            for _ in range(4):
                x = mc.tensor(rng.standard_normal((256, 1, 28, 28)))
                y = mc.tensor(rng.integers(0, 10, 256))
                optimizer.zero_grad()
                loss = mc.nn.functional.cross_entropy(net(x), y)
                loss.backward()
                optimizer.step()
                losses[name].append(loss.item())
            weights[name] = net.state_dict()
    numpy.testing.assert_allclose(losses[backend_name], losses["numpy"], rtol=1e-12)
    for key, value in weights["numpy"].items():
        numpy.testing.assert_allclose(weights[backend_name][key], value, rtol=1e-10, atol=1e-14)
    assert pool.reused > reused_before
