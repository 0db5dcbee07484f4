"""A run survives what users and machines do to it: training again where a run lives,
bad checkpoints and data files, another recipe, SIGTERM, a crash at any moment, a full
disk. Each ends with nothing lost and one clear line (the command line) or a typed error
(the Python API). The real ``minicnn train`` runs here, on the numpy backend, where a
resumed run ends bitwise as an uninterrupted one."""

from __future__ import annotations

import errno
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import minicnn as mc
from minicnn.data import FashionMNIST, IDXError, load_fashion_mnist
from minicnn.durable import DiskFullError, write_atomically
from minicnn.train import CheckpointError, RunExistsError, fit, load_checkpoint

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--limit", "256", "--batch-size", "32", "--backend", "numpy"]


@pytest.fixture(autouse=True)
def _data_or_skip():
    try:
        FashionMNIST(train=False)
    except FileNotFoundError as error:
        pytest.skip(f"needs the Fashion-MNIST files (apt-get install dataset-fashion-mnist): {error}")


def train(*args, env=None, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    """``minicnn train ARGS`` in a process of its own."""
    environment = dict(os.environ, PYTHONPATH=str(ROOT))
    environment.pop("MINICNN_DEBUG", None)
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "minicnn", "train", *args], capture_output=True, text=True,
        env=environment, cwd=cwd, timeout=timeout,
    )  # fmt: skip


