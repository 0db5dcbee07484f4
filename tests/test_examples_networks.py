"""Each network example builds its network as the book does, inline, and that network
is the library's (``mc.models``): the same modules, state_dict keys and shapes, and the
same output on the same weights. Each runs at a small ``--size`` and prints the book's
shape walk-through."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pages import run_page

import minicnn as mc

ROOT = Path(__file__).resolve().parent.parent

# script -> (a small size it accepts, the last line of its walk-through)
EXAMPLES = {
    "lenet": (28, "Linear output shape:\t (1, 10)"),
    "alexnet": (193, "Linear output shape:\t (1, 10)"),
    "vgg": (224, "Linear output shape:\t (1, 10)"),
    "nin": (67, "Flatten output shape:\t (1, 10)"),
    "googlenet": (32, "Linear output shape:\t (1, 10)"),
    "resnet": (32, "Linear output shape:\t (1, 10)"),
    "densenet": (29, "Linear output shape:\t (1, 10)"),
}


def run_example(name, *args):
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / f"{name}.py"), *args],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
    )  # fmt: skip


MODELS = {"lenet": "lenet", "alexnet": "alexnet", "vgg": "vgg11", "nin": "nin",
          "googlenet": "googlenet", "resnet": "resnet18", "densenet": "densenet"}  # fmt: skip


def example_network(name):
    """The network the example page builds (run as a script with no arguments: it
    prints its walk-through and table, and trains nothing)."""
    page = run_page(name)
    if name == "vgg":  # the page walks VGG-11 through, then trains it with widths / 4
        return page.vgg([(num_convs, channels // 4) for num_convs, channels in page.conv_arch])
    return page.net


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_example_builds_the_librarys_network(name):
    mine, library = example_network(name), mc.models.get(MODELS[name])
    assert [type(m).__name__ for m in mine.modules()][1:] == [
        type(m).__name__ for m in library.modules()][1:]  # fmt: skip
    ours, theirs = mine.state_dict(), library.state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}
    mc.manual_seed(0)
    mc.train.init_weights(library)
    mine.load_state_dict(library.state_dict())
    mine.eval(), library.eval()
    size = EXAMPLES[name][0]
    x = mc.tensor(np.random.default_rng(0).standard_normal((2, 1, size, size)).astype(np.float32))
    with mc.no_grad():
        np.testing.assert_array_equal(mine(x).numpy(), library(x).numpy())


@pytest.mark.parametrize("name", EXAMPLES)
def test_network_example_prints_the_walk_through(name):
    size, last_shape = EXAMPLES[name]
    result = run_example(name, "--size", str(size))
    assert result.returncode == 0, result.stderr
    walk = [line for line in result.stdout.splitlines() if " output shape:\t " in line]
    assert walk and walk[-1] == last_shape, result.stdout


def test_resnet_example_at_224_prints_the_book_shapes():
    result = run_example("resnet", "--size", "224")
    assert result.returncode == 0, result.stderr
    shapes = [
        line.split("\t ")[1] for line in result.stdout.splitlines() if " output shape:\t " in line
    ]
    assert shapes == [
        "(1, 64, 56, 56)", "(1, 64, 56, 56)", "(1, 128, 28, 28)", "(1, 256, 14, 14)",
        "(1, 512, 7, 7)", "(1, 512, 1, 1)", "(1, 512)", "(1, 10)",
    ]  # fmt: skip


def test_a_size_too_small_is_the_network_error():
    result = run_example("densenet", "--size", "16")
    assert result.returncode != 0
    assert "densenet: input of shape (1, 1, 16, 16) is too small" in result.stderr


def test_train_flag_trains_with_the_books_recipe(tmp_path):
    from minicnn.data import FashionMNIST

    try:
        FashionMNIST(train=False)
    except FileNotFoundError as error:
        pytest.skip(f"needs the Fashion-MNIST files (apt-get install dataset-fashion-mnist): {error}")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "lenet.py"), "--train", "--epochs", "1",
         "--limit", "256"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "lr 0.9" in result.stdout and "examples/sec on cpu" in result.stdout
    assert (tmp_path / "runs" / "lenet" / "curves.png").exists()
