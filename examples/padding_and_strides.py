# %% [markdown]
# # 7.3 Padding and Stride
#
# *Dive into Deep Learning*, section 7.3, with minicnn in place of PyTorch: how the
# kernel, the padding and the stride set a convolution's output shape,
#
#     OH = (H + 2*ph - kh) // sh + 1,   OW = (W + 2*pw - kw) // sw + 1
#
# This page is `examples/padding_and_strides.py`, run as a script (`--plot` also writes
# its picture) or as the notebook `notebooks/7.3_padding_and_strides.ipynb`.

# %%
import numpy as np

import minicnn as mc
from minicnn import nn

page = mc.book.Page("D2L 7.3 Padding and Stride")
mc.manual_seed(0)

# %% [markdown]
# The backend: `numba` by default, `cupy` where a GPU works, `numpy` for the textbook
# path (`page.choose_backend("numpy")`).

# %%
backend = page.choose_backend()

# %% [markdown]
# ## Padding
#
# `comp_conv2d` runs a layer on one single-channel image: the layer wants a batch of
# images with channels, (1, 1, height, width), and the shape that comes out loses the
# batch and channel axes again.


# %%
def comp_conv2d(conv2d, X):
    """The output shape (height, width) of ``conv2d`` on the one image ``X``."""
    X = X.reshape((1, 1) + X.shape)
    Y = conv2d(X)
    return Y.shape[2:]


# %% [markdown]
# A 3×3 kernel with one row and column of zeros on every side keeps an 8×8 input 8×8;
# a 5×3 kernel needs two rows and one column.

# %%
X = np.random.default_rng(0).random((8, 8), dtype=np.float32)
conv2d = nn.Conv2d(1, 1, kernel_size=3, padding=1)
print("8x8 input, kernel 3, padding 1: output", comp_conv2d(conv2d, X), "(book: (8, 8))")
conv2d = nn.Conv2d(1, 1, kernel_size=(5, 3), padding=(2, 1))
print("8x8 input, kernel (5, 3), padding (2, 1): output", comp_conv2d(conv2d, X), "(book: (8, 8))")

# %% [markdown]
# ## Stride
#
# A stride of 2 moves the window two cells at a time and halves height and width.
# The picture shows the padded input (grey), the windows of the first two outputs, and
# the arithmetic.

# %%
conv2d = nn.Conv2d(1, 1, kernel_size=3, padding=1, stride=2)
print("8x8 input, kernel 3, padding 1, stride 2: output", comp_conv2d(conv2d, X), "(book: (4, 4))")
page.show(mc.viz.padding_and_stride(kernel=3, padding=1, stride=2), "padding_and_stride")

# %% [markdown]
# Each direction may have its own kernel side, padding and stride:
# (8 + 0 - 3) // 3 + 1 = 2 rows, (8 + 2 - 5) // 4 + 1 = 2 columns.

# %%
conv2d = nn.Conv2d(1, 1, kernel_size=(3, 5), padding=(0, 1), stride=(3, 4))
shape = comp_conv2d(conv2d, X)
print("8x8 input, kernel (3, 5), padding (0, 1), stride (3, 4): output", shape, "(book: (2, 2))")
