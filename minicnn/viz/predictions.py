"""Predictions as the book shows them (``predict_ch3``), and the confusion matrix."""

from __future__ import annotations

import numpy

from ..tensor import no_grad
from ._figure import finish, host, subplots


def _predict(net, X) -> numpy.ndarray:
    with no_grad():
        return host(net(X)).argmax(axis=1)


def _eval_mode(net):
    modes = [(module, module.training) for module in net.modules()]
    net.eval()
    return lambda: [object.__setattr__(m, "training", t) for m, t in modes]


def confusion_matrix(net, data_iter, num_classes: int = 10) -> numpy.ndarray:
    """counts[true, predicted] over every example of ``data_iter``, in eval mode: its
    sum is the number of examples and its trace the number predicted right."""
    restore = _eval_mode(net)
    try:
        pairs = [(host(y), _predict(net, X)) for X, y in data_iter]
    finally:
        restore()
    return confusion_counts(pairs, num_classes)


def confusion_counts(pairs, num_classes: int = 10) -> numpy.ndarray:
    """counts[true, predicted] from (labels, predicted classes) pairs, one per batch: what
    :func:`confusion_matrix` counts, from predictions already made (a training run keeps
    its last evaluation's, ``History.test_predictions``)."""
    counts = numpy.zeros((num_classes, num_classes), dtype=numpy.int64)
    for labels, predicted in pairs:
        numpy.add.at(counts, (labels, predicted), 1)
    return counts


def confusion(counts, path=None, classes=None):
    """The confusion matrix as a picture: rows the true class, columns the predicted one,
    each cell's count written in it."""
    from ..data import CLASSES

    counts = numpy.asarray(counts)
    classes = list(classes or CLASSES)
    figure, axes = subplots(figsize=(6.4, 5.6))
    axes.imshow(counts, cmap="Blues")
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            color = "white" if counts[i, j] > counts.max() / 2 else "black"
            axes.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7, color=color)
    axes.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
    axes.set_yticks(range(len(classes)), classes, fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    accuracy = numpy.trace(counts) / max(counts.sum(), 1)
    axes.set_title(f"{counts.sum()} test images, accuracy {accuracy:.3f}")
    return finish(figure, path)


def predictions(net, data_iter, n: int = 12, path=None, classes=None):
    """The book's ``predict_ch3``: the first ``n`` test images with their true label over
    the predicted one; wrong predictions in red."""
    from ..data import CLASSES

    classes = list(classes or CLASSES)
    images, labels, predicted = [], [], []
    restore = _eval_mode(net)
    try:
        for X, y in data_iter:
            need = n - sum(len(batch) for batch in labels)  # only these go through the net
            images.append(host(X[:need]))
            labels.append(host(y[:need]))
            predicted.append(_predict(net, X[:need]))
            if need <= len(y):
                break
    finally:
        restore()
    images, labels = numpy.concatenate(images)[:n], numpy.concatenate(labels)[:n]
    predicted = numpy.concatenate(predicted)[:n]
    columns = min(n, 6)
    rows = -(-n // columns)
    figure, axes = subplots(rows, columns, figsize=(columns * 1.5, rows * 1.9), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k >= len(images):
            continue
        ax.imshow(images[k, 0], cmap="gray")
        right = labels[k] == predicted[k]
        ax.set_title(f"{classes[labels[k]]}\n{classes[predicted[k]]}", fontsize=8,
                     color="black" if right else "red")  # fmt: skip
    figure.suptitle("true label / predicted (wrong in red)", fontsize=9)
    return finish(figure, path)
