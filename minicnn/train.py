"""Training: the book's ``train_ch6`` (D2L 7.6), plus what a long run needs.

The recipe (D2L 7.6 and 8.1-8.7): xavier-uniform weights on every Conv2d and Linear,
plain SGD, mean softmax cross-entropy; per epoch the running training loss and
accuracy (train mode), then the test accuracy (eval mode, no graph). At the end::

    loss 0.472, train acc 0.822, test acc 0.814
    10767.9 examples/sec on cpu (numba)

(on the 2-core machine of README.md's benchmarks; the book printed 0.469, 0.823, 0.779
and 55297.0 examples/sec on a GPU)

Around it, what a long run needs, because a run is hours of a learner's machine:

- a progress bar, metrics appended as JSON lines, the book's curves saved as a PNG;
- a checkpoint after every epoch, and at the last finished step on Ctrl-C or SIGTERM,
  from which ``resume`` continues exactly where the run stopped;
- nothing lost: a folder that holds a run is not trained into again unless asked
  (``resume`` or ``overwrite``); every file is written durably (``durable.py``); a
  checkpoint that cannot be resumed from is a :class:`CheckpointError` saying why;
- a clear stop on a NaN or infinite loss.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy

from . import nn
from .backend import cpu_generator, current_backend
from .durable import DiskFullError, append_line, write_atomically, write_text_atomically
from .optim import SGD, Adam
from .tensor import no_grad


@dataclass(frozen=True)
class Recipe:
    """The book's hyper-parameters for one network: the batch size, learning rate and
    resize each section of D2L 7.6 and 8.1-8.7 trains it with, for 10 epochs."""

    resize: int | None
    batch_size: int
    lr: float
    num_epochs: int = 10


RECIPES = {
    "lenet": Recipe(None, 256, 0.9),
    "lenet_bn": Recipe(None, 256, 1.0),
    "alexnet": Recipe(224, 128, 0.01),
    "vgg11": Recipe(224, 128, 0.05),
    "nin": Recipe(224, 128, 0.1),
    "googlenet": Recipe(96, 128, 0.1),
    "resnet18": Recipe(96, 256, 0.05),
    "densenet": Recipe(96, 256, 0.1),
}


#: The optimizers a recipe may name: the book's plain SGD, and Adam.
OPTIMIZERS = {"sgd": SGD, "adam": Adam}


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from: cut short, not minicnn's, another
    network's, or made with another recipe. The message names the file and what to do."""


class RunExistsError(FileExistsError):
    """``out`` holds an earlier run, and neither ``resume`` nor ``overwrite`` was asked
    for: training there would throw that run away."""

    def __init__(self, folder: Path, holds: str):
        self.folder, self.holds = Path(folder), holds
        super().__init__(
            f"{folder} holds {holds}: pass resume=True to continue it, overwrite=True to "
            "replace it, or another out folder for a new run"
        )


class Terminated(KeyboardInterrupt):
    """SIGTERM (``docker stop``, a batch scheduler, a closing terminal) stopped the run.
    As on Ctrl-C, the checkpoint holds the last finished step."""


@dataclass
class History:
    """One dict per finished epoch: epoch, train_loss, train_acc, test_acc,
    examples_per_sec, seconds; and the last epoch's test predictions, a list of (labels,
    predicted classes) pairs on the host, one per batch (the run's confusion matrix is
    counted from them, without a second pass over the test set)."""

    epochs: list[dict] = field(default_factory=list)
    test_predictions: list | None = None

    @property
    def last(self) -> dict:
        return self.epochs[-1]

    def final_report(self) -> str:
        """The book's two closing lines."""
        last = self.last
        total_examples = sum(e["examples"] for e in self.epochs)
        total_seconds = sum(e["seconds"] for e in self.epochs)
        backend = current_backend()
        return (
            f"loss {last['train_loss']:.3f}, train acc {last['train_acc']:.3f}, "
            f"test acc {last['test_acc']:.3f}\n"
            f"{total_examples / total_seconds:.1f} examples/sec on {backend.device} "
            f"({backend.name})"
        )


