"""Shared fixtures: one suite, injected with every backend (Chainer's habit).

``backend`` runs a test once per registered backend (numpy, numba, cupy), skipping the
ones this machine lacks with the registry's own reason ("no CUDA device", "cupy is not
installed", ...), and makes that backend the active one for the test, so arrays made
with ``mc.tensor`` land on it. ``torch`` is PyTorch, the reference the ops must equal.
"""

from __future__ import annotations

import numpy
import pytest

import minicnn as mc
import minicnn.backend

BACKEND_NAMES = list(minicnn.backend._REGISTRY)


@pytest.fixture(params=BACKEND_NAMES)
def backend(request):
    """The active backend for this test, one parametrization per registered name."""
    name = request.param
    reason = minicnn.backend.unavailable_reason(name)
    if reason:
        pytest.skip(f"backend {name!r} unavailable: {reason}")
    with mc.use_backend(name) as active:
        yield active


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
    """The test once on one thread and once with the backend's work shared out among a
    team of 3 even at the tests' tiny sizes (uneven shares, a share of one image). Only
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