def one_line_error(result) -> str:
    """The command failed with exactly one line on stderr and no traceback."""
    assert result.returncode not in (0, None), result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def epochs_logged(out: Path) -> list[int]:
    return [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def weights(out: Path) -> dict:
    with np.load(out / "checkpoint.npz") as archive:
        return {k: archive[k] for k in archive.files if k.startswith("model/")}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished one-epoch LeNet run, to copy."""
    out = tmp_path_factory.mktemp("finished") / "lenet"
    result = train("lenet", "--epochs", "1", *SMALL, "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def copy_run(run: Path, to: Path) -> Path:
    to.mkdir(parents=True)
    for path in run.iterdir():
        if path.is_file():
            (to / path.name).write_bytes(path.read_bytes())
    return to


# ---- 1. an earlier run is never overwritten without being asked --------------------------
def test_training_where_a_run_lives_is_refused_and_loses_nothing(finished_run, tmp_path):
    out = copy_run(finished_run, tmp_path / "lenet")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    line = one_line_error(train("lenet", "--epochs", "1", *SMALL, "--out", str(out)))
    assert f"{out} holds a lenet run" in line and "1 of 1 epoch" in line
    assert "--resume" in line and "--out DIR" in line and "--overwrite" in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_overwrite_replaces_the_run(finished_run, tmp_path):
    out = copy_run(finished_run, tmp_path / "lenet")
    result = train("lenet", "--epochs", "1", *SMALL, "--out", str(out), "--overwrite")
    assert result.returncode == 0, result.stderr
    assert epochs_logged(out) == [1]  # the old run's line is gone, not appended to


def test_resume_and_overwrite_together_are_refused(tmp_path):
    result = train("lenet", "--resume", "--overwrite", "--out", str(tmp_path))
    assert result.returncode == 2 and "--overwrite" in result.stderr


def test_fit_refuses_a_folder_holding_a_run_and_names_the_keywords(finished_run, tmp_path):
    out = copy_run(finished_run, tmp_path / "lenet")
    data = load_fashion_mnist(32, limit=64)
    with mc.use_backend("numpy"), pytest.raises(RunExistsError) as refused:
        fit(mc.models.lenet(), *data, 1, 0.9, out=out, log=lambda line: None)
    assert "resume=True" in str(refused.value) and "overwrite=True" in str(refused.value)
    with mc.use_backend("numpy"):
        fit(mc.models.lenet(), *data, 1, 0.9, out=out, overwrite=True, log=lambda line: None)
    assert epochs_logged(out) == [1]


# ---- 2. bad checkpoints and data files: one line, or a typed error -----------------------
@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (lambda data: data[: len(data) // 2], "is cut short or is not a checkpoint"),
        (lambda data: b"not a checkpoint at all\n" * 10, "is cut short or is not a checkpoint"),
    ],
    ids=["truncated", "not-a-checkpoint"],
)
def test_a_bad_checkpoint_with_resume_is_one_line(finished_run, tmp_path, damage, said):
    out = copy_run(finished_run, tmp_path / "lenet")
    checkpoint = out / "checkpoint.npz"
    checkpoint.write_bytes(damage(checkpoint.read_bytes()))
    line = one_line_error(train("lenet", "--epochs", "2", *SMALL, "--out", str(out), "--resume"))
    assert str(checkpoint) in line and said in line and "--overwrite" in line


def test_a_pickled_array_is_not_a_checkpoint(tmp_path):
    out = tmp_path / "lenet"
    out.mkdir()
    np.savez(out / "checkpoint.npz", meta=np.array([{"a": 1}], dtype=object))
    line = one_line_error(train("lenet", "--epochs", "2", *SMALL, "--out", str(out), "--resume"))
    assert str(out / "checkpoint.npz") in line and "not a minicnn checkpoint" in line
    with pytest.raises(CheckpointError, match="not a minicnn checkpoint"):
        load_checkpoint(out / "checkpoint.npz", mc.models.lenet(),
                        mc.optim.SGD(mc.models.lenet().parameters(), lr=0.1))  # fmt: skip


def test_another_networks_checkpoint_is_one_line(finished_run, tmp_path):
    out = copy_run(finished_run, tmp_path / "run")
    line = one_line_error(train("lenet_bn", "--epochs", "2", *SMALL, "--out", str(out), "--resume"))
    assert "holds a lenet network, not a lenet_bn" in line


def test_resuming_with_another_recipe_names_each_difference(finished_run, tmp_path):
    out = copy_run(finished_run, tmp_path / "lenet")
    other = ["--limit", "128", "--batch-size", "16", "--backend", "numpy", "--lr", "0.5"]
    line = one_line_error(train("lenet", "--epochs", "2", *other, "--out", str(out), "--resume"))
    assert "batch size 32 (asked: 16)" in line
    assert "learning rate 0.9 (asked: 0.5)" in line
    assert "256 training images (asked: 128)" in line
    assert "resize" not in line and "seed" not in line


def test_more_epochs_continue_a_finished_run(finished_run, tmp_path):
    out = copy_run(finished_run, tmp_path / "lenet")
    result = train("lenet", "--epochs", "2", *SMALL, "--out", str(out), "--resume")
    assert result.returncode == 0, result.stderr
    assert epochs_logged(out) == [1, 2]


def idx_files(folder: Path, damage: str) -> Path:
    """The four IDX files, the test images damaged: cut short, a wrong magic number, or
    labels that do not match the images in number."""
    source = FashionMNIST(train=False)
    folder.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):  # fmt: skip
        data = gzip.decompress((source.root / f"{name}.gz").read_bytes())
        if name == "t10k-images-idx3-ubyte" and damage == "truncated":
            data = data[: len(data) - 100]
        if name == "t10k-images-idx3-ubyte" and damage == "magic":
            data = b"\x00\x00\x09\x03" + data[4:]
        if name == "t10k-labels-idx1-ubyte" and damage == "sizes":
            data = data[:4] + (9999).to_bytes(4, "big") + data[8:-1]
        (folder / name).write_bytes(data)
    return folder


@pytest.mark.parametrize("damage", ["truncated", "magic", "sizes"])
def test_a_bad_data_file_is_one_line(tmp_path, damage):
    root = idx_files(tmp_path / "data", damage)
    out = tmp_path / "run"
    line = one_line_error(train("lenet", *SMALL, "--data-root", str(root), "--out", str(out)))
    assert "t10k-" in line and str(root) in line
    assert not out.exists()  # refused before any file of a run was written
    with pytest.raises(IDXError):
        FashionMNIST(root, train=False)


def test_debug_shows_the_traceback(finished_run, tmp_path):
    out = copy_run(finished_run, tmp_path / "lenet")
    (out / "checkpoint.npz").write_bytes(b"broken")
    result = train("lenet", *SMALL, "--out", str(out), "--resume", env={"MINICNN_DEBUG": "1"})
    assert result.returncode != 0 and "Traceback" in result.stderr
    assert "CheckpointError" in result.stderr


# ---- 3. SIGTERM, a crash, metrics ---------------------------------------------------------
def start(*args, cwd=None) -> subprocess.Popen:
    environment = dict(os.environ, PYTHONPATH=str(ROOT))
    environment.pop("MINICNN_DEBUG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "minicnn", "train", *args], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=environment, cwd=cwd,
    )  # fmt: skip


def wait_for_training(process, out: Path, timeout=120) -> None:
    """Until the run is inside its first epoch (run.json written, training started)."""
    deadline = time.monotonic() + timeout
    while not (out / "run.json").exists():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)


def test_sigterm_saves_mid_epoch_and_resumes_to_the_same_weights(tmp_path):
    recipe = ["lenet", "--epochs", "2", "--limit", "4096", "--batch-size", "32", "--backend", "numpy"]
    assert train(*recipe, "--out", str(tmp_path / "straight")).returncode == 0
    out = tmp_path / "stopped"
    process = start(*recipe, "--out", str(out))
    wait_for_training(process, out)
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert "stopped by SIGTERM: saved" in stdout and "--resume" in stdout
    state = load_checkpoint(out / "checkpoint.npz", mc.models.lenet(),
                            mc.optim.SGD(mc.models.lenet().parameters(), lr=0.9))  # fmt: skip
    assert state.epoch < 2
    resumed = train(*recipe, "--out", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    straight = weights(tmp_path / "straight")
    assert all(np.array_equal(weights(out)[k], straight[k]) for k in straight)
    assert epochs_logged(out) == [1, 2]


def test_metrics_agree_with_the_checkpoint_after_a_crash(finished_run, tmp_path):
    """A crash after the checkpoint but before metrics.jsonl got the epoch's line (or
    with the line cut in half): after --resume, each epoch appears once."""
    out = copy_run(finished_run, tmp_path / "lenet")
    (out / "metrics.jsonl").write_text('{"epoch": 1, "train_lo')
    result = train("lenet", "--epochs", "2", *SMALL, "--out", str(out), "--resume")
    assert result.returncode == 0, result.stderr
    assert epochs_logged(out) == [1, 2]


# ---- 4. durable writes and a full disk ------------------------------------------------------
def test_a_checkpoint_is_fsynced_then_renamed_then_its_folder_fsynced(tmp_path, monkeypatch):
    import minicnn.durable as durable

    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor):
        events.append("fsync folder" if os.path.isdir(f"/proc/self/fd/{descriptor}") else "fsync file")
        real_fsync(descriptor)

    def replace(source, target):
        events.append("rename")
        real_replace(source, target)

    monkeypatch.setattr(durable.os, "fsync", fsync)
    monkeypatch.setattr(durable.os, "replace", replace)
    write_atomically(tmp_path / "checkpoint.npz", lambda file: file.write(b"x" * 100))
    assert events == ["fsync file", "rename", "fsync folder"]


def test_a_full_disk_keeps_the_last_good_checkpoint(finished_run, tmp_path, monkeypatch):
    """Simulated: the disk fills up while the next checkpoint is written (its fsync
    fails with ENOSPC, as a write to a full disk does). The error names the file; the
    checkpoint of the epoch before is whole and loads."""
    import minicnn.durable as durable

    out = copy_run(finished_run, tmp_path / "lenet")
    good = (out / "checkpoint.npz").read_bytes()
    real_fsync = os.fsync

    def no_space(descriptor):
        if "checkpoint.npz" in os.readlink(f"/proc/self/fd/{descriptor}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(descriptor)

    monkeypatch.setattr(durable.os, "fsync", no_space)
    data = load_fashion_mnist(32, limit=256)
    with mc.use_backend("numpy"), pytest.raises(DiskFullError) as full:
        fit(mc.models.lenet(), *data, 2, 0.9, out=out, resume=True, log=lambda line: None)
    assert str(out / "checkpoint.npz") in str(full.value) and "the disk is full" in str(full.value)
    assert (out / "checkpoint.npz").read_bytes() == good
    assert not list(out.glob("*.tmp"))


@pytest.fixture
def small_disk(tmp_path):
    """A real 400 KiB filesystem (tmpfs), where this machine lets the tests mount one."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()}); "
                    "test_a_full_disk_keeps_the_last_good_checkpoint simulates it")  # fmt: skip
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_disk_that_fills_up_ends_with_one_line(small_disk):
    out = small_disk / "lenet"
    line = one_line_error(train("lenet", "--epochs", "3", *SMALL, "--out", str(out)))
    assert str(out) in line and "the disk is full" in line
    if (out / "checkpoint.npz").exists():  # the last good one, whole
        load_checkpoint(out / "checkpoint.npz", mc.models.lenet(),
                        mc.optim.SGD(mc.models.lenet().parameters(), lr=0.9))  # fmt: skip


