# %% [markdown]
# # 7.6 Convolutional Neural Networks (LeNet)
#
# *Dive into Deep Learning*, section 7.6, with minicnn in place of PyTorch: LeNet-5
# layer by layer, trained on Fashion-MNIST with the book's recipe, and what the trained
# network sees.
#
# This page is `examples/lenet.py`, run as a script (`python examples/lenet.py` prints
# the walk-through and the table; `--train` trains; `--plot` writes the pictures) or as
# the notebook `notebooks/7.6_lenet.ipynb`, which trains.

# %%
import numpy as np

import minicnn as mc
from minicnn import nn

page = mc.book.Page("D2L 7.6 Convolutional Neural Networks (LeNet)", model="lenet")
mc.manual_seed(0)

# %% [markdown]
# The backend: `numba` (compiled kernels on the CPU) by default, `cupy` where a GPU
# works, `numpy` for the textbook path, to step through (`page.choose_backend("numpy")`).

# %%
backend = page.choose_backend()

# %% [markdown]
# ## LeNet
#
# Two convolution blocks (a 5×5 convolution, a sigmoid, a 2×2 average pool), then three
# fully connected layers. The first convolution pads by 2, so that 28×28 images work as
# LeNet's 32×32 did.

# %%
net = nn.Sequential(
    nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(),
    nn.AvgPool2d(kernel_size=2, stride=2),
    nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
    nn.AvgPool2d(kernel_size=2, stride=2),
    nn.Flatten(),
    nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
    nn.Linear(120, 84), nn.Sigmoid(),
    nn.Linear(84, 10),
)  # fmt: skip

# %% [markdown]
# One 28×28 image through the network, layer by layer: the book's loop.

# %%
X = mc.tensor(np.random.default_rng(0).random((1, 1, page.size, page.size), dtype=np.float32))
for layer in net:
    X = layer(X)
    print(layer.__class__.__name__, "output shape:\t", X.shape)

# %% [markdown]
# `mc.summary` adds, per layer, the algorithm that computes it, its receptive field,
# its parameters and its multiply-adds.

# %%
print(mc.summary(net, (1, 1, page.size, page.size)))

# %% [markdown]
# ## Training
#
# The book's recipe: learning rate 0.9, batch 256, 10 epochs of plain SGD on the 60000
# training images, xavier-initialised weights (about a minute on 2 cores). The run keeps
# its metrics, checkpoint and report in `runs/lenet/`; running the cell again replaces
# that run (in a notebook `page.train` passes `overwrite=True`; a script asks for
# `--overwrite`).

# %%
run = page.train(net, lr=0.9, batch_size=256, num_epochs=10)

# %% [markdown]
# ## What the trained network sees
#
# The first layer's six 5×5 filters, then the feature maps of one test image in both
# convolutions, then twelve test images with their true and predicted labels.

# %%
if run:  # trained above: not when the data is missing, nor as a script without --train
    image, label = run.test_iter.example(0)
    page.show(mc.viz.filters(net), "filters")
    page.show(mc.viz.feature_maps(net, image), "featuremaps")
    page.show(mc.viz.predictions(net, run.test_iter), "predictions")
