"""The engine room: everything minicnn does to be fast. Read this after the textbook path.

The textbook path is the chapter itself, and it is complete without this package:
``tensor.py`` (autograd), ``functional/`` (each operation's forward and backward, the
chapter's algorithm: conv2d as im2col and one matrix product, its backward as two more
products and col2im) and ``backend/numpy_.py`` (the reference kernels, vectorised
NumPy). A reader who follows those files never meets a performance decision.

This package holds the speed, behind one backend method per operation:

====================  ==================================================================
``tuning.py``         every speed threshold of the engine, in one table
``conv.py``           conv2d's algorithm per layer (``backend.conv2d_plan``): im2col in
                      chunks shared among threads, "taps" (y as a sum of shifted
                      products), dx as a convolution of dy, Winograd F(2x2, 3x3) and
                      F(2x2, 5x5)
``winograd.py``       Winograd's algebra: the transform matrices and their adjoints
``winograd_codegen.py``, ``_winograd_kernels.py``
                      the Numba kernels generated from that algebra
``numba_.py``         the numba backend: NumPy arrays, hot loops compiled by Numba
``team.py``           the numba backend's own threads (one team, no spinning pools)
``pool.py``           the numba backend's buffer pool: a step reuses the last's memory
``cupy_.py``, ``cupy_kernels.py``
                      the cupy backend: the reference on a GPU, window loops as CUDA
====================  ==================================================================

``mc.config.reference = True`` (or ``MINICNN_REFERENCE=1``) turns the algorithm choices
off on every backend: each layer then computes the chapter's way, and the tests hold
both ways equal. ``mc.summary`` shows per layer which algorithm runs.
"""
