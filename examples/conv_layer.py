# %% [markdown]
# # 7.2 Convolutions for Images
#
# *Dive into Deep Learning*, section 7.2, with minicnn in place of PyTorch: the
# cross-correlation, a convolutional layer built on it, edge detection, and a kernel
# learned from data.
#
# This page is `examples/conv_layer.py`, run as a script (`python examples/conv_layer.py`;
# `--plot` also writes its picture) or as the notebook `notebooks/7.2_conv_layer.ipynb`,
# which `make notebooks` builds from it.

# %%
import numpy as np

import minicnn as mc
from minicnn import nn
from minicnn.functional import corr2d

page = mc.book.Page("D2L 7.2 Convolutions for Images")
mc.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# minicnn computes on one of three backends: `numba` (compiled kernels on the CPU, the
# default), `numpy` (the textbook path in plain NumPy, to step through in a debugger) or
# `cupy` (an NVIDIA GPU, as on a hosted notebook service with one). The next cell takes
# `cupy` only where a GPU works; pass a name to choose, e.g. `page.choose_backend("numpy")`.

# %%
backend = page.choose_backend()

# %% [markdown]
# ## The cross-correlation operation
#
# `corr2d` slides the kernel `K` over the input `X`; each output element is the sum of
# the window times the kernel (`minicnn/functional/conv.py`):
#
#     Y[i, j] = sum over (a, b) of X[i + a, j + b] * K[a, b]

# %%
X = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
K = np.array([[0.0, 1.0], [2.0, 3.0]])
print("corr2d(X, K) =\n", corr2d(X, K).numpy())

# %% [markdown]
# The book's figure: the shaded window and the kernel give the first output,
# 0×0 + 1×1 + 3×2 + 4×3 = 19.

# %%
page.show(mc.viz.corr2d(), "corr2d")

# %% [markdown]
# ## Convolutional layers
#
# A layer holds the kernel as a weight and adds a scalar bias. `corr2d` is written with
# Tensor operations (a slice, a product and a sum per output element, then a stack), so
# autograd derives its backward, and the book's layer can learn its kernel.


# %%
class Conv2D(nn.Module):
    def __init__(self, kernel_size):
        super().__init__()
        self.weight = nn.Parameter(rng.random(kernel_size))
        self.bias = nn.Parameter(np.zeros(1))

    def forward(self, x):
        return corr2d(x, self.weight) + self.bias


# %% [markdown]
# ## Object edge detection in images
#
# A 6×8 image, white (1) with a black (0) band in columns 2 to 5, and a 1×2 kernel that
# answers 0 where neighbours agree and ±1 where the colour changes.

# %%
X = np.ones((6, 8))
X[:, 2:6] = 0
print("edge image:\n", X)
K = np.array([[1.0, -1.0]])
Y = corr2d(X, K).numpy()
print("edges (1: white to black, -1: black to white):\n", Y)

# %% [markdown]
# The kernel only sees vertical edges: the transposed image has none.

# %%
print("the transposed image has no vertical edges:\n", corr2d(X.T, K).numpy())

# %% [markdown]
# ## Learning a kernel
#
# Can the kernel be learned from `X` and `Y` alone? Start from a random kernel and take
# plain gradient steps on the squared error, the update written by hand, as the book does.


# %%
def learn_kernel(conv2d, X, Y, steps=10, lr=3e-2, log=print):
    """The book's loop: the squared error's gradient, then every parameter moved
    against it by hand."""
    for i in range(steps):
        Y_hat = conv2d(X)
        loss = ((Y_hat - Y) ** 2).sum()
        conv2d.zero_grad()
        loss.backward()
        for param in conv2d.parameters():
            param.data -= lr * param.grad.data  # the update, by hand
        if (i + 1) % 2 == 0:
            log(f"epoch {i + 1}, loss {loss.item():.3f}")
    return conv2d


# %% [markdown]
# First with the book's `Conv2D` above, on `corr2d`'s loops: autograd finds the gradient
# of every slice, product and sum. Its bias takes the error of all 42 outputs at once,
# so the book's step of 3e-2 would make the loss grow without end: a step of 1e-2, for
# twice as many steps.

# %%
conv2d = learn_kernel(Conv2D(kernel_size=(1, 2)), X, Y, steps=20, lr=1e-2)
print("learned kernel, Conv2D over corr2d:", conv2d.weight.numpy(), "bias", conv2d.bias.numpy())

# %% [markdown]
# Then with the framework's layer, `nn.Conv2d`, which computes the same sums through
# im2col and one matrix product. It takes a batch of images with channels,
# (batch, channels, height, width); the book leaves out its bias.

# %%
mc.manual_seed(0)
conv2d = nn.Conv2d(1, 1, kernel_size=(1, 2), bias=False).double()
learn_kernel(conv2d, X.reshape((1, 1, 6, 8)), Y.reshape((1, 1, 6, 7)))
print("learned kernel:", conv2d.weight.numpy().reshape((1, 2)))

# %% [markdown]
# Both end near the kernel `[[1, -1]]` that made `Y`.
