"""Build the chapter's notebooks from its pages, and run them on a real Jupyter kernel.

    python notebooks/build.py                 # every notebook, executed and rewritten
    python notebooks/build.py lenet pooling   # some of them
    python notebooks/build.py --check         # only check that each notebook's cells
                                              # are its page's (what the tests do too)

The source of truth is the page, ``examples/NAME.py``, in jupytext's percent format; the
notebook ``notebooks/SECTION_NAME.ipynb`` is built from it (jupytext), executed from
this folder on the ``python3`` kernel (nbclient, ipykernel), and written with its
outputs: printed values and inline pictures. The progress bars of training are live
widgets while the kernel runs; they are dropped from the written file, where no kernel
would draw them. Everything is seeded, so running it again changes only the timings.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples"

#: The chapter's sections in the book's order: (section, page).
PAGES = [
    ("7.2", "conv_layer"),
    ("7.3", "padding_and_strides"),
    ("7.4", "channels"),
    ("7.5", "pooling"),
    ("7.6", "lenet"),
    ("8.1", "alexnet"),
    ("8.2", "vgg"),
    ("8.3", "nin"),
    ("8.4", "googlenet"),
    ("8.5", "batch_norm"),
    ("8.6", "resnet"),
    ("8.7", "densenet"),
]

#: The longest one cell may run, in seconds (a short training run on 2 cores).
CELL_TIMEOUT = 900
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def notebook_path(page: str) -> Path:
    section = dict((name, number) for number, name in PAGES)[page]
    return HERE / f"{section}_{page}.ipynb"


def page_path(page: str) -> Path:
    return EXAMPLES / f"{page}.py"


def from_page(page: str):
    """The notebook of ``examples/PAGE.py``, not executed: its cells, a Python 3 kernel."""
    import jupytext

    notebook = jupytext.read(page_path(page), fmt="py:percent")
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for number, cell in enumerate(notebook.cells):
        cell.metadata = {}
        cell.id = f"{page}-{number}"  # the same ids every build: a rebuild changes only timings
    return notebook


def cells(notebook) -> list[tuple[str, str]]:
    """What must agree between a page and its notebook: each cell's kind and source."""
    return [(cell.cell_type, cell.source) for cell in notebook.cells]


def differences(page: str) -> str | None:
    """Why the committed notebook no longer matches its page, or None."""
    import nbformat

    path = notebook_path(page)
    if not path.exists():
        return f"{path.name} is missing: run `make notebooks`"
    built, committed = cells(from_page(page)), cells(nbformat.read(path, as_version=4))
    if built == committed:
        return None
    for k, (ours, theirs) in enumerate(zip(built, committed, strict=False)):
        if ours != theirs:
            return f"{path.name} cell {k} differs from {page_path(page).name}: run `make notebooks`"
    return f"{path.name} has {len(committed)} cells, {page_path(page).name} {len(built)}: run `make notebooks`"


def execute(notebook, cwd: Path = HERE, timeout: int = CELL_TIMEOUT):
    """Run every cell in order on a fresh ``python3`` kernel started in ``cwd`` (where
    the training runs write ``runs/``)."""
    from nbclient import NotebookClient

    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", record_timing=False,
        store_widget_state=False, resources={"metadata": {"path": str(cwd)}},
    )  # fmt: skip
    client.execute()
    return notebook


def without_widgets(notebook):
    """Drop the outputs that only a live kernel can draw (tqdm's notebook bar)."""
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if WIDGET_VIEW not in o.get("data", {})]
    notebook.metadata.pop("widgets", None)
    return notebook


def build(page: str) -> float:
    """Build, execute and write one notebook; its run time in seconds."""
    import nbformat

    start = time.perf_counter()
    notebook = without_widgets(execute(from_page(page)))
    seconds = time.perf_counter() - start
    nbformat.write(notebook, notebook_path(page))
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", help="pages to build (default: all)")
    parser.add_argument("--check", action="store_true", help="only check notebooks against pages")
    args = parser.parse_args(argv)
    names = [name for _, name in PAGES]
    for page in args.pages:
        if page not in names:
            parser.error(f"unknown page {page!r}; the pages are {', '.join(names)}")
    pages = args.pages or names
    if args.check:
        problems = [problem for problem in map(differences, pages) if problem]
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    for page in pages:
        print(f"{notebook_path(page).name}: executing ...", flush=True)
        print(f"{notebook_path(page).name}: {build(page):.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
