"""The CuPy backend's pieces that can be checked without a GPU: how it decides it is
unavailable, the reason the GPU tests skip with, and its host/device plumbing against a
stand-in ``cupy`` module. (On a machine with a GPU, every test that takes the
``backend`` fixture also runs on cupy.)"""

import os
import pathlib
import subprocess
import sys
import textwrap
import types

import numpy
import pytest

import minicnn as mc
import minicnn.backend as registry
from minicnn.engine_room import cupy_


@pytest.fixture
def fresh_registry(monkeypatch):
    """Forget what the registry has learned about cupy, and restore it afterwards."""
    monkeypatch.setattr(
        registry, "_instances", {k: v for k, v in registry._instances.items() if k != "cupy"}
    )
    monkeypatch.setattr(
        registry, "_reasons", {k: v for k, v in registry._reasons.items() if k != "cupy"}
    )


class DeviceArray:
    """Stands in for ``cupy.ndarray``: a NumPy array behind a wall. As with CuPy, NumPy
    cannot read it implicitly (``numpy.asarray`` raises); ``get()`` copies it to the host."""

    __cuda_array_interface__ = {}  # how minicnn tells a device array

    def __init__(self, array):
        self.array = numpy.array(array)  # a copy, as a host-to-device copy is

    shape = property(lambda self: self.array.shape)
    dtype = property(lambda self: self.array.dtype)
    ndim = property(lambda self: self.array.ndim)
    size = property(lambda self: self.array.size)

    def get(self):
        return self.array.copy()

    def copy(self):
        return DeviceArray(self.array)

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed")


def fake_asarray(data, dtype=None):
    """``cupy.asarray``: device arrays stay (converted if asked), host data is copied over."""
    if isinstance(data, DeviceArray):
        return data if dtype is None else DeviceArray(data.array.astype(dtype))
    return DeviceArray(numpy.asarray(data, dtype=dtype))


def fake_cupy(device_count):
    """A module that answers like cupy does, its arrays :class:`DeviceArray` s."""

    def get_device_count():
        if isinstance(device_count, Exception):
            raise device_count
        return device_count

    module = types.ModuleType("cupy")
    module.ndarray = DeviceArray
    module.asarray = fake_asarray
    module.asnumpy = DeviceArray.get
    module.random = types.SimpleNamespace(default_rng=numpy.random.default_rng)
    module.cuda = types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=get_device_count)
    )
    return module


def test_without_cupy_the_reason_is_no_cuda_device(monkeypatch, fresh_registry):
    def missing():
        raise ImportError("No module named 'cupy'")

    monkeypatch.setattr(cupy_, "_import_cupy", missing)
    reason = registry.unavailable_reason("cupy")
    assert reason.startswith("no CUDA device") and "pip install -e '.[gpu]'" in reason
    assert "cupy" not in registry.available_backends()
    with pytest.raises(
        RuntimeError,
        match=r"backend 'cupy' is not available: no CUDA device.*Available backends: \['numpy'",
    ):
        registry.get_backend("cupy")


@pytest.mark.parametrize(
    "count", [0, RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")]
)
def test_cupy_without_a_device_is_unavailable(monkeypatch, fresh_registry, count):
    monkeypatch.setattr(cupy_, "_import_cupy", lambda: fake_cupy(count))
    assert registry.unavailable_reason("cupy").startswith("no CUDA device")
    assert "cupy" not in registry.available_backends()


def test_a_cupy_that_fails_to_import_leaves_the_cpu_backends_working(monkeypatch, fresh_registry):
    def broken():
        raise OSError("libnvrtc.so.12: cannot open shared object file")

    monkeypatch.setattr(cupy_, "_import_cupy", broken)
    reason = registry.unavailable_reason("cupy")
    assert reason.startswith("no CUDA device") and "OSError: libnvrtc" in reason
    assert "numpy" in registry.available_backends() and "cupy" not in registry.available_backends()


def test_with_a_device_the_backend_loads_and_plumbs_host_and_device(monkeypatch, fresh_registry):
    monkeypatch.setattr(cupy_, "_import_cupy", lambda: fake_cupy(1))
    assert registry.unavailable_reason("cupy") is None
    backend = registry.get_backend("cupy")
    assert (backend.name, backend.device) == ("cupy", "cuda")
    array = backend.asarray([[1.0, 2.0]], dtype=numpy.float32)
    assert backend.is_array(array) and array.dtype == numpy.float32
    numpy.testing.assert_array_equal(backend.to_numpy(array), [[1.0, 2.0]])
    assert registry.backend_of(array) is backend
    assert registry.get_array_module(array).ndarray is DeviceArray
    mc.manual_seed(7)
    first = backend.generator().random(3)
    mc.manual_seed(7)
    numpy.testing.assert_array_equal(backend.generator().random(3), first)


def test_gpu_tests_skip_with_the_reason_no_cuda_device(tmp_path):
    """Run a backend-parametrized test in a child pytest, the tests' CuPy emulation
    turned off (as where it cannot load), and read the cupy case's skip reason."""
    conftest = pytest.importorskip("conftest")
    if "cupy" in registry.available_backends() and not conftest.CUPY_EMULATED:
        pytest.skip("this machine has a CUDA device: the cupy tests run instead of skipping")
    test_file = tmp_path / "test_probe.py"
    test_file.write_text(
        textwrap.dedent("""
        def test_probe(backend):
            assert backend.name
    """)
    )
    (tmp_path / "conftest.py").write_text(open(conftest.__file__).read())
    root = str(pathlib.Path(mc.__file__).parents[1])  # minicnn importable, installed or not
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path, MINICNN_EMULATE_CUPY="0")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-q", "-p", "no:cacheprovider", str(test_file)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120, env=env,
    )  # fmt: skip
    assert result.returncode == 0 and " failed" not in result.stdout, result.stdout
    skipped = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert any("backend 'cupy' unavailable: no CUDA device" in line for line in skipped), result.stdout
    assert "passed" in result.stdout  # the CPU backends ran (numba too, or its own skip)


