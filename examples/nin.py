# %% [markdown]
# # 8.3 Network in Network (NiN)
#
# *Dive into Deep Learning*, section 8.3, with minicnn in place of PyTorch: NiN built
# from blocks whose 1×1 convolutions act as a small fully connected network at every
# pixel, and global average pooling in place of the fully connected head.
#
# This page is `examples/nin.py`, run as a script (`python examples/nin.py` prints the
# walk-through and the table; `--train` trains) or as the notebook
# `notebooks/8.3_nin.ipynb`, which trains.

# %%
import minicnn as mc
from minicnn import nn

page = mc.book.Page("D2L 8.3 Network in Network (NiN)", model="nin")
mc.manual_seed(0)

# %% [markdown]
# The backend: `numba` (compiled kernels on the CPU) by default, `cupy` where a GPU
# works, `numpy` for the textbook path, to step through (`page.choose_backend("numpy")`).

# %%
backend = page.choose_backend()

# %% [markdown]
# ## NiN blocks
#
# An ordinary convolution, then two 1×1 convolutions, each followed by a ReLU.


# %%
def nin_block(in_channels, out_channels, kernel_size, strides, padding):
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, strides, padding), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
    )  # fmt: skip


# %% [markdown]
# ## NiN model
#
# AlexNet's window sizes and channels; the last block has one channel per class, and
# global average pooling turns each channel into that class's score.

# %%
net = nn.Sequential(
    nin_block(1, 96, kernel_size=11, strides=4, padding=0),
    nn.MaxPool2d(3, stride=2),
    nin_block(96, 256, kernel_size=5, strides=1, padding=2),
    nn.MaxPool2d(3, stride=2),
    nin_block(256, 384, kernel_size=3, strides=1, padding=1),
    nn.MaxPool2d(3, stride=2),
    nn.Dropout(0.5),
    # There are 10 label classes: one channel each
    nin_block(384, 10, kernel_size=3, strides=1, padding=1),
    nn.AdaptiveAvgPool2d((1, 1)),
    # Transform the four-dimensional output into two-dimensional output, (batch size, 10)
    nn.Flatten(),
)

# %% [markdown]
# One 224×224 image through it, block by block (the book's loop), then `mc.summary`.

# %%
page.walk_through(net)
print(mc.summary(net, (1, 1, page.size, page.size)))

# %% [markdown]
# ## Training
#
# The book's recipe, learning rate 0.1, batch 128, 10 epochs of plain SGD at 224×224,
# takes hours on 2 cores (`minicnn train nin` runs it). Here a short recipe of about half
# a minute: the first 4096 images at 67×67 (the smallest side NiN takes), batch 64,
# three epochs.
#
# With the book's SGD, NiN stays at chance for thousands of steps: its xavier-initialised
# activations shrink block by block (their standard deviation is 0.03 after the third
# block at 96×96), and so do the gradients. Nothing short leaves chance that way (SGD at
# learning rates 0.1 to 1.0, up to 768 steps, were tried). So this run takes Adam (Kingma
# & Ba), learning rate 0.001, whose steps do not shrink with the gradients.
#
# The run keeps its metrics, checkpoint and report in `runs/nin/`; running the cell
# again replaces that run (in a notebook `page.train` passes `overwrite=True`; a script
# asks for `--overwrite`).

# %%
run = page.train(net, lr=0.001, batch_size=64, num_epochs=3, resize=67, limit=4096, optimizer="adam")

# %% [markdown]
# Twelve test images, with their true and predicted labels.

# %%
if run:  # trained above: not when the data is missing, nor as a script without --train
    page.show(mc.viz.predictions(net, run.test_iter), "predictions")