def train_recipe(
    model: str,
    *,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    resize: int | None = None,
    limit: int | None = None,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = False,
    data_root=None,
    download: bool = False,
    net: nn.Module | None = None,
    optimizer: str = "sgd",
    log=print,
) -> History:
    """Train ``mc.models.get(model)`` on Fashion-MNIST with the book's recipe for it
    (:data:`RECIPES`); every argument given overrides its part of the recipe, and ``net``
    replaces the network (an example's own, built as the book builds it). ``optimizer``
    is the book's ``"sgd"``, or ``"adam"`` (what the notebooks' short runs of NiN and
    GoogLeNet take). This is what ``minicnn train MODEL`` and the examples' ``--train`` run."""
    from . import models
    from .backend import manual_seed
    from .data import load_fashion_mnist

    if optimizer not in OPTIMIZERS:
        raise ValueError(f"train: optimizer must be one of {sorted(OPTIMIZERS)}, got {optimizer!r}")
    recipe = RECIPES[model]
    resize = recipe.resize if resize is None else resize
    batch_size = recipe.batch_size if batch_size is None else batch_size
    lr = recipe.lr if lr is None else lr
    epochs = recipe.num_epochs if epochs is None else epochs
    out = out or f"runs/{model}"
    manual_seed(seed)
    net = models.get(model) if net is None else net
    train_iter, test_iter = load_fashion_mnist(
        batch_size, resize=resize, root=data_root, limit=limit, seed=seed, download=download
    )
    log(
        f"training {model} on Fashion-MNIST ({train_iter.num_examples} images): resize "
        f"{resize}, batch {batch_size}, lr {lr}, {epochs} epochs, backend {current_backend().name}"
    )
    recipe = dict(resize=resize, batch_size=batch_size, lr=lr, epochs=epochs, seed=seed, limit=limit)
    if optimizer != "sgd":  # the book's runs keep the run.json they always had
        recipe["optimizer"] = optimizer
    history = fit(
        net, train_iter, test_iter, epochs, lr, out=out, resume=resume, overwrite=overwrite,
        optimizer=OPTIMIZERS[optimizer](net.parameters(), lr=lr), log=log,
        record=_run_record(model, recipe),
    )  # fmt: skip
    if _has_matplotlib():
        from .viz import write_report

        try:
            write_report(out, net, test_iter, history.test_predictions)
        except DiskFullError:
            raise
        except (OSError, ValueError, RuntimeError) as error:  # the run itself is saved
            log(f"could not draw the report ({error}); retry with: minicnn report {out}")
        else:
            log(f"metrics, checkpoint, curves, pictures and report.html in {out}/")
    else:
        log(f"metrics and checkpoint in {out}/ (pictures need matplotlib: pip install -e '.[train]')")
    return history


def _run_record(model: str, recipe: dict) -> dict:
    """run.json: what the report says about the run (the model, its recipe, the machine)."""
    from .viz.report import machine

    return dict(model=model, recipe=recipe, machine=machine())


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


# ---- the book's pieces --------------------------------------------------------------
def init_weights(net: nn.Module) -> None:
    """xavier_uniform_ on the weight of every layer that is exactly a Conv2d or Linear."""
    for module in net.modules():
        if type(module) in (nn.Conv2d, nn.Linear):
            nn.init.xavier_uniform_(module.weight)


def accuracy(y_hat, y) -> int:
    """How many predictions (argmax of the logits) equal the labels."""
    return int((y_hat.data.argmax(axis=1) == y.data).sum())


def evaluate_accuracy(net: nn.Module, data_iter, predictions: list | None = None) -> float:
    """Accuracy over a whole data set, in eval mode, without building a graph.

    With ``predictions`` (a list), each batch's labels and predicted classes are appended
    to it as a pair of NumPy arrays: what a confusion matrix counts.
    """
    was_training = net.training
    net.eval()
    correct = total = 0
    with no_grad():
        for X, y in data_iter:
            y_hat = net(X)
            correct += accuracy(y_hat, y)
            total += len(y)
            if predictions is not None:
                predictions.append((y.numpy(), y_hat.numpy().argmax(axis=1)))
    net.train(was_training)
    return correct / total


