"""What costs most on a GPU, counted without one: the host waiting for the device (a
synchronisation: ``.item()``, ``float()``, ``int()``, ``bool()``, ``.get()``, a Python
``if`` on a device value). The design (train.py, GPU_READ_EVERY): a training step waits
for nothing; the loop reads its loss and accuracy sums once every GPU_READ_EVERY steps
(two reads: the loss, the count of correct answers), and evaluation reads each test
batch's count. Counted on the tests' CuPy emulation (tests/emulated_cupy), which counts
every wait; benchmarks/gpu_sync_counts.py reports them, and the launches, per network."""

from __future__ import annotations

import types

import conftest
import numpy as np
import pytest

import minicnn as mc
from minicnn.data import DataLoader
from minicnn.train import GPU_READ_EVERY, fit

pytestmark = pytest.mark.skipif(
    not conftest.CUPY_EMULATED, reason="counts need the tests' CuPy emulation (a real GPU runs here)"
)


def loaders(steps: int, size: int, batch: int = 4, test_batches: int = 1):
    rng = np.random.default_rng(0)
    n = steps * batch
    train = types.SimpleNamespace(data=rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
                                  targets=rng.integers(0, 10, n))  # fmt: skip
    test = types.SimpleNamespace(data=train.data[: batch * test_batches],
                                 targets=train.targets[: batch * test_batches])  # fmt: skip
    resize = None if size == 28 else size
    return DataLoader(train, batch, shuffle=True, resize=resize), DataLoader(test, batch, resize=resize)


def synchronizations_of_a_run(model: str, size: int, steps: int, test_batches: int = 1) -> int:
    import emulated_cupy

    with mc.use_backend("cupy"):
        mc.manual_seed(0)
        net = mc.models.get(model)
        train_iter, test_iter = loaders(steps, size, test_batches=test_batches)
        emulated_cupy.reset()
        fit(net, train_iter, test_iter, 1, 0.01, progress=False, log=lambda line: None)
        return emulated_cupy.counters["synchronizations"]


@pytest.mark.parametrize(("model", "size"), [("lenet", 28), ("lenet_bn", 28), ("resnet18", 32)])
def test_training_waits_for_the_device_only_to_read_the_metrics(model, size):
    steps, test_batches = 2 * GPU_READ_EVERY, 2
    reads = 2 * (steps // GPU_READ_EVERY)  # the loss and the correct answers, every 50 steps
    evaluation = test_batches + 2 * test_batches  # a count per batch; the last epoch's
    # predictions come to the host too (labels and classes, for the confusion matrix)
    assert synchronizations_of_a_run(model, size, steps, test_batches) == reads + evaluation


def test_a_step_itself_never_waits():
    """Two more steps, below the read interval, add no synchronisation at all."""
    assert synchronizations_of_a_run("lenet_bn", 28, 4) == synchronizations_of_a_run("lenet_bn", 28, 2)
