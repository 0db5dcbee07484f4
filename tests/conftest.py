"""Shared fixtures: one suite, injected with every backend (Chainer's habit).

``backend`` runs a test once per registered backend (numpy, numba, cupy), skipping the
ones this machine lacks with the registry's own reason ("no CUDA device", "numba is not
installed", ...), and makes that backend the active one for the test, so arrays made
with ``mc.tensor`` land on it. ``torch`` is PyTorch, the reference the ops must equal.

Where no GPU answers, ``cupy`` is the tests' own emulation (tests/emulated_cupy: NumPy
memory standing for the device's, minicnn's CUDA kernels compiled for the CPU), and
the cupy tests run on it, with ``cupy-emulated`` in their ids. On a real GPU the real
CuPy runs and the emulation is never imported. ``MINICNN_EMULATE_CUPY=0`` turns it off.
"""

from __future__ import annotations

import os

import numpy
import pytest

import minicnn as mc
import minicnn.backend


def _emulate_cupy_without_a_gpu() -> bool:
    """Install the emulation as ``cupy`` unless real CuPy sees a device; True if it did."""
    if os.environ.get("MINICNN_EMULATE_CUPY", "1") == "0":
        return False
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            return False
    except Exception:  # not installed, no driver, no device: nothing real to test on
        pass
    import emulated_cupy

    emulated_cupy.install()
    return True


CUPY_EMULATED = _emulate_cupy_without_a_gpu()
BACKEND_NAMES = list(minicnn.backend._REGISTRY)
BACKEND_IDS = [f"{name}-emulated" if name == "cupy" and CUPY_EMULATED else name
               for name in BACKEND_NAMES]  # fmt: skip


def pytest_collection_modifyitems(config, items):
    """Mark every test that runs on the emulated cupy backend ``emulated_gpu`` (``-m
    emulated_gpu`` selects them); the ``backend`` fixture's also say so in their ids."""
    if not CUPY_EMULATED:
        return
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec and "cupy" in [v for v in callspec.params.values() if isinstance(v, str)]:
            item.add_marker(pytest.mark.emulated_gpu)


@pytest.fixture(params=BACKEND_NAMES, ids=BACKEND_IDS)
def backend(request):
    """The active backend for this test, one parametrization per registered name."""
    name = request.param
    reason = minicnn.backend.unavailable_reason(name)
    if reason:
        pytest.skip(f"backend {name!r} unavailable: {reason}")
    if name == "cupy" and CUPY_EMULATED:
        yield from _on_the_emulated_gpu(name)
        return
    with mc.use_backend(name) as active:
        yield active


def _on_the_emulated_gpu(name):
    """The emulated cupy backend for one test, which fails if minicnn called a NumPy
    function on a device array (CuPy would copy to the host, or refuse)."""
    import emulated_cupy

    emulated_cupy.host_functions.clear()
    with mc.use_backend(name) as active:
        yield active
    assert not emulated_cupy.host_functions, (
        f"NumPy functions called on device arrays: {emulated_cupy.host_functions}"
    )


@pytest.fixture
def without_cupy(monkeypatch):
    """The registry as on a machine where ``import cupy`` fails (its cached answers
    about cupy forgotten, and restored afterwards)."""
    from minicnn.engine_room import cupy_

    def no_cupy():
        raise ImportError("No module named 'cupy'", name="cupy")

    monkeypatch.setattr(cupy_, "_import_cupy", no_cupy)
    monkeypatch.setattr(minicnn.backend, "_instances",
                        {k: v for k, v in minicnn.backend._instances.items() if k != "cupy"})  # fmt: skip
    monkeypatch.setattr(minicnn.backend, "_reasons",
                        {k: v for k, v in minicnn.backend._reasons.items() if k != "cupy"})  # fmt: skip


@pytest.fixture(scope="session")
def torch():
    """PyTorch (CPU), the reference implementation; skip when it is not installed."""
    return pytest.importorskip(
        "torch", reason="needs PyTorch as the reference (pip install -e '.[test]')"
    )


@pytest.fixture
def rng():
    """A fresh, seeded NumPy generator per test: every test sees the same numbers."""
    return numpy.random.default_rng(20240611)


@pytest.fixture(autouse=True)
def engine_room_algorithms(monkeypatch):
    """Every test starts with the engine room's algorithms (mc.config.reference off),
    whatever MINICNN_REFERENCE says: the tests that want the switch turn it on."""
    monkeypatch.setattr(mc.config, "reference", False)


@pytest.fixture(params=[1, 3], ids=["1-thread", "3-threads"])
def threads(request, backend, monkeypatch):
    """The test once on one thread and once with the backend's work cut into parts for a
    team of 3 even at the tests' tiny sizes (uneven parts, a part of one image). Only
    the numba backend has a team (engine_room/team.py); the others compute the same either way."""
    team = getattr(backend, "team", None)
    if team is None:
        yield 1
        return
    from minicnn.engine_room import tuning

    monkeypatch.setattr(tuning, "PARALLEL_MIN_ELEMENTS", 0)
    monkeypatch.setattr(tuning, "PARALLEL_MIN_MULTIPLY_ADDS", 0)
    size = team.size
    team.resize(request.param)
    yield request.param
    team.resize(size)


@pytest.fixture(params=[1, 3], ids=["1-thread", "3-threads"])
def numba_team(request, monkeypatch):
    """Every test twice: the loops on one thread, and cut into parts for a team of 3 even
    at these tiny sizes (uneven parts, a part of one plane), so that the parts are
    seen to cover the output exactly. Also the compiled window_sum on one thread
    (NumPy's strided adds are used then). The numba backend's kernel tests
    (tests/kernel_checks.py) ask for it; without Numba they skip."""
    pytest.importorskip("numba", reason="needs Numba (pip install -e '.[numba]')")
    from minicnn.engine_room import tuning

    team = minicnn.backend.get_backend("numba").team
    monkeypatch.setattr(tuning, "STRIDED_MIN_THREADS", 1)
    monkeypatch.setattr(tuning, "PARALLEL_MIN_ELEMENTS", 0)
    size = team.size
    team.resize(request.param)
    yield team
    team.resize(size)