# ---- the loop ------------------------------------------------------------------------
def fit(
    net: nn.Module,
    train_iter,
    test_iter,
    num_epochs: int,
    lr: float,
    *,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = False,
    optimizer=None,
    progress: bool | None = None,
    record: dict | None = None,
    log=print,
) -> History:
    """Train ``net`` with the book's recipe and return its :class:`History`.

    With ``out``, the run keeps in that folder: ``checkpoint.npz`` (after each epoch,
    and at the last finished step on Ctrl-C or SIGTERM), ``metrics.jsonl`` (one line per
    epoch), ``curves.png`` (loss and accuracies per epoch), and ``record`` as
    ``run.json``; every file written durably (``minicnn/durable.py``). A folder that
    holds a run is refused (:class:`RunExistsError`) unless ``resume=True`` continues
    it (same data order, same dropout draws, same result as a run never interrupted;
    ``num_epochs`` may grow) or ``overwrite=True`` replaces it. ``progress`` shows a
    tqdm bar (default: when stderr is a terminal, and in a Jupyter notebook, where it
    is tqdm's notebook bar; never in a log file).
    """
    if isinstance(num_epochs, bool) or not isinstance(num_epochs, int | numpy.integer) or (
        num_epochs < 1
    ):
        raise ValueError(f"fit: num_epochs must be a whole number >= 1, got {num_epochs!r}")
    if resume and overwrite:
        raise ValueError("fit: resume=True continues a run and overwrite=True replaces it: pass one")
    out = Path(out) if out is not None else None
    if resume and out is None:
        raise FileNotFoundError("resume: no out folder given, so no checkpoint to resume from")
    if out is not None:
        claim_folder(out, resume=resume, overwrite=overwrite)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = optimizer or SGD(net.parameters(), lr=lr)
    recipe = _recipe(train_iter, optimizer)
    checkpoint = out / CHECKPOINT if out else None
    state = _RunState()
    if resume:
        state = load_checkpoint(checkpoint, net, optimizer, recipe)
        log(f"resuming from {checkpoint}: epoch {state.epoch + 1}, batch {state.batch}")
    else:
        init_weights(net)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        if record is not None:
            write_text_atomically(out / "run.json", json.dumps(record, indent=1))
        if resume:  # the checkpoint's epochs, each once, whatever a crash left in the log
            _write_metrics(out / METRICS, state.history.epochs)

    with _StopOnSignals() as stop:
        try:
            while state.epoch < num_epochs:
                _train_epoch(net, train_iter, loss_fn, optimizer, state, progress, num_epochs, stop)
                last = [] if state.epoch == num_epochs - 1 else None  # kept for the pictures
                record = state.finish_epoch(evaluate_accuracy(net, test_iter, last))
                state.history.test_predictions = last
                log(
                    f"epoch {record['epoch']}: loss {record['train_loss']:.3f}, "
                    f"train acc {record['train_acc']:.3f}, test acc {record['test_acc']:.3f}, "
                    f"{record['examples_per_sec']:.1f} examples/sec"
                )
                if out:  # the checkpoint first: the log is rebuilt from it on resume
                    save_checkpoint(checkpoint, net, optimizer, state, recipe, num_epochs)
                    append_line(out / METRICS, json.dumps(record))
                    plot_history(state.history, out / "curves.png")
                stop.check()  # a signal during evaluation or saving: the epoch is saved
        except KeyboardInterrupt as interrupt:
            if out:
                save_checkpoint(checkpoint, net, optimizer, state, recipe, num_epochs)
                why = "stopped by SIGTERM" if isinstance(interrupt, Terminated) else "interrupted"
                log(f"{why}: saved {checkpoint} (epoch {state.epoch + 1}, batch {state.batch}); "
                    "--resume continues it")  # fmt: skip
            raise
    if state.history.epochs:
        log(state.history.final_report())
    return state.history


class _StopOnSignals:
    """While training, Ctrl-C (SIGINT) and SIGTERM ask the loop to stop once the step in
    progress is done, so that the checkpoint holds whole steps: :meth:`check`, called
    between steps, raises KeyboardInterrupt or :class:`Terminated`. A second signal acts
    at once, as it would have without this. Outside the main thread (where Python
    delivers signals) this does nothing."""

    def __enter__(self):
        self.signal, self.previous = None, {}
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self.previous[number] = signal.signal(number, self._ask)
        return self

    def _ask(self, number, frame):
        self.signal = number
        for each, handler in self.previous.items():  # the next one is not deferred
            signal.signal(each, handler)

    def check(self) -> None:
        if self.signal == signal.SIGTERM:
            raise Terminated("SIGTERM")
        if self.signal == signal.SIGINT:
            raise KeyboardInterrupt

    def __exit__(self, *exc_info):
        for number, handler in self.previous.items():
            signal.signal(number, handler)


