"""The command line refuses bad input before any work: a one-line error naming the
argument and what it accepts, exit status 2, no traceback, no run folder left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import minicnn as mc
from minicnn import cli, threads

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--epochs", "0"], "argument --epochs: expected a whole number >= 1, got '0'"),
        (["--epochs", "-1"], "argument --epochs: expected a whole number >= 1, got '-1'"),
        (["--batch-size", "0"], "argument --batch-size: expected a whole number >= 1, got '0'"),
        (["--lr", "-0.5"], "argument --lr: expected a number > 0, got '-0.5'"),
        (["--lr", "nan"], "argument --lr: expected a number > 0, got 'nan'"),
        (["--limit", "-5"], "argument --limit: expected a whole number >= 1, got '-5'"),
        (["--resize", "1.5"], "argument --resize: expected a whole number >= 1, got '1.5'"),
        (["--threads", "0"], "argument --threads: expected a whole number >= 1, got '0'"),
        (["--resume"], "argument --resume: no checkpoint to resume from at"),
        (["--backend", "tpu"], "argument --backend: invalid choice: 'tpu'"),
        (["--seed", "-1"], "argument --seed: expected a whole number >= 0, got '-1'"),
        (["--resize", "2"], "argument --resize: lenet: input of shape (0, 1, 2, 2) is too small: "
                            "this network needs (N, 1, H, W) with H x W between 28x28 and 31x31"),
    ],
    ids=lambda value: value if isinstance(value, str) else " ".join(value),
)
def test_bad_train_arguments_are_refused_before_any_work(tmp_path, capsys, arguments, message):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as stopped:
        cli.main(["train", "lenet", "--out", str(out), *arguments])
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert message in error
    assert "Traceback" not in error
    assert not out.exists()


def test_threads_sets_the_budget(capsys):
    requested = threads._requested
    try:
        assert cli.main(["summary", "lenet", "--threads", "1"]) == 0
        assert mc.get_num_threads() == 1
    finally:
        threads._requested = requested
        threads.apply(mc.current_backend())
    assert "Linear" in capsys.readouterr().out


def run_cli(*arguments, **env_vars) -> subprocess.CompletedProcess:
    env = dict(os.environ, **env_vars)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "minicnn", *arguments], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.mark.parametrize(
    "variable, value, message",
    [
        ("MINICNN_BACKEND", "tpu", "unknown backend 'tpu' in environment variable MINICNN_BACKEND; "
                                   "backends are ['numpy', 'numba', 'cupy']"),
        ("OMP_NUM_THREADS", "many", "environment variable OMP_NUM_THREADS: expected a whole "
                                    "number of threads >= 1, got 'many'"),
        ("MINICNN_CONV_OFF", "winogrd", "no conv2d algorithm has the switch 'winogrd'; the "
                                        "switches are direct, dx_by_conv, im2col, taps, "
                                        "wide_rows, winograd"),
    ],
    ids=["MINICNN_BACKEND", "OMP_NUM_THREADS", "MINICNN_CONV_OFF"],
)  # fmt: skip
def test_a_bad_environment_is_refused_with_the_valid_choices(tmp_path, variable, value, message):
    out = tmp_path / "run"
    result = run_cli("train", "lenet", "--out", str(out), **{variable: value})
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_a_size_the_network_cannot_take_is_refused(capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["summary", "vgg11", "--size", "100"])
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert "argument --size: vgg11: input of shape (0, 1, 100, 100) is too small" in error
    assert "Traceback" not in error
