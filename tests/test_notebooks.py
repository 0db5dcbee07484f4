"""The chapter as notebooks (notebooks/): each committed notebook holds its page's cells
(examples/NAME.py, the one source) with their outputs and pictures, and each runs top
to bottom on a real Jupyter kernel (ipykernel, driven by nbclient), printing the book's
values and drawing real PNG pictures.

Running them is the slow tier. The budget: each notebook within NOTEBOOK_BUDGET seconds
on 2 cores (the longest, LeNet's full training and VGG's short run, take about two
minutes; see notebooks/README.md for each one's time)."""

from __future__ import annotations

import importlib.util
import re
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

jupytext = pytest.importorskip("jupytext", reason="needs jupytext: pip install -e '.[notebooks]'")
nbformat = pytest.importorskip("nbformat", reason="needs nbformat: pip install -e '.[notebooks]'")


def load_build():
    spec = importlib.util.spec_from_file_location("notebooks_build", ROOT / "notebooks" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = load_build()
PAGES = [name for _, name in build.PAGES]
NETWORKS = ["lenet", "alexnet", "vgg", "nin", "googlenet", "batch_norm", "resnet", "densenet"]
NOTEBOOK_BUDGET = 600  # seconds, each notebook, 2 cores

#: What each notebook must print: the book's values (REFERENCE.md section 1), with
#: whitespace squeezed to one space.
BOOK_VALUES = {
    "conv_layer": [
        "[[19. 25.] [37. 43.]]",  # corr2d(X, K)
        "[ 0. 1. 0. 0. 0. -1. 0.]]",  # the edges, last row
        "the transposed image has no vertical edges: [[0. 0. 0. 0. 0.]",
    ],
    "padding_and_strides": [
        "kernel 3, padding 1: output (8, 8)",
        "kernel (5, 3), padding (2, 1): output (8, 8)",
        "kernel 3, padding 1, stride 2: output (4, 4)",
        "kernel (3, 5), padding (0, 1), stride (3, 4): output (2, 2)",
    ],
    "channels": [
        "two input channels: [[ 56. 72.] [104. 120.]]",
        "[[[ 56. 72.] [104. 120.]] [[ 76. 100.] [148. 172.]] [[ 96. 128.] [192. 224.]]]",
    ],
    "pooling": [
        "max pooling 2x2: [[4. 5.] [7. 8.]]",
        "average pooling 2x2: [[2. 3.] [5. 6.]]",
        "MaxPool2d(3): [[[[10.]]]]",
        "MaxPool2d(3, padding=1, stride=2): [[[[ 5. 7.] [13. 15.]]]]",
        "MaxPool2d((2, 3), stride=(2, 3), padding=(0, 1)): [[[[ 5. 7.] [13. 15.]]]]",
        "[[[[ 5. 7.] [13. 15.]] [[ 6. 8.] [14. 16.]]]]",
    ],
    "lenet": [
        "Conv2d output shape: (1, 6, 28, 28)",
        "AvgPool2d output shape: (1, 16, 5, 5)",
        "Flatten output shape: (1, 400)",
    ],
    "resnet": ["Sequential output shape: (1, 512, 3, 3)"],
}
#: How many pictures each notebook draws (page.show calls, the curves included).
PICTURES = {"conv_layer": 1, "padding_and_strides": 1, "channels": 1, "pooling": 1,
            "lenet": 4, "alexnet": 2, "vgg": 2, "nin": 2, "googlenet": 2,
            "batch_norm": 2, "resnet": 2, "densenet": 2}  # fmt: skip


def printed(notebook) -> str:
    """Everything the notebook printed, whitespace squeezed."""
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", "") or output.get("data", {}).get("text/plain", ""))
    return " ".join(" ".join(texts).split())


def pictures(notebook) -> list[bytes]:
    import base64

    return [
        base64.b64decode(output["data"]["image/png"])
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]


def errors(notebook) -> list[str]:
    return [
        f"{output['ename']}: {output['evalue']}"
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]


def assert_shows_the_book(page: str, notebook) -> str:
    """No error, the book's values among the outputs, and the page's count of real PNG
    pictures; returns what the notebook printed."""
    assert errors(notebook) == []
    text = printed(notebook)
    for value in BOOK_VALUES.get(page, []):
        assert value in text
    images = pictures(notebook)
    assert len(images) == PICTURES[page]
    assert all(image.startswith(b"\x89PNG\r\n\x1a\n") for image in images)
    return text


def test_every_section_has_a_page_and_a_notebook_in_the_books_order():
    sections = [section for section, _ in build.PAGES]
    assert sections == sorted(sections, key=lambda s: tuple(map(int, s.split("."))))
    for page in PAGES:
        assert build.page_path(page).exists()
    listed = (ROOT / "notebooks" / "README.md").read_text()
    for page in PAGES:
        assert build.notebook_path(page).name in listed


@pytest.mark.parametrize("page", PAGES)
def test_the_committed_notebook_holds_its_pages_cells(page):
    assert build.differences(page) is None
    committed = nbformat.read(build.notebook_path(page), as_version=4)
    assert [cell.id for cell in committed.cells] == [cell.id for cell in build.from_page(page).cells]


def test_a_changed_page_is_caught(tmp_path, monkeypatch):
    """The check is not vacuous: one changed character in a page makes it fail."""
    source = build.page_path("pooling").read_text()
    changed = tmp_path / "pooling.py"
    changed.write_text(source.replace("max pooling 2x2", "max pooling 2 by 2"))
    monkeypatch.setattr(build, "page_path", lambda page: changed)
    assert "cell" in build.differences("pooling")


@pytest.mark.parametrize("page", PAGES)
def test_the_committed_notebook_shows_its_outputs_and_pictures(page):
    notebook = nbformat.read(build.notebook_path(page), as_version=4)
    text = assert_shows_the_book(page, notebook)
    if page in NETWORKS:
        assert "examples/sec on cpu" in text


def test_the_committed_notebooks_keep_no_dead_widgets():
    for page in PAGES:
        notebook = nbformat.read(build.notebook_path(page), as_version=4)
        assert "widgets" not in notebook.metadata
        for cell in notebook.cells:
            for output in cell.get("outputs", []):
                assert build.WIDGET_VIEW not in output.get("data", {})


def final_test_accuracy(text: str) -> float:
    return float(re.findall(r"loss \S+, train acc \S+, test acc (\d\.\d+)", text)[-1])


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_the_notebook_runs_on_a_jupyter_kernel(page, tmp_path):
    """Execute the page's notebook from a fresh folder on the python3 kernel: no error,
    within the budget, the book's values, real PNG pictures, and training (where the
    page trains) that leaves chance level (10 classes: 0.1)."""
    pytest.importorskip("nbclient", reason="needs nbclient: pip install -e '.[notebooks]'")
    pytest.importorskip("ipykernel", reason="needs ipykernel: pip install -e '.[notebooks]'")
    start = time.perf_counter()
    notebook = build.execute(build.from_page(page), cwd=tmp_path)
    seconds = time.perf_counter() - start
    assert seconds < NOTEBOOK_BUDGET
    text = assert_shows_the_book(page, notebook)
    if page in NETWORKS:
        assert final_test_accuracy(text) > 0.2, text[-400:]
        widgets = [
            output
            for cell in notebook.cells
            for output in cell.get("outputs", [])
            if build.WIDGET_VIEW in output.get("data", {})
        ]
        assert widgets, "training in a notebook shows tqdm's notebook progress bar"
