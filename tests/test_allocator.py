"""The numba backend's buffer pool (engine_room/allocator.py): a block goes back to work only
once nothing holds it, or any view of it; blocks are split from segments, best fit, and
merged back; and training on reused memory gives the same numbers as on fresh memory."""

import mmap

import numpy
import pytest
from numpy.testing import assert_array_equal

import minicnn as mc
from minicnn.engine_room import allocator as pool_module
from minicnn.engine_room.allocator import BufferPool

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


def memory_at(array) -> int:
    """The address of an array's first byte."""
    return array.__array_interface__["data"][0]


def test_a_released_block_is_reused():
    pool = small_pool()
    first = pool.empty(SHAPE, numpy.float32)
    address = memory_at(first)
    del first
    second = pool.empty(SHAPE, numpy.float32)
    assert memory_at(second) == address
    assert (pool.segments_allocated, pool.served) == (1, 2)


def test_a_block_is_not_reused_while_any_view_of_it_lives():
    pool = small_pool()
    array = pool.empty(SHAPE, numpy.float32)
    address = memory_at(array)
    view = array.reshape(-1, 8)[1:].T[::3]  # a view of a view of a view
    del array
    other = pool.empty(SHAPE, numpy.float32)
    assert not numpy.shares_memory(other, view)
    del view, other
    assert memory_at(pool.empty(SHAPE, numpy.float32)) == address  # the first fit again


def test_the_same_bytes_serve_any_shape_and_dtype():
    pool = small_pool()
    address = memory_at(pool.empty(SHAPE, numpy.float32))  # released at once
    array = pool.empty((128, 2, 512), numpy.float64)
    assert array.shape == (128, 2, 512) and array.dtype == numpy.float64
    assert array.flags.c_contiguous and array.flags.writeable
    assert memory_at(array) == address


def test_zeros_are_zero_on_reused_memory():
    pool = small_pool()
    dirty = pool.empty(SHAPE, numpy.float32)
    dirty.fill(7.0)
    address = memory_at(dirty)
    del dirty
    zeros = pool.zeros(SHAPE, numpy.float32)
    assert memory_at(zeros) == address
    assert_array_equal(zeros, 0.0)


def test_shapes_may_be_numpy_integers():
    pool = small_pool()
    array = pool.empty(numpy.int64(MIB), numpy.uint8)
    assert array.shape == (MIB,) and pool.in_use_bytes == MIB


def test_small_arrays_are_left_to_numpy():
    pool = small_pool()
    array = pool.empty((3, 4), numpy.float32)
    assert array.base is None and pool.cached_bytes == 0


def test_segments_are_sized_as_pytorchs_caching_allocator_sizes_them():
    assert pool_module.segment_bytes(128 << 10) == 2 * MIB  # under 1 MiB: 2 MiB segments
    assert pool_module.segment_bytes(MIB) == 20 * MIB  # under 10 MiB: 20 MiB segments
    assert pool_module.segment_bytes(10 * MIB) == 10 * MIB  # larger: its own, whole 2 MiB
    assert pool_module.segment_bytes(10 * MIB + 1) == 12 * MIB


def test_blocks_are_split_from_a_segment_and_merged_back():
    """Arrays share a segment side by side; freed neighbours merge into one block that
    serves a request as large as both."""
    pool = small_pool()
    first, second, third = (pool.empty((MIB,), numpy.uint8) for _ in range(3))
    assert pool.segments_allocated == 1 and pool.cached_bytes == 20 * MIB
    assert memory_at(second) == memory_at(first) + MIB
    assert memory_at(third) == memory_at(second) + MIB
    address = memory_at(first)
    del first, second  # two neighbours free: one block of 2 MiB
    both = pool.empty((2 * MIB,), numpy.uint8)
    assert memory_at(both) == address and pool.segments_allocated == 1
    assert not numpy.shares_memory(both, third)


