"""The book's training figure (D2L 7.6's Animator, drawn once the run ends)."""

from __future__ import annotations

from ._figure import finish, subplots


def curves(history, path=None):
    """Train loss, train accuracy and test accuracy against the epoch, as the book draws
    them. ``history`` is a run's :class:`~minicnn.train.History` or its list of epoch
    records (``mc.viz.read_metrics(run_dir)`` reads them back from a run's folder)."""
    epochs = getattr(history, "epochs", history)
    if not epochs:
        raise ValueError("curves: the history holds no finished epoch")
    figure, axes = subplots(figsize=(4.5, 3.2))
    numbers = [e["epoch"] for e in epochs]
    for key, style in (("train_loss", ".-"), ("train_acc", "m.--"), ("test_acc", "g.-.")):
        axes.plot(numbers, [e[key] for e in epochs], style, label=key.replace("_", " "))
    axes.set_xlabel("epoch")
    axes.set_xlim(0.5, max(numbers) + 0.5)
    axes.grid(True)
    axes.legend()
    return finish(figure, path)