def test_the_numpy_kernels_the_gpu_reuses_use_only_xp():
    """CupyBackend inherits the NumPy kernels and runs them with ``xp = cupy``; so they may
    call ``self.xp`` but never ``numpy.<function>`` on data (dtype helpers are fine)."""
    import inspect

    from minicnn.backend import numpy_

    source = inspect.getsource(numpy_.NumpyBackend)
    kernels = source[source.index("    def pad(") :]  # pad and every kernel after it
    calls = {line.strip() for line in kernels.splitlines() if "numpy." in line}
    assert all("numpy.min_scalar_type" in line for line in calls), calls


def test_the_functional_ops_call_no_numpy_function_on_data():
    """The ops run on CuPy arrays too, where ``numpy.exp(x)`` would fail (or copy to the
    host): of NumPy they may use only what works on shapes, dtypes and types."""
    import ast

    import minicnn.functional

    allowed = {"broadcast_shapes", "dtype", "generic", "ndarray"}
    used = set()
    for path in pathlib.Path(minicnn.functional.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and getattr(node.value, "id", None) == "numpy":
                used.add(node.attr)
    assert used and used <= allowed, used - allowed


@pytest.fixture
def device(monkeypatch, fresh_registry):
    """The cupy backend on the stand-in module, numpy the active backend."""
    monkeypatch.setattr(cupy_, "_import_cupy", lambda: fake_cupy(1))
    with mc.use_backend("numpy"):
        yield registry.get_backend("cupy")


def test_tensors_cross_between_host_and_device_only_by_copies(device):
    host = numpy.arange(6.0).reshape(2, 3)
    on_device = mc.tensor(host).to("cupy")
    assert isinstance(on_device.data, DeviceArray) and on_device.device == "cuda"
    assert type(on_device.numpy()) is numpy.ndarray
    numpy.testing.assert_array_equal(on_device.numpy(), host)
    back = mc.tensor(on_device.data)  # numpy is active: the device array is copied to the host
    assert type(back.data) is numpy.ndarray and back.device == "cpu"
    numpy.testing.assert_array_equal(back.numpy(), host)
    with pytest.raises(TypeError, match="live on different devices"):
        mc.nn.functional.add(back, on_device)


def test_module_to_moves_every_parameter_buffer_and_gradient(device):
    net = mc.nn.Sequential(mc.nn.Conv2d(1, 2, 3), mc.nn.BatchNorm2d(2), mc.nn.Linear(2, 3))
    before = net.state_dict()
    net[0].weight.grad = mc.tensor(numpy.ones((2, 1, 3, 3), numpy.float32))
    net.to("cupy")
    values = dict(net._named_state())
    assert values.keys() == before.keys()  # running statistics and num_batches_tracked too
    assert all(isinstance(v.data, DeviceArray) for v in values.values())
    assert isinstance(net[0].weight.grad.data, DeviceArray)
    after = net.state_dict()  # NumPy copies, from the device
    for name, value in before.items():
        assert type(after[name]) is numpy.ndarray and after[name].dtype == value.dtype
        numpy.testing.assert_array_equal(after[name], value)
    net.load_state_dict({k: DeviceArray(v) for k, v in before.items()})  # device arrays as values
    assert all(isinstance(v.data, DeviceArray) for _, v in net._named_state())
    net.to("numpy")
    assert all(type(v.data) is numpy.ndarray for _, v in net._named_state())
    numpy.testing.assert_array_equal(net[0].weight.grad.numpy(), numpy.ones((2, 1, 3, 3)))


def test_optimizer_state_goes_to_the_host_and_back_to_the_parameters_device(device):
    weight = mc.nn.Parameter(DeviceArray(numpy.zeros(3, numpy.float32)))
    optimizer = mc.optim.SGD([weight], lr=0.1, momentum=0.9)
    optimizer.state[0] = {"momentum_buffer": DeviceArray([1.0, 2.0, 3.0])}
    saved = optimizer.state_dict()  # what a checkpoint writes: NumPy arrays
    assert type(saved["state"][0]["momentum_buffer"]) is numpy.ndarray
    optimizer.load_state_dict(saved)
    restored = optimizer.state[0]["momentum_buffer"]
    assert isinstance(restored, DeviceArray)
    numpy.testing.assert_array_equal(restored.get(), [1.0, 2.0, 3.0])


def test_a_range_in_an_index_reaches_the_array_as_a_list():
    """``y_hat[range(n), y]`` (the book's cross-entropy): CuPy refuses a range, not a list."""
    x = mc.tensor(numpy.arange(6.0).reshape(2, 3), requires_grad=True)
    picked = x[range(2), mc.tensor([2, 0])]
    assert isinstance(picked.creator.index[0], list)
    numpy.testing.assert_array_equal(picked.numpy(), [2.0, 3.0])
    picked.sum().backward()
    numpy.testing.assert_array_equal(x.grad.numpy(), [[0, 0, 1], [1, 0, 0]])


# ---- the CUDA window kernels, checked as far as a machine without a GPU can -----------
def _declared(params: str) -> list[str]:
    """Names of a CuPy parameter list: "raw T x, int32 N" -> ["x", "N"]."""
    return [param.split()[-1] for param in params.split(",")]


def test_every_window_kernel_uses_only_names_it_declares():
    """The kernels compile only on a GPU; here each body's identifiers are checked against
    its parameters, its own declarations and the few C words it uses, so that a typo
    fails on every machine and not only in a GPU session."""
    import re

    from minicnn.engine_room import cupy_kernels

    c_words = {"for", "if", "continue", "const", "int", "isnan", "exp", "fabs", "T", "A", "i",
               "idx"}  # fmt: skip
    for name, (inputs, outputs, body) in cupy_kernels.SOURCES.items():
        code = re.sub(r"//[^\n]*", "", body)  # comments are prose
        params = _declared(inputs) + _declared(outputs)
        local = re.findall(r"(?:idx|int|T)\s+(\w+)\s*=", code)
        local += re.findall(r",\s*(\w+)\s*=", code)  # const idx a = .., b = ..
        used = set(re.findall(r"[A-Za-z_]\w*", code))
        unknown = used - set(params) - set(local) - c_words
        assert not unknown, f"{name}: {sorted(unknown)}"
        assert set(_declared(outputs)) <= used, f"{name} never writes an output"


def test_window_args_fill_the_window_params_in_order():
    from minicnn.backend.window import Window2d
    from minicnn.engine_room import cupy_kernels

    win = Window2d.of("max_pool2d", (2, 3, 9, 8), (3, 2), (2, 1), (1, 0))
    names = _declared(cupy_kernels.WINDOW_PARAMS)
    args = dict(zip(names, cupy_kernels.window_args(win), strict=True))
    assert args == {"N": 2, "C": 3, "H": 9, "W": 8, "OH": win.oh, "OW": win.ow,
                    "kh": 3, "kw": 2, "sh": 2, "sw": 1, "ph": 1, "pw": 0}  # fmt: skip


def test_the_cupy_backend_has_a_window_kernel_for_every_sliding_window():
    """Each replaces the NumPy kernel's kh*kw strided slices (which ``cuda_kernels =
    False`` brings back: bench_gpu.py --compare-slices times both)."""
    from minicnn.backend.numpy_ import NumpyBackend

    names = ["im2col", "col2im", "max_pool2d", "max_pool2d_backward",
             "window_sum", "window_sum_backward"]  # fmt: skip
    for name in names:
        assert getattr(cupy_.CupyBackend, name) is not getattr(NumpyBackend, name), name
    assert "tap_sum" in vars(cupy_.CupyBackend)  # the engine room's taps, on the GPU
    for name in ("sigmoid", "sigmoid_backward", "relu_backward", "axpy"):  # fused passes
        assert name in vars(cupy_.CupyBackend) and name in cupy_kernels_sources(), name
    assert cupy_.CupyBackend.cuda_kernels is True


def cupy_kernels_sources():
    from minicnn.engine_room import cupy_kernels

    return cupy_kernels.SOURCES