@dataclass
class _RunState:
    """Where a run stands: enough to resume it exactly."""

    epoch: int = 0  # the epoch in progress (0-based)
    batch: int = 0  # batches of it already trained
    loss_sum: float = 0.0
    correct: int = 0
    examples: int = 0
    seconds: float = 0.0
    history: History = field(default_factory=History)

    def finish_epoch(self, test_acc: float) -> dict:
        record = dict(
            epoch=self.epoch + 1,
            train_loss=self.loss_sum / self.examples,
            train_acc=self.correct / self.examples,
            test_acc=test_acc,
            examples=self.examples,
            seconds=self.seconds,
            examples_per_sec=self.examples / self.seconds,
        )
        self.history.epochs.append(record)
        self.epoch, self.batch = self.epoch + 1, 0
        self.loss_sum, self.correct, self.examples, self.seconds = 0.0, 0, 0, 0.0
        return record


#: On a GPU, the steps whose loss and accuracy add up on the device before the host reads
#: them: each read waits for the device to finish its queue, and reading every step would
#: stall it every step. A CPU reads every step (a read costs nothing there), so a NaN
#: loss stops training at its very batch.
GPU_READ_EVERY = 50


def _steps_between_reads(backend) -> int:
    return 1 if backend.device == "cpu" else GPU_READ_EVERY


class _DeviceSums:
    """The loss and the correct predictions of the steps since the last read, summed where
    the arrays live (no host-device synchronisation until :meth:`read_into`)."""

    def __init__(self):
        self.loss = self.correct = None
        self.steps = self.examples = 0

    def add(self, loss, y_hat, y) -> None:
        loss_sum = loss.data * len(y)
        correct = (y_hat.data.argmax(axis=1) == y.data).sum()
        self.loss = loss_sum if self.loss is None else self.loss + loss_sum
        self.correct = correct if self.correct is None else self.correct + correct
        self.steps, self.examples = self.steps + 1, self.examples + len(y)

    def read_into(self, state) -> None:
        """Add the sums to ``state`` (one synchronisation), or stop on a NaN or infinite loss."""
        if not self.steps:
            return
        loss_sum = float(self.loss)
        if not math.isfinite(loss_sum):
            first = state.batch - self.steps + 1
            where = f"batch {state.batch}" if self.steps == 1 else f"batches {first} to {state.batch}"
            raise TrainingDiverged(
                f"loss is {loss_sum / self.examples} at epoch {state.epoch + 1}, {where}; "
                "try a smaller learning rate (the last good checkpoint is kept)"
            )
        state.loss_sum += loss_sum
        state.correct += int(self.correct)
        state.examples += self.examples
        self.__init__()


def _train_epoch(net, train_iter, loss_fn, optimizer, state, progress, num_epochs, stop) -> None:
    net.train()
    train_iter.set_epoch(state.epoch)
    batches = iter(train_iter)
    for _ in range(state.batch):  # resuming mid-epoch: skip what was already trained
        next(batches)
    bar = _progress_bar(len(train_iter), state, progress, num_epochs)
    read_every = _steps_between_reads(current_backend())
    sums = _DeviceSums()
    try:
        for X, y in batches:
            start = time.perf_counter()
            optimizer.zero_grad()
            y_hat = net(X)
            loss = loss_fn(y_hat, y)
            loss.backward()
            optimizer.step()
            sums.add(loss, y_hat, y)
            state.batch += 1
            if sums.steps == read_every:
                sums.read_into(state)
                bar.set_postfix(loss=f"{state.loss_sum / state.examples:.3f}", refresh=False)
            state.seconds += time.perf_counter() - start
            bar.update(1)
            stop.check()  # Ctrl-C or SIGTERM: stop here, between two steps
    except KeyboardInterrupt:
        sums.read_into(state)  # the steps taken so far count in the checkpoint
        raise
    start = time.perf_counter()
    sums.read_into(state)  # the epoch's last steps: the wait for the device counts too
    state.seconds += time.perf_counter() - start
    bar.close()


def _progress_bar(total, state, progress, num_epochs):
    if progress is None:  # a terminal, or a notebook (tqdm.auto picks its widget there)
        from .book import in_notebook

        progress = sys.stderr.isatty() or in_notebook()
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional: no bar without it
        tqdm = None
    if tqdm is None or not progress:
        return _NoBar()
    return tqdm(
        total=total, initial=state.batch, desc=f"epoch {state.epoch + 1}/{num_epochs}", leave=False
    )


class _NoBar:
    def update(self, n):
        pass

    def set_postfix(self, **kwargs):
        pass

    def close(self):
        pass


