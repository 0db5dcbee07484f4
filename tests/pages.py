"""Running the book's pages (examples/NAME.py) from the tests, as the script they are."""

from __future__ import annotations

import contextlib
import io
import os
import runpy
import sys
from pathlib import Path
from types import SimpleNamespace

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_page(name: str, *args: str) -> SimpleNamespace:
    """Run ``examples/NAME.py ARGS...`` as a script, quietly, and return the names it
    defined (its functions, classes and networks). The page computes on the tests'
    active backend (as MINICNN_BACKEND would make it), not on the one it would choose."""
    import minicnn as mc

    path = EXAMPLES / f"{name}.py"
    argv, variable = sys.argv, os.environ.get("MINICNN_BACKEND")
    sys.argv = [str(path), *args]
    os.environ["MINICNN_BACKEND"] = mc.current_backend().name
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return SimpleNamespace(**runpy.run_path(str(path), run_name="page"))
    finally:
        sys.argv = argv
        if variable is None:
            del os.environ["MINICNN_BACKEND"]
        else:
            os.environ["MINICNN_BACKEND"] = variable
