"""mc.book.Page: what differs between a page run as a script and in a notebook (the
pictures, the training, the backend), and its clear words for bad input."""

from __future__ import annotations

import sys

import pytest

import minicnn as mc
from minicnn import book


@pytest.fixture
def script(monkeypatch):
    """Run a Page as the script ``page.py ARGS...``."""

    def with_arguments(*args):
        monkeypatch.setattr(sys, "argv", ["page.py", *args])

    return with_arguments


@pytest.fixture
def notebook(monkeypatch):
    """Run a Page as if under a Jupyter kernel, with a command line that is the kernel's."""
    monkeypatch.setattr(book, "in_notebook", lambda: True)
    monkeypatch.setattr(sys, "argv", ["ipykernel_launcher.py", "-f", "kernel.json"])


def test_outside_jupyter_there_is_no_notebook():
    assert book.in_notebook() is False


def test_a_script_reads_its_command_line(script):
    script("--size", "32", "--train", "--epochs", "2")
    page = book.Page("a page", model="resnet18")
    assert (page.notebook, page.size, page.args.train, page.args.epochs) == (False, 32, True, 2)


def test_the_size_defaults_to_the_books_resolution(script):
    script()
    assert book.Page("a page", model="googlenet").size == 96


def test_a_notebook_ignores_the_kernels_command_line(notebook):
    page = book.Page("a page", model="lenet", options={"--ratio": dict(type=int, default=4)})
    assert page.notebook and page.args.ratio == 4 and page.size == 28


def test_a_size_the_network_cannot_take_is_one_line(script, capsys):
    script("--size", "8")
    with pytest.raises(SystemExit) as stop:
        book.Page("a page", model="lenet")
    assert stop.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "argument --size: lenet: input of shape (1, 1, 8, 8) is too small" in error


def test_show_writes_a_picture_only_with_plot(script, tmp_path):
    script("--out", str(tmp_path))
    book.Page("a page").show(mc.viz.pooling(), "pooling")
    assert not (tmp_path / "pooling.png").exists()
    script("--plot", "--out", str(tmp_path))
    book.Page("a page").show(mc.viz.pooling(), "pooling")
    assert (tmp_path / "pooling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_script_trains_only_when_asked(script, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    script()
    page = book.Page("a page", model="lenet")
    assert page.train(mc.models.lenet(), lr=0.9, batch_size=256, num_epochs=1) is None
    assert not (tmp_path / "runs").exists()


@pytest.fixture
def no_data(monkeypatch, tmp_path):
    """A machine without the Fashion-MNIST files anywhere minicnn looks."""
    from minicnn.data import fashion_mnist

    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "no-debian-package")
    monkeypatch.setenv("MINICNN_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "no-cache"))
    monkeypatch.chdir(tmp_path)


def test_a_notebook_without_the_data_says_how_to_get_it(notebook, no_data, capsys, tmp_path):
    page = book.Page("a page", model="lenet")
    assert page.train(mc.models.lenet(), lr=0.9, batch_size=256, num_epochs=1) is None
    said = capsys.readouterr().out
    assert "could not find the Fashion-MNIST train files" in said
    assert "apt-get install dataset-fashion-mnist" in said and "MINICNN_DATA" in said
    assert not (tmp_path / "runs").exists()


def test_a_script_without_the_data_stops_with_the_message(script, no_data):
    script("--train")
    page = book.Page("a page", model="lenet")
    with pytest.raises(SystemExit) as stop:
        page.train(mc.models.lenet(), lr=0.9, batch_size=256, num_epochs=1)
    assert str(stop.value).startswith("lenet: minicnn.data.FashionMNIST: could not find")


def test_choosing_a_backend_that_cannot_run_here_is_one_line(script, capsys, monkeypatch, without_cupy):
    monkeypatch.delenv("MINICNN_BACKEND", raising=False)
    script()
    page = book.Page("a page")
    before = mc.current_backend().name
    reason = mc.backend.unavailable_reason("cupy")
    assert reason.startswith("no CUDA device: cupy is not installed")
    assert page.choose_backend("cupy") == before
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"backend 'cupy' is not available here: {reason}",
        f"minicnn computes on {before} (cpu)",
    ]


def test_choosing_numpy_makes_it_the_active_backend(script, capsys):
    script()
    previous = mc.current_backend().name
    try:
        assert book.Page("a page").choose_backend("numpy") == "numpy"
        assert mc.current_backend().name == "numpy"
    finally:
        mc.use_backend(previous)
    assert capsys.readouterr().out == "minicnn computes on numpy (cpu)\n"
