"""The training loop on the real Fashion-MNIST files (a small subset): it learns, it
resumes exactly, it stops clearly on a NaN, and the command line runs it."""

import json
import subprocess
import sys

import numpy as np
import pytest

import minicnn as mc
from minicnn import nn
from minicnn.data import DataLoader, FashionMNIST, load_fashion_mnist
from minicnn.train import TrainingDiverged, fit, init_weights, load_checkpoint


def _data_or_skip():
    try:
        FashionMNIST(train=False)
    except FileNotFoundError as error:
        pytest.skip(
            f"needs the Fashion-MNIST files (apt-get install dataset-fashion-mnist): {error}"
        )


@pytest.fixture(autouse=True)
def _numpy_backend():
    _data_or_skip()
    with mc.use_backend("numpy"):
        yield


def small_net():
    """Small and with dropout, so that resuming must also restore the random draws."""
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2), nn.ReLU(), nn.Flatten(),
        nn.Linear(4 * 13 * 13, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10),
    )  # fmt: skip


def loaders(limit=384, batch_size=64):
    return load_fashion_mnist(batch_size, limit=limit, seed=3)


def quiet(*args, **kwargs):
    pass


def test_a_short_fit_lowers_the_loss(tmp_path):
    mc.manual_seed(0)
    train_iter, test_iter = loaders(limit=1024)
    history = fit(small_net(), train_iter, test_iter, 3, 0.1, out=tmp_path, log=quiet)
    losses = [epoch["train_loss"] for epoch in history.epochs]
    assert losses[-1] < losses[0] - 0.2
    assert history.last["test_acc"] > 0.4  # 10 classes: chance is 0.1
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no half files


def test_the_final_report_has_the_books_format(tmp_path):
    mc.manual_seed(0)
    lines = []
    fit(small_net(), *loaders(limit=128), 1, 0.1, log=lines.append)
    loss_line, speed_line = lines[-1].split("\n")
    assert (
        loss_line.startswith("loss ") and ", train acc " in loss_line and ", test acc " in loss_line
    )
    assert speed_line.endswith("examples/sec on cpu (numpy)")


def _run(num_epochs, out, resume=False, train_iter=None):
    mc.manual_seed(0)
    net = small_net()
    train, test = loaders()
    fit(net, train_iter or train, test, num_epochs, 0.1, out=out, resume=resume, log=quiet)
    return net.state_dict()


def test_resume_after_an_epoch_equals_an_uninterrupted_run(tmp_path):
    straight = _run(2, tmp_path / "straight")
    _run(1, tmp_path / "split")
    resumed = _run(2, tmp_path / "split", resume=True)
    for key in straight:
        np.testing.assert_array_equal(resumed[key], straight[key], err_msg=key)


class InterruptedLoader(DataLoader):
    """Raises KeyboardInterrupt (a Ctrl-C) when asked for batch ``at`` of epoch ``epoch``."""

    def __init__(self, *args, epoch, at, **kwargs):
        super().__init__(*args, **kwargs)
        self.interrupt_epoch, self.interrupt_at = epoch, at

    def __iter__(self):
        epoch = self.epoch
        for k, batch in enumerate(super().__iter__()):
            if epoch == self.interrupt_epoch and k == self.interrupt_at:
                raise KeyboardInterrupt
            yield batch


def test_ctrl_c_saves_a_checkpoint_that_resumes_mid_epoch(tmp_path):
    straight = _run(2, tmp_path / "straight")
    train, _ = loaders()
    interrupted = InterruptedLoader(
        train.dataset, 64, shuffle=True, seed=3, limit=384, epoch=1, at=2
    )
    with pytest.raises(KeyboardInterrupt):
        _run(2, tmp_path / "split", train_iter=interrupted)
    state = load_checkpoint(
        tmp_path / "split" / "checkpoint.npz",
        small_net(),
        mc.optim.SGD(small_net().parameters(), lr=0.1),
    )
    assert (state.epoch, state.batch) == (1, 2)
    resumed = _run(2, tmp_path / "split", resume=True)
    for key in straight:
        np.testing.assert_array_equal(resumed[key], straight[key], err_msg=key)


class PoisonAfter(nn.Module):
    """The identity, until call ``n`` from which it returns NaN."""

    def __init__(self, n):
        super().__init__()
        self.calls, self.n = 0, n

    def forward(self, x):
        self.calls += 1
        return x * float("nan") if self.calls >= self.n else x