def test_a_freed_block_merges_with_free_neighbours_on_either_side():
    """Without the merge to the right, freed blocks stay apart: segments multiply and
    memory is never given back, while the numbers stay right."""
    page = mmap.PAGESIZE
    segment = pool_module._Segment(4 * page)
    blocks = [segment.take(*segment.free[0], page) for _ in range(3)]  # noqa: F841 - held
    assert segment.free == [(3 * page, 4 * page)]
    segment.give_back(page, 2 * page)
    assert segment.free == [(page, 2 * page), (3 * page, 4 * page)]
    segment.give_back(2 * page, 3 * page)  # joins the free range on its left and on its right
    assert segment.free == [(page, 4 * page)]
    segment.give_back(0, page)  # joins the one on its right
    assert segment.unused


def test_a_request_takes_the_smallest_free_block_that_fits():
    pool = small_pool()
    arrays = [pool.empty((size * MIB,), numpy.uint8) for size in (3, 1, 2, 1)]
    small_hole, large_hole = memory_at(arrays[2]), memory_at(arrays[0])
    del arrays[2], arrays[0]  # free: 3 MiB at the start, 2 MiB between the others
    assert memory_at(pool.empty((2 * MIB,), numpy.uint8)) == small_hole
    assert memory_at(pool.empty((3 * MIB,), numpy.uint8)) == large_hole
    assert pool.segments_allocated == 1


def test_segments_show_the_memory_blocks_lie_in():
    pool = small_pool()
    arrays = [pool.empty((size * MIB,), numpy.uint8) for size in (1, 24)]
    segments = [numpy.frombuffer(memory, numpy.uint8) for memory in pool.segments]
    assert [segment.nbytes for segment in segments] == [20 * MIB, 24 * MIB]
    for array, segment in zip(arrays, segments, strict=True):
        assert memory_at(array) == memory_at(segment) and numpy.shares_memory(array, segment)


def test_blocks_are_whole_pages():
    pool = small_pool()
    first = pool.empty((MIB + 1,), numpy.uint8)
    second = pool.empty((MIB,), numpy.uint8)
    assert memory_at(second) - memory_at(first) == MIB + pool_module.BLOCK_ALIGNMENT
    assert memory_at(first) % pool_module.BLOCK_ALIGNMENT == 0


def test_the_limit_gives_back_unused_segments_and_then_stops_pooling():
    pool = small_pool(limit_bytes=50 * MIB)
    held = pool.empty(SHAPE, numpy.float32)  # 1 MiB in use: a 20 MiB segment
    pool.empty((24 * MIB,), numpy.uint8)  # a segment of its own, free again at once
    assert pool.cached_bytes == 44 * MIB
    other = pool.empty((26 * MIB,), numpy.uint8)  # the unused 24 MiB make room
    assert other.base is not None and pool.cached_bytes == 46 * MIB
    too_big = pool.empty((30 * MIB,), numpy.uint8)  # nothing unused to give back: not pooled
    assert too_big.base is None and pool.cached_bytes == 46 * MIB
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
        address = memory_at(grad)
        del grad
        layer.weight.grad = None  # what zero_grad does
        layer(x).sum().backward()
        assert memory_at(layer.weight.grad.data) == address


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


def test_clear_forgets_all_memory():
    pool = small_pool()
    kept = pool.empty(SHAPE, numpy.float32)
    kept.fill(1.0)
    pool.clear()
    assert pool.cached_bytes == 0
    assert_array_equal(kept, 1.0)  # still a working array


def test_training_on_reused_memory_equals_numpy(numba_pool):
    """Four SGD steps of LeNet at batch 256 in float64, its activations of 5 to 10 MiB
    pooled: the numba backend's numbers equal the NumPy backend's, and the steps after
    the first two ran in the memory those took: no new segment."""
    backend_name, pool = "numba", numba_pool
    segments = []
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
                segments.append(pool.segments_allocated)
            weights[name] = net.state_dict()
    numpy.testing.assert_allclose(losses[backend_name], losses["numpy"], rtol=1e-12)
    for key, value in weights["numpy"].items():
        numpy.testing.assert_allclose(weights[backend_name][key], value, rtol=1e-10, atol=1e-14)
    numba_segments = segments[4:]  # after each of the numba backend's steps
    assert numba_segments[0] > 0 and numba_segments[1] == numba_segments[3]
