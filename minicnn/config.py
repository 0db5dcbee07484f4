"""Switches that change how minicnn computes, not what.

``reference``: when True, every layer computes the chapter's algorithm on every
backend, CPU or GPU (conv2d as im2col and a matrix product, its backward as col2im),
instead of the engine room's choice for the layer's shape (taps, dx as a convolution,
Winograd: engine_room/conv.py). The results agree up to rounding; the tests hold them
equal. Set it for a whole run with the environment variable ``MINICNN_REFERENCE=1``::

    >>> mc.config.reference = True
    >>> with mc.config.using_reference():      # just here
    ...     y = net(X)
"""

from __future__ import annotations

import contextlib
import os


def _from_environment() -> bool:
    value = os.environ.get("MINICNN_REFERENCE", "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError(
        f"environment variable MINICNN_REFERENCE must be 1 or 0 (true/false, yes/no, "
        f"on/off), got {os.environ['MINICNN_REFERENCE']!r}"
    )


reference: bool = _from_environment()


@contextlib.contextmanager
def using_reference(on: bool = True):
    """``reference = on`` inside the ``with`` block, restored after it."""
    global reference
    previous, reference = reference, bool(on)
    try:
        yield
    finally:
        reference = previous
