"""The backend registry: names, availability, the active backend and how to choose it."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import conftest
import numpy as np
import pytest
from numpy.testing import assert_array_equal

import minicnn as mc
import minicnn.backend as B

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_numpy_is_always_available():
    available = mc.available_backends()
    assert "numpy" in available
    assert set(available) <= set(B._REGISTRY)
    assert available == [name for name in B._REGISTRY if name in available]  # registry order
    assert B.unavailable_reason("numpy") is None


@pytest.mark.parametrize("name", list(B._REGISTRY))
def test_every_backend_is_available_or_says_why(name):
    reason = B.unavailable_reason(name)
    if name in mc.available_backends():
        assert reason is None
        backend = mc.get_backend(name)
        assert backend.name == name
        assert backend.device in ("cpu", "cuda") or backend.device.startswith("cuda")
        assert backend.xp.__name__ in ("numpy", "cupy")
        assert mc.get_backend(name) is backend  # one instance per name
    else:
        assert isinstance(reason, str) and reason


def test_unknown_backend_reason():
    assert B.unavailable_reason("nope") == "unknown backend 'nope'"


def test_get_backend_of_an_unknown_name():
    with pytest.raises(
        ValueError, match=r"unknown backend 'nope'; backends are \['numpy'.*available here: \["
    ):
        mc.get_backend("nope")


def test_an_unavailable_backend_is_a_clear_error_and_changes_nothing(without_cupy):
    name = "cupy"
    before = mc.current_backend()
    reason = B.unavailable_reason(name)
    expected = f"backend {name!r} is not available: {reason}. Available backends: {mc.available_backends()}"
    with pytest.raises(RuntimeError, match=re.escape(expected)):
        mc.get_backend(name)
    with pytest.raises(RuntimeError, match=re.escape(expected)):
        mc.use_backend(name)
    assert mc.current_backend() is before


def test_use_backend_as_a_context_manager_restores_the_previous_one(backend):
    """Inside ``backend`` (the fixture's own use_backend), switch to each backend and back."""
    assert mc.current_backend() is backend
    for name in mc.available_backends():
        with mc.use_backend(name) as inner:
            assert inner is mc.get_backend(name)
            assert mc.current_backend() is inner
            with mc.use_backend("numpy"):
                assert mc.current_backend().name == "numpy"
            assert mc.current_backend() is inner
        assert mc.current_backend() is backend
    with pytest.raises(KeyError), mc.use_backend("numpy"):
        raise KeyError("restored even on an exception")
    assert mc.current_backend() is backend


def test_use_backend_without_with_switches_for_good():
    before = mc.current_backend()
    try:
        mc.use_backend("numpy")
        assert mc.current_backend().name == "numpy"
    finally:
        mc.use_backend(before.name)
    assert mc.current_backend() is before


def test_tensors_land_on_the_active_backend(backend):
    x = mc.tensor(np.arange(3.0))
    assert x.backend is backend
    assert isinstance(x.data, backend.xp.ndarray)
    assert x.device == backend.device


def test_the_array_decides_the_module():
    a = np.ones(2)
    assert B.get_array_module(a) is np
    assert B.backend_of(a).device == "cpu"
    with pytest.raises(TypeError, match="not an array of any minicnn backend: list"):
        B.backend_of([1.0])


def test_cpu_backends_share_numpy_arrays():
    """numpy and numba differ only in kernels: a tensor made under one computes under the other."""
    cpu = [n for n in mc.available_backends() if mc.get_backend(n).device == "cpu"]
    with mc.use_backend(cpu[0]):
        x = mc.tensor(np.arange(16.0).reshape(1, 1, 4, 4), requires_grad=True)
    results = []
    for name in cpu:
        with mc.use_backend(name):
            assert x.backend.name == name
            x.zero_grad()
            y = mc.functional.max_pool2d(x, 2)
            y.sum().backward()
            results.append((y.numpy(), x.grad.numpy()))
    for y, grad in results:
        assert_array_equal(y, results[0][0])
        assert_array_equal(grad, results[0][1])


def test_tensor_to_moves_between_backends():
    x = mc.tensor(np.arange(3.0), requires_grad=True)
    for name in mc.available_backends():
        moved = x.to(name)
        assert moved.creator is None and moved.requires_grad
        assert_array_equal(moved.numpy(), [0.0, 1.0, 2.0])
        assert isinstance(moved.data, mc.get_backend(name).xp.ndarray)


def test_manual_seed_makes_draws_repeatable(backend):
    mc.manual_seed(11)
    first = backend.generator().random(5)
    mc.manual_seed(11)
    second = backend.generator().random(5)
    assert_array_equal(backend.to_numpy(first), backend.to_numpy(second))
    assert B.current_seed() == 11


# ---- MINICNN_BACKEND, read once by a fresh interpreter ------------------------------------------
def _run_with_env(value: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MINICNN_BACKEND"}
    if value is not None:
        env["MINICNN_BACKEND"] = value
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    code = "import minicnn as mc; print(mc.current_backend().name); print(mc.tensor([1.0]).backend.name)"
    if conftest.CUPY_EMULATED:  # the child computes on the tests' emulation too
        tests = str(pathlib.Path(__file__).parent)
        code = f"import sys; sys.path.insert(0, {tests!r}); import emulated_cupy; emulated_cupy.install(); {code}"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("name", list(B._REGISTRY))
def test_environment_variable_selects_the_backend(name):
    if name not in mc.available_backends():
        pytest.skip(f"backend {name!r} unavailable: {B.unavailable_reason(name)}")
    result = _run_with_env(name)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [name, name]


def test_default_backend_without_the_environment_variable_is_the_fastest_cpu_one():
    result = _run_with_env(None)
    assert result.returncode == 0, result.stderr
    fastest = "numba" if "numba" in mc.available_backends() else "numpy"
    assert result.stdout.split() == [fastest, fastest]


def test_environment_variable_with_an_unknown_name_fails_clearly():
    result = _run_with_env("nope")
    assert result.returncode != 0
    assert "ValueError: unknown backend 'nope' in environment variable MINICNN_BACKEND" in result.stderr
    assert "available here: ['numpy'" in result.stderr
