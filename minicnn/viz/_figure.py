"""What every picture shares: matplotlib without a display, and atomic writes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

INSTALL_HINT = "pip install -e '.[train]' (matplotlib)"


def subplots(*args, figsize=None, **kwargs):
    """A new figure and its axes, as ``pyplot.subplots`` makes them, but outside pyplot:
    no backend is switched, no window opens, and nothing keeps the figure alive once its
    caller lets go of it (a notebook still shows it)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(f"mc.viz needs matplotlib: {INSTALL_HINT}") from error
    figure = Figure(figsize=figsize, layout="constrained")  # titles and labels never overlap
    return figure, figure.subplots(*args, **kwargs)


def finish(figure, path=None):
    """Write ``figure`` to ``path`` if given, and return it."""
    if path is not None:
        write_atomically(Path(path), lambda file: figure.savefig(file, dpi=110,
                                                                 format=_format(path)))  # fmt: skip
    return figure


def write_atomically(path: Path, write) -> None:
    """``write(file)`` into a temporary file beside ``path``, then rename it over ``path``:
    a reader never sees half a file, and a failure leaves the old one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a picture is an ordinary file
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _format(path) -> str:
    return Path(path).suffix.lstrip(".").lower() or "png"


def host(array):
    """A NumPy copy of an array or Tensor of any backend."""
    import numpy

    from ..tensor import Tensor

    if isinstance(array, Tensor):
        return array.numpy()
    if hasattr(array, "__cuda_array_interface__"):  # CuPy
        return array.get()
    return numpy.asarray(array)
