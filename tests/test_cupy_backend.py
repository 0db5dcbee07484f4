"""The CuPy backend's pieces that can be checked without a GPU: how it decides it is
unavailable, the reason the GPU tests skip with, and its host/device plumbing against a
stand-in ``cupy`` module. (On a machine with a GPU, every test that takes the
``backend`` fixture also runs on cupy.)"""

import subprocess
import sys
import textwrap
import types

import numpy
import pytest

import minicnn as mc
import minicnn.backend as registry
from minicnn.backend import cupy_


@pytest.fixture
def fresh_registry(monkeypatch):
    """Forget what the registry has learned about cupy, and restore it afterwards."""
    monkeypatch.setattr(
        registry, "_instances", {k: v for k, v in registry._instances.items() if k != "cupy"}
    )
    monkeypatch.setattr(
        registry, "_reasons", {k: v for k, v in registry._reasons.items() if k != "cupy"}
    )


def fake_cupy(device_count):
    """A module that answers like cupy does, computing with NumPy on the host."""

    def get_device_count():
        if isinstance(device_count, Exception):
            raise device_count
        return device_count

    module = types.ModuleType("cupy")
    module.ndarray = numpy.ndarray
    module.asarray = numpy.asarray
    module.asnumpy = numpy.asarray
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


def test_with_a_device_the_backend_loads_and_plumbs_host_and_device(monkeypatch, fresh_registry):
    monkeypatch.setattr(cupy_, "_import_cupy", lambda: fake_cupy(1))
    assert registry.unavailable_reason("cupy") is None
    backend = registry.get_backend("cupy")
    assert (backend.name, backend.device) == ("cupy", "cuda")
    array = backend.asarray([[1.0, 2.0]], dtype=numpy.float32)
    assert backend.is_array(array) and array.dtype == numpy.float32
    numpy.testing.assert_array_equal(backend.to_numpy(array), [[1.0, 2.0]])
    mc.manual_seed(7)
    first = backend.generator().random(3)
    mc.manual_seed(7)
    numpy.testing.assert_array_equal(backend.generator().random(3), first)


def test_gpu_tests_skip_with_the_reason_no_cuda_device(tmp_path):
    """Run a backend-parametrized test in a child pytest and read its skip reason."""
    if "cupy" in registry.available_backends():
        pytest.skip("this machine has a CUDA device: the cupy tests run instead of skipping")
    test_file = tmp_path / "test_probe.py"
    test_file.write_text(
        textwrap.dedent("""
        def test_probe(backend):
            assert backend.name
    """)
    )
    conftest = pytest.importorskip("conftest")
    (tmp_path / "conftest.py").write_text(open(conftest.__file__).read())
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-q", "-p", "no:cacheprovider", str(test_file)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert "1 skipped" in result.stdout, result.stdout
    assert "backend 'cupy' unavailable: no CUDA device" in result.stdout


def test_the_numpy_kernels_the_gpu_reuses_use_only_xp():
    """CupyBackend inherits the NumPy kernels and runs them with ``xp = cupy``; so they may
    call ``self.xp`` but never ``numpy.<function>`` on data (dtype helpers are fine)."""
    import inspect

    from minicnn.backend import numpy_

    source = inspect.getsource(numpy_.NumpyBackend)
    kernels = source[source.index("# ---- helpers") :]
    calls = {line.strip() for line in kernels.splitlines() if "numpy." in line}
    assert all("numpy.min_scalar_type" in line for line in calls), calls
