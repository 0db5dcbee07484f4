# %% [markdown]
# # 7.4 Multiple Input and Multiple Output Channels
#
# *Dive into Deep Learning*, section 7.4, with minicnn in place of PyTorch: summing the
# cross-correlations over input channels, a kernel per output channel, and the 1×1
# convolution as a matrix product.
#
# This page is `examples/channels.py`, run as a script (`--plot` also writes its picture)
# or as the notebook `notebooks/7.4_channels.ipynb`.

# %%
import numpy as np

import minicnn as mc
from minicnn.functional import corr2d_multi_in, corr2d_multi_in_out, corr2d_multi_in_out_1x1

page = mc.book.Page("D2L 7.4 Multiple Input and Multiple Output Channels")
mc.manual_seed(0)

# %% [markdown]
# The backend: `numba` by default, `cupy` where a GPU works, `numpy` for the textbook
# path (`page.choose_backend("numpy")`).

# %%
backend = page.choose_backend()

# %% [markdown]
# ## Multiple input channels
#
# One kernel per input channel; the channels' cross-correlations add up
# (`corr2d_multi_in`, in `minicnn/functional/conv.py`).

# %%
X = np.array([[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]],
              [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]])  # fmt: skip
K = np.array([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])
print("two input channels:\n", corr2d_multi_in(X, K).numpy())

# %% [markdown]
# ## Multiple output channels
#
# A stack of such kernels, one per output channel: the kernel becomes
# (output channels, input channels, height, width).

# %%
K = np.stack((K, K + 1, K + 2))
print("kernel shape for three output channels:", K.shape)
print("three output channels:\n", corr2d_multi_in_out(X, K).numpy())

# %% [markdown]
# ## 1×1 convolutional layer
#
# A 1×1 kernel mixes channels pixel by pixel: a fully connected layer applied at every
# pixel, a matrix product of (output channels, input channels) by (input channels,
# pixels). Three ways, one answer: the loops, the matrix product, and the layer's
# `conv2d`, which computes every convolution as a matrix product after im2col.

# %%
rng = np.random.default_rng(0)
X = rng.normal(0, 1, (3, 3, 3))
K = rng.normal(0, 1, (2, 3, 1, 1))
Y1 = corr2d_multi_in_out_1x1(X, K).numpy()
Y2 = corr2d_multi_in_out(X, K).numpy()
Y3 = mc.functional.conv2d(X[None], K).numpy()[0]
print("1x1 convolution as a matrix product, |difference| summed:", np.abs(Y1 - Y2).sum())
print("and as im2col conv2d:", np.abs(Y1 - Y3).sum())

# %% [markdown]
# im2col unfolds every window into a column, so a convolution of any kernel becomes one
# matrix product; col2im folds columns back, adding where windows overlap, which is
# what backward needs.

# %%
page.show(mc.viz.im2col(), "im2col")
