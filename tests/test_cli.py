"""The command line's commands that need no data: gradcheck and summary."""

import subprocess
import sys


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "minicnn", *args], capture_output=True, text=True, timeout=300
    )


def test_gradcheck_of_a_whole_network():
    result = run("gradcheck", "lenet_bn", "--backend", "numpy")
    assert result.returncode == 0, result.stderr
    assert "lenet_bn: gradients of 18 parameter tensors agree" in result.stdout


def test_summary_prints_the_table_with_totals():
    result = run("summary", "resnet18", "--size", "224")
    assert result.returncode == 0, result.stderr
    assert "11,178,378" in result.stdout  # as many parameters as the book's PyTorch ResNet-18


def test_an_unknown_model_is_refused_with_the_choices():
    result = run("train", "resnet50")
    assert result.returncode == 2
    assert "invalid choice: 'resnet50'" in result.stderr and "lenet" in result.stderr
