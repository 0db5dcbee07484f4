"""``mc.viz``: the pictures a learner needs, drawn from minicnn's own engine.

=======================  ===============================================================
graph.py                 ``graph(loss)``: the autograd graph that backward walks
curves.py                ``curves(history)``: the book's training figure
mechanics.py             the chapter's mechanics: ``corr2d``, ``padding_and_stride``,
                         ``im2col`` (and col2im), ``pooling``
inside.py                what a trained network sees: ``filters``, ``feature_maps``,
                         ``saliency``, ``grad_cam``
predictions.py           ``predictions`` (the book's predict_ch3), ``confusion``
report.py                ``write_report``: one self-contained HTML page per run
=======================  ===============================================================

Each picture function returns its matplotlib figure and, given ``path``, writes it
there too (PNG, or whatever the suffix says), atomically: to a temporary file in the
same folder, then renamed, as the checkpoints are. The numbers behind each picture have
a function of their own (``layer_outputs``, ``saliency_map``, ``grad_cam_map``,
``confusion_matrix``), which the tests check. Arrays of any backend are brought to the
host for drawing. ``minicnn show WHAT MODEL`` draws them from the command line.
"""

from __future__ import annotations

from .curves import curves
from .graph import Graph, graph
from .inside import (
    feature_maps,
    filters,
    grad_cam,
    grad_cam_map,
    layer_outputs,
    saliency,
    saliency_map,
)
from .mechanics import corr2d, im2col, padding_and_stride, pooling
from .predictions import confusion, confusion_counts, confusion_matrix, predictions
from .report import read_metrics, write_report

__all__ = [
    "Graph",
    "confusion",
    "confusion_counts",
    "confusion_matrix",
    "corr2d",
    "curves",
    "feature_maps",
    "filters",
    "grad_cam",
    "grad_cam_map",
    "graph",
    "im2col",
    "layer_outputs",
    "padding_and_stride",
    "pooling",
    "predictions",
    "read_metrics",
    "saliency",
    "saliency_map",
    "write_report",
]