def test_a_nan_loss_stops_with_epoch_and_batch_and_keeps_the_last_checkpoint(tmp_path):
    mc.manual_seed(0)
    train_iter, test_iter = loaders()  # 6 training batches, 6 test batches per epoch
    net = nn.Sequential(small_net(), PoisonAfter(6 + 6 + 3))  # batch 3 of epoch 2
    with pytest.raises(TrainingDiverged, match="epoch 2, batch 3"):
        fit(net, train_iter, test_iter, 3, 0.1, out=tmp_path, log=quiet)
    checkpoint = np.load(tmp_path / "checkpoint.npz")
    assert json.loads(str(checkpoint["meta"]))["epoch"] == 1


def test_metrics_read_every_few_steps_as_on_a_gpu_add_up_the_same(tmp_path, monkeypatch):
    """On a GPU the loss and accuracy add up on the device and the host reads them every
    GPU_READ_EVERY steps: the same epoch's numbers; a NaN is caught at the next read."""
    import minicnn.train as training

    mc.manual_seed(0)
    train_iter, test_iter = loaders()
    every_step = fit(small_net(), train_iter, test_iter, 2, 0.1, log=quiet)
    monkeypatch.setattr(training, "_steps_between_reads", lambda backend: 4)
    mc.manual_seed(0)
    train_iter, test_iter = loaders()
    batched = fit(small_net(), train_iter, test_iter, 2, 0.1, log=quiet)
    for a, b in zip(every_step.epochs, batched.epochs, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)
        assert (a["train_acc"], a["test_acc"], a["examples"]) == (b["train_acc"], b["test_acc"], b["examples"])
    mc.manual_seed(0)
    train_iter, test_iter = loaders()
    net = nn.Sequential(small_net(), PoisonAfter(6 + 6 + 3))  # batch 3 of epoch 2
    with pytest.raises(TrainingDiverged, match="epoch 2, batches 1 to 4"):
        fit(net, train_iter, test_iter, 3, 0.1, log=quiet)


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        fit(small_net(), *loaders(limit=64), 1, 0.1, out=tmp_path, resume=True, log=quiet)


def test_init_weights_is_xavier_uniform_on_conv_and_linear_only():
    mc.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 64, 5), nn.BatchNorm2d(64), nn.Flatten(), nn.Linear(400, 300))
    init_weights(net)
    conv_bound = np.sqrt(6 / (3 * 25 + 64 * 25))
    linear_bound = np.sqrt(6 / (400 + 300))
    for weight, bound in ((net[0].weight, conv_bound), (net[3].weight, linear_bound)):
        w = weight.numpy()
        assert np.abs(w).max() <= bound
        np.testing.assert_allclose(w.std(), bound / np.sqrt(3), rtol=0.05)
    np.testing.assert_array_equal(net[1].weight.numpy(), 1)


def test_cli_trains_lenet_on_a_small_subset(tmp_path):
    command = [sys.executable, "-m", "minicnn", "train", "lenet", "--epochs", "1", "--limit", "512",
               "--batch-size", "128", "--out", str(tmp_path), "--backend", "numpy"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "loss " in result.stdout and "examples/sec on cpu (numpy)" in result.stdout
    assert (tmp_path / "checkpoint.npz").exists() and (tmp_path / "curves.png").exists()


def test_cli_summary():
    result = subprocess.run(
        [sys.executable, "-m", "minicnn", "summary", "lenet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "(1, 10)" in result.stdout.replace("1 x 10", "(1, 10)")


@pytest.mark.parametrize("epochs", [0, -1, 1.5])
def test_fit_refuses_a_number_of_epochs_below_one(tmp_path, epochs):
    with pytest.raises(ValueError, match=f"fit: num_epochs must be a whole number >= 1, got {epochs}"):
        fit(small_net(), *loaders(limit=64), epochs, 0.1, out=tmp_path / "run", log=quiet)
    assert not (tmp_path / "run").exists()


def test_train_recipe_refuses_batch_size_zero_instead_of_taking_the_recipes(tmp_path):
    from minicnn.train import train_recipe

    with pytest.raises(ValueError, match="batch_size"):
        train_recipe("lenet", batch_size=0, limit=64, out=tmp_path / "run", log=quiet)
    assert not (tmp_path / "run").exists()
