# %% [markdown]
# # 8.7 Densely Connected Networks (DenseNet)
#
# *Dive into Deep Learning*, section 8.7, with minicnn in place of PyTorch: dense blocks,
# whose every convolution's output is concatenated onto its input, transition layers,
# and a short training run.
#
# This page is `examples/densenet.py`, run as a script (`python examples/densenet.py`
# prints the walk-through and the table; `--train` trains) or as the notebook
# `notebooks/8.7_densenet.ipynb`, which trains.

# %%
import minicnn as mc
from minicnn import nn
from minicnn.nn import functional as F

page = mc.book.Page("D2L 8.7 Densely Connected Networks (DenseNet)", model="densenet")
mc.manual_seed(0)

# %% [markdown]
# The backend: `numba` (compiled kernels on the CPU) by default, `cupy` where a GPU
# works, `numpy` for the textbook path, to step through (`page.choose_backend("numpy")`).

# %%
backend = page.choose_backend()

# %% [markdown]
# ## Dense blocks
#
# ResNet's modified order of batch norm, ReLU and convolution; each block's output is
# concatenated onto its input on the channel axis, so the channels grow by
# `num_channels` per convolution.


# %%
def conv_block(input_channels, num_channels):
    return nn.Sequential(
        nn.BatchNorm2d(input_channels), nn.ReLU(),
        nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1),
    )  # fmt: skip


class DenseBlock(nn.Module):
    def __init__(self, num_convs, input_channels, num_channels):
        super().__init__()
        layer = []
        for i in range(num_convs):
            layer.append(conv_block(num_channels * i + input_channels, num_channels))
        self.net = nn.Sequential(*layer)

    def forward(self, X):
        for blk in self.net:
            Y = blk(X)
            # Concatenate the input and output of each block on the channel dimension
            X = F.cat((X, Y), dim=1)
        return X


# %% [markdown]
# ## Transition layers
#
# A 1×1 convolution cuts the channels; a 2×2 average pool of stride 2 halves height and
# width.


# %%
def transition_block(input_channels, num_channels):
    return nn.Sequential(
        nn.BatchNorm2d(input_channels), nn.ReLU(),
        nn.Conv2d(input_channels, num_channels, kernel_size=1),
        nn.AvgPool2d(kernel_size=2, stride=2),
    )  # fmt: skip


# %% [markdown]
# ## DenseNet model
#
# ResNet's stem, four dense blocks of four convolutions growing by 32 channels each,
# a transition layer halving the channels between them, and the global pooling head.

# %%
b1 = nn.Sequential(
    nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3),
    nn.BatchNorm2d(64), nn.ReLU(),
    nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
)  # fmt: skip
# num_channels: the current number of channels
num_channels, growth_rate = 64, 32
num_convs_in_dense_blocks = [4, 4, 4, 4]
blks = []
for i, num_convs in enumerate(num_convs_in_dense_blocks):
    blks.append(DenseBlock(num_convs, num_channels, growth_rate))
    # The number of output channels in the previous dense block
    num_channels += num_convs * growth_rate
    # A transition layer that halves the number of channels between the dense blocks
    if i != len(num_convs_in_dense_blocks) - 1:
        blks.append(transition_block(num_channels, num_channels // 2))
        num_channels = num_channels // 2
net = nn.Sequential(
    b1, *blks,
    nn.BatchNorm2d(num_channels), nn.ReLU(),
    nn.AdaptiveAvgPool2d((1, 1)),
    nn.Flatten(),
    nn.Linear(num_channels, 10),
)  # fmt: skip

# %% [markdown]
# One 96×96 image through it, block by block (the book's loop), then `mc.summary`.

# %%
page.walk_through(net)
print(mc.summary(net, (1, 1, page.size, page.size)))

# %% [markdown]
# ## Training
#
# The book's recipe, learning rate 0.1, batch 256, 10 epochs at 96×96, takes hours on 2
# cores (`minicnn train densenet` runs it). Here a short recipe of about a quarter of a
# minute: the first 4096 images at 32×32, batch 64, one epoch, the book's learning rate.
#
# The run keeps its metrics, checkpoint and report in `runs/densenet/`; running the cell
# again replaces that run (in a notebook `page.train` passes `overwrite=True`; a script
# asks for `--overwrite`).

# %%
run = page.train(net, lr=0.1, batch_size=64, num_epochs=1, resize=32, limit=4096)

# %% [markdown]
# Twelve test images, with their true and predicted labels.

# %%
if run:  # trained above: not when the data is missing, nor as a script without --train
    page.show(mc.viz.predictions(net, run.test_iter), "predictions")
