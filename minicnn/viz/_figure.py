"""What every picture shares: matplotlib without a display, and atomic writes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

INSTALL_HINT = "pip install -e '.[train]' (matplotlib)"


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed), or a clear error."""
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError(f"mc.viz needs matplotlib: {INSTALL_HINT}") from error
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def finish(figure, path=None):
    """Lay ``figure`` out, write it to ``path`` if given, and return it."""
    figure.tight_layout()
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
    if hasattr(array, "get"):  # CuPy
        return array.get()
    return numpy.asarray(array)