# ---- 5. fault injection: kill a real run at random moments, resume, compare ------------------
FAULT_TRIALS = 16  # per signal


@pytest.mark.slow
@pytest.mark.parametrize("kill", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_run_killed_at_random_moments_resumes_to_the_uninterrupted_result(tmp_path, kill):
    """FAULT_TRIALS times: start a real run, kill it after a random delay (anywhere from
    start-up to the report), check that its checkpoint, if any, reads, resume it (again
    and again if it is killed before a checkpoint exists), and check that it ends with
    the uninterrupted run's weights and each epoch once in metrics.jsonl."""
    recipe = ["lenet", "--epochs", "2", "--limit", "1024", "--batch-size", "32", "--backend", "numpy"]
    begun = time.monotonic()
    assert train(*recipe, "--out", str(tmp_path / "straight")).returncode == 0
    duration = time.monotonic() - begun
    straight = weights(tmp_path / "straight")
    rng = np.random.default_rng(0)
    for trial in range(FAULT_TRIALS):
        out = tmp_path / f"trial{trial}"
        process = start(*recipe, "--out", str(out))
        time.sleep(rng.uniform(0, duration))
        process.send_signal(kill)
        _, stderr = process.communicate(timeout=120)
        assert "Traceback" not in stderr, stderr
        if kill == signal.SIGTERM and process.returncode not in (0, -signal.SIGTERM):
            assert process.returncode == 143, stderr
        checkpoint = out / "checkpoint.npz"
        if checkpoint.exists():  # never unreadable, whatever the moment
            load_checkpoint(checkpoint, mc.models.lenet(),
                            mc.optim.SGD(mc.models.lenet().parameters(), lr=0.9))  # fmt: skip
        again = train(*recipe, "--out", str(out), *(["--resume"] if checkpoint.exists() else []))
        assert again.returncode == 0, f"trial {trial}: {again.stderr}"
        assert all(np.array_equal(weights(out)[k], straight[k]) for k in straight), f"trial {trial}"
        assert epochs_logged(out) == [1, 2], f"trial {trial}"
