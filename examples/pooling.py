# %% [markdown]
# # 7.5 Pooling
#
# *Dive into Deep Learning*, section 7.5, with minicnn in place of PyTorch: maximum and
# average pooling, their padding and stride, and pooling over several channels.
#
# This page is `examples/pooling.py`, run as a script (`--plot` also writes its picture)
# or as the notebook `notebooks/7.5_pooling.ipynb`.

# %%
import numpy as np

import minicnn as mc
from minicnn import nn
from minicnn.functional import pool2d

page = mc.book.Page("D2L 7.5 Pooling")
mc.manual_seed(0)

# %% [markdown]
# The backend: `numba` by default, `cupy` where a GPU works, `numpy` for the textbook
# path (`page.choose_backend("numpy")`).

# %%
backend = page.choose_backend()

# %% [markdown]
# ## Maximum pooling and average pooling
#
# `pool2d` is the book's loop: each output is the maximum, or the mean, of its window.
# It is written with Tensor operations, so it has a gradient too.

# %%
X = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
print("max pooling 2x2:\n", pool2d(X, (2, 2)).numpy())
print("average pooling 2x2:\n", pool2d(X, (2, 2), "avg").numpy())

# %%
page.show(mc.viz.pooling(), "pooling")

# %% [markdown]
# ## Padding and stride
#
# The framework's layer takes a batch with channels. Its stride defaults to the window's
# size, so windows tile the input without overlapping.

# %%
X = np.arange(16, dtype=np.float32).reshape((1, 1, 4, 4))
print("X =\n", X)
print("MaxPool2d(3):\n", nn.MaxPool2d(3)(X).numpy())

# %% [markdown]
# Padding and stride, given by hand, as for a convolution; and a rectangular window.

# %%
print("MaxPool2d(3, padding=1, stride=2):\n", nn.MaxPool2d(3, padding=1, stride=2)(X).numpy())
pool2d = nn.MaxPool2d((2, 3), stride=(2, 3), padding=(0, 1))
print("MaxPool2d((2, 3), stride=(2, 3), padding=(0, 1)):\n", pool2d(X).numpy())

# %% [markdown]
# ## Multiple channels
#
# Pooling works on each channel alone: as many channels come out as go in.

# %%
X = mc.functional.cat((mc.tensor(X), mc.tensor(X + 1)), 1)
pool2d = nn.MaxPool2d(3, padding=1, stride=2)
print("two channels in, two channels out:\n", pool2d(X).numpy())
