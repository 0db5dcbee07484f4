"""Running the book's pages (examples/NAME.py) from the tests, as the script they are."""

from __future__ import annotations

import contextlib
import io
import runpy
import sys
from pathlib import Path
from types import SimpleNamespace

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_page(name: str, *args: str) -> SimpleNamespace:
    """Run ``examples/NAME.py ARGS...`` as a script, quietly, and return the names it
    defined (its functions, classes and networks)."""
    path = EXAMPLES / f"{name}.py"
    argv = sys.argv
    sys.argv = [str(path), *args]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return SimpleNamespace(**runpy.run_path(str(path), run_name="page"))
    finally:
        sys.argv = argv