# ---- files ------------------------------------------------------------------------------
CHECKPOINT, METRICS = "checkpoint.npz", "metrics.jsonl"
#: What a run writes into its folder (``minicnn show`` adds pictures/): what ``overwrite``
#: replaces. Any other file there is left alone.
RUN_FILES = (CHECKPOINT, METRICS, "run.json", "curves.png", "predictions.png", "confusion.png",
             "filters.png", "featuremaps.png", "report.html")  # fmt: skip
WHAT_TO_DO = "delete it, or start the run again (--overwrite; overwrite=True in Python)"


def claim_folder(out, *, resume: bool = False, overwrite: bool = False) -> None:
    """Make ``out`` ready for a run. With ``resume`` it must hold a checkpoint; else it
    must hold no run (:class:`RunExistsError`), unless ``overwrite`` asks to replace
    it: then the run's files (:data:`RUN_FILES`, and its pictures/) are removed first."""
    out = Path(out)
    if resume:
        if not (out / CHECKPOINT).is_file():
            raise FileNotFoundError(f"resume: no checkpoint at {out / CHECKPOINT}")
        return
    holds = describe_run(out)
    if holds is None:
        return
    if not overwrite:
        raise RunExistsError(out, holds)
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    for picture in (out / "pictures").glob("*"):
        if picture.suffix in (".png", ".dot"):
            picture.unlink()


def describe_run(out) -> str | None:
    """What ``out`` holds, in words (``"a lenet run, 3 of 10 epochs done"``), or None
    when it holds no run."""
    out = Path(out)
    if (out / CHECKPOINT).exists():
        try:
            meta, _ = read_checkpoint(out / CHECKPOINT)
        except CheckpointError:
            return "a checkpoint that cannot be read"
        done, planned = meta.get("epoch", 0), meta.get("num_epochs")
        progress = f"{done} of {planned} epoch{'s' * (planned != 1)}" if planned else f"{done} epochs"
        where = f", stopped at batch {meta['batch']} of epoch {done + 1}" if meta.get("batch") else ""
        return f"a {meta.get('model', 'minicnn')} run, {progress} done{where}"
    if (out / METRICS).exists():
        return "the metrics of an earlier run (metrics.jsonl)"
    return None


def _write_metrics(path: Path, epochs: list[dict]) -> None:
    write_text_atomically(path, "".join(json.dumps(epoch) + "\n" for epoch in epochs))


def _recipe(train_iter, optimizer) -> dict:
    """What must not change when a run is resumed: it would not end as it would have."""
    recipe = dict(
        batch_size=train_iter.batch_size,
        training_images=train_iter.num_examples,
        resize=train_iter.resize,
        seed=train_iter.seed,
        optimizer=type(optimizer).__name__,
        **optimizer.state_dict()["hyperparameters"],
    )
    return json.loads(json.dumps(recipe, default=_json_default))  # as a checkpoint keeps it


#: How each part of a recipe reads in a message.
RECIPE_WORDS = {"batch_size": "batch size {}", "lr": "learning rate {}",
                "training_images": "{} training images", "resize": "resize {}",
                "seed": "seed {}", "optimizer": "optimizer {}"}  # fmt: skip


def _recipe_differences(saved: dict, asked: dict) -> list[str]:
    words = lambda key, value: RECIPE_WORDS.get(key, key + " {}").format(value)  # noqa: E731
    return [
        f"{words(key, saved[key])} (asked: {asked.get(key)})"
        for key in saved
        if saved[key] != asked.get(key)
    ]


def save_checkpoint(path: Path, net, optimizer, state: _RunState, recipe=None, num_epochs=None) -> None:
    """Model, optimizer, run state, recipe and the random generator, written durably:
    to a temporary file in the same folder, fsynced, then renamed over the old one."""
    path = Path(path)
    arrays = {f"model/{k}": v for k, v in net.state_dict().items()}
    optim_state = optimizer.state_dict()
    for index, buffers in optim_state["state"].items():
        for key, value in buffers.items():
            arrays[f"optim/{index}/{key}"] = numpy.asarray(value)
    meta = dict(
        model=getattr(net, "name", type(net).__name__),
        epoch=state.epoch,
        batch=state.batch,
        num_epochs=num_epochs,
        recipe=recipe,
        loss_sum=state.loss_sum,
        correct=state.correct,
        examples=state.examples,
        seconds=state.seconds,
        history=state.history.epochs,
        hyperparameters=optim_state["hyperparameters"],
        generator=cpu_generator().bit_generator.state,
    )
    arrays["meta"] = numpy.array(json.dumps(meta, default=_json_default))
    write_atomically(path, lambda file: numpy.savez(file, **arrays))


