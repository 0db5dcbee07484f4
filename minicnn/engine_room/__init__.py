"""The engine room: everything minicnn does to be fast. Read this after the textbook path.

The textbook path is the chapter itself, and it is complete without this package:
``tensor.py`` (autograd), ``functional/`` (each operation's forward and backward, the
chapter's algorithm: conv2d as im2col and one matrix product, its backward as two more
products and col2im) and ``backend/numpy_.py`` (the reference kernels, vectorised
NumPy). A reader who follows those files meets one algorithm per operation: no choice
of algorithm, no threads of its own, no reused memory.

This package holds the speed, behind a backend method per operation (conv2d's plan
then calls about twenty of the fast backend's own; backend/interface.py declares them
all):

- ``tuning.py``: the engine room's speed thresholds, in one table (the textbook path's
  bound on its columns' memory, ``CHUNK_BYTES``, is in ``functional/conv.py``);
- ``conv.py``: conv2d's algorithms as a table, one small class a row, and the plan
  (``backend.conv2d_plan``) that takes the first row that applies to each pass: im2col
  in chunks, the batch cut into parts among threads, on wide rows, "taps" (y as a sum of shifted
  products), "direct" loops for a single input channel, dx as a convolution of dy,
  Winograd F(2x2, 3x3) and F(2x2, 5x5);
- ``winograd.py``: Winograd's algebra, the transform matrices and their adjoints;
  ``winograd_codegen.py`` writes ``_winograd_kernels.py``, the Numba kernels, unrolled;
- ``numba_.py``: the numba backend, NumPy arrays with the hot loops compiled by Numba
  (``numba_kernels.py``: the loops themselves); ``team.py``, its own threads (one team,
  no spinning pools; its docstring says what a *part* and a *chunk* of work are);
  ``allocator.py``, its buffer pool (a step reuses the last one's memory); ``adopt.py``,
  when a leaf may keep a gradient without a copy;
- ``cupy_.py``, ``cupy_kernels.py``: the cupy backend, the reference's kernels on a GPU
  with the window loops and batch norm's passes as CUDA kernels, conv2d's algorithm from
  ``conv.py``, and leaf gradients kept uncopied (``adopt.py``);
- ``fallback.py``: the decorator with which each fast method of both backends says when
  NumPy's kernel runs instead.

``mc.config.turned_off("winograd")`` (``MINICNN_CONV_OFF=winograd``) turns a row of
conv.py's table off; ``mc.config.reference = True`` (or ``MINICNN_REFERENCE=1``) turns
them all off on every backend: each layer then computes the chapter's way, and the tests
hold every way equal. ``mc.summary`` shows per layer which rows run.
"""
