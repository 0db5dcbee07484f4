"""The numba backend's compiled kernels beside the numpy backend's reference kernels: what
tests/test_numba_backend.py and the numba fast paths in tests/ops/ share.

Shapes are tiny: the time goes to compiling each kernel once per dtype (or loading it
from Numba's cache), not to running it. Each kernel test runs twice (``numba_threads``,
the ``numba_team`` fixture of tests/conftest.py): the loops on one thread, and shared out
among a team of 3. Without Numba those tests skip.
"""

from __future__ import annotations

import numpy as np
import pytest

from minicnn.backend import get_backend, unavailable_reason

NUMPY = get_backend("numpy")
NUMBA = get_backend("numba") if unavailable_reason("numba") is None else None
RTOL = {np.float32: 1e-5, np.float64: 1e-12}

# (x shape, kernel, stride, padding): id
CONV_CASES = {
    "stride2-pad1": ((2, 3, 7, 7), (3, 3), (2, 2), (1, 1)),
    "non-square": ((2, 2, 6, 9), (2, 4), (1, 3), (1, 2)),
    "one-channel-batch1": ((1, 1, 5, 5), (3, 3), (1, 1), (0, 0)),
    "kernel-is-padded-input": ((2, 2, 3, 4), (5, 6), (1, 1), (1, 1)),
    "kernel-bigger-than-stride-pad": ((1, 2, 8, 8), (5, 5), (3, 2), (2, 1)),
    "windows-of-padding-only": ((1, 2, 1, 3), (1, 1), (2, 2), (1, 1)),
}


def random(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def assert_close(actual, expected, dtype):
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype], atol=0)


def assert_close_to_scale(actual, expected, dtype):
    """Equal to ``RTOL`` relative to the array's largest value: the sums are accumulated in
    another order (float64 in Numba), so an element near zero may differ in its last bits."""
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    scale = np.abs(expected).max()
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype], atol=RTOL[dtype] * scale)


numba_threads = pytest.mark.usefixtures("numba_team")
dtypes = pytest.mark.parametrize("dtype", [np.float32, np.float64])
conv_cases = pytest.mark.parametrize("case", CONV_CASES.values(), ids=CONV_CASES)