def read_checkpoint(path) -> tuple[dict, dict]:
    """A checkpoint's record (``meta``) and its arrays, or a :class:`CheckpointError`
    naming the file and what is wrong with it."""
    path = Path(path)
    try:
        with numpy.load(path, allow_pickle=False) as archive:
            names = archive.files
            arrays = {name: archive[name] for name in names if name != "meta"}
            meta_text = str(archive["meta"]) if "meta" in names else None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as error:
        if isinstance(error, ValueError) and "allow_pickle" in str(error) and zipfile.is_zipfile(path):
            raise CheckpointError(
                f"{path} is not a minicnn checkpoint (it holds Python objects, which minicnn "
                f"never saves): {WHAT_TO_DO}"
            ) from None
        why = error if zipfile.is_zipfile(path) else "not an .npz archive"  # NumPy's own
        # words for a file that is no archive would suggest unpickling it
        raise CheckpointError(f"{path} is cut short or is not a checkpoint ({why}): {WHAT_TO_DO}") from None
    try:
        meta = json.loads(meta_text) if meta_text is not None else None
    except json.JSONDecodeError:
        meta = None
    if not isinstance(meta, dict) or "epoch" not in meta:
        raise CheckpointError(f"{path} is not a minicnn checkpoint (no run record in it): {WHAT_TO_DO}")
    return meta, arrays


def _check_network(path: Path, meta: dict, net, weights: dict) -> None:
    """The checkpoint holds ``net``'s network: the same name, and weights that load."""
    from . import models

    saved, wanted = meta.get("model"), getattr(net, "name", None)
    if saved in models.names() and wanted in models.names() and saved != wanted:
        raise CheckpointError(f"{path} holds a {saved} network, not a {wanted}: {WHAT_TO_DO}")
    try:
        net.load_state_dict(weights)
    except (KeyError, ValueError) as error:
        raise CheckpointError(f"{path} does not hold this network's weights ({error}): {WHAT_TO_DO}") from None


def load_network(model: str, checkpoint) -> nn.Module:
    """``mc.models.get(model)`` with the weights a run saved in ``checkpoint``; an error
    naming both networks when the checkpoint holds another one."""
    from . import models

    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}: train one with `minicnn train {model}` "
            "(or give --checkpoint PATH)"
        )
    net = models.get(model)
    meta, arrays = read_checkpoint(path)
    _check_network(path, meta, net, {k[6:]: v for k, v in arrays.items() if k.startswith("model/")})
    return net


def load_checkpoint(path: Path, net, optimizer, recipe: dict | None = None) -> _RunState:
    """Load a checkpoint into ``net`` and ``optimizer`` and return where the run stands.
    With ``recipe`` (what the resumed run asks for), a checkpoint made with another one
    is refused, naming each difference: the run would not end as it would have."""
    path = Path(path)
    meta, arrays = read_checkpoint(path)
    _check_network(path, meta, net, {k[6:]: v for k, v in arrays.items() if k.startswith("model/")})
    saved = meta.get("recipe")
    if recipe is not None and saved:
        differences = _recipe_differences(saved, recipe)
        if differences:
            raise CheckpointError(
                f"{path} was made with {', '.join(differences)}; a run resumed with another "
                "recipe would not end as it would have: resume with its recipe, or train "
                "into another folder (--out DIR)"
            )
    buffers: dict = {}
    for key, value in arrays.items():
        if key.startswith("optim/"):
            _, index, name = key.split("/", 2)
            buffers.setdefault(int(index), {})[name] = value if value.ndim else value.item()
    optimizer.load_state_dict({"hyperparameters": meta["hyperparameters"], "state": buffers})
    cpu_generator().bit_generator.state = meta["generator"]
    return _RunState(
        epoch=meta["epoch"],
        batch=meta["batch"],
        loss_sum=meta["loss_sum"],
        correct=meta["correct"],
        examples=meta["examples"],
        seconds=meta["seconds"],
        history=History(meta["history"]),
    )


def _json_default(value):
    if isinstance(value, numpy.integer | numpy.floating):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot save {type(value).__name__} in a checkpoint")


def plot_history(history: History, path: Path) -> None:
    """The book's figure (``mc.viz.curves``) written to ``path``; nothing without matplotlib."""
    from .viz.curves import curves

    try:
        curves(history, path)
    except ImportError:
        return  # matplotlib is optional: no figure without it
