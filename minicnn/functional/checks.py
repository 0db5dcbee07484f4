"""Argument checks the chapter's loops share (conv.py, pool.py)."""

from __future__ import annotations

from ..tensor import Tensor


def as_array(x):
    """The array inside a Tensor, or ``x`` itself."""
    return x.data if isinstance(x, Tensor) else x


def require_ndim(op: str, name: str, array, ndim: int, layout: str) -> None:
    """A clear error, naming the operation and the argument, when ``array`` is not ``ndim``-D."""
    if array.ndim != ndim:
        raise ValueError(
            f"{op}: expected {name} with {ndim} dimensions {layout}, got shape {tuple(array.shape)}"
        )
