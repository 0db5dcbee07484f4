"""What every picture shares: matplotlib without a display, inline in Jupyter, and
durable writes (``minicnn/durable.py``)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from ..durable import write_atomically  # noqa: F401 - the pictures' writes are durable too

INSTALL_HINT = "pip install -e '.[train]' (matplotlib)"
DPI = 110


def subplots(*args, figsize=None, **kwargs):
    """A new figure and its axes, as ``pyplot.subplots`` makes them, but outside pyplot:
    no backend is switched, no window opens, and nothing keeps the figure alive once its
    caller lets go of it. In a Jupyter notebook the figure shows inline, as a cell's last
    value or through ``display`` (:func:`show_inline_in_jupyter`)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(f"mc.viz needs matplotlib: {INSTALL_HINT}") from error
    show_inline_in_jupyter(Figure)
    figure = Figure(figsize=figsize, layout="constrained")  # titles and labels never overlap
    return figure, figure.subplots(*args, **kwargs)


def show_inline_in_jupyter(figure_class) -> None:
    """Under a Jupyter kernel, teach IPython to show a matplotlib figure as a PNG.

    pyplot's inline backend registers that formatter when pyplot is imported; mc.viz
    never imports pyplot (it keeps no global figure state), so it registers the same
    formatter itself. Outside IPython this does nothing and imports nothing."""
    if "IPython" not in sys.modules:
        return
    from IPython import get_ipython

    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["image/png"].for_type(figure_class, png_bytes)


def png_bytes(figure) -> bytes:
    """The figure as a PNG file's bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, dpi=DPI, format="png")
    return buffer.getvalue()


def finish(figure, path=None):
    """Write ``figure`` to ``path`` if given, and return it."""
    if path is not None:
        write_atomically(Path(path), lambda file: figure.savefig(file, dpi=DPI,
                                                                 format=_format(path)))  # fmt: skip
    return figure


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
