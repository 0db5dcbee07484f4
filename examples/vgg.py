# %% [markdown]
# # 8.2 Networks Using Blocks (VGG)
#
# *Dive into Deep Learning*, section 8.2, with minicnn in place of PyTorch: VGG-11 built
# from blocks, block by block, and a short training run of its narrower version.
#
# This page is `examples/vgg.py`, run as a script (`python examples/vgg.py` prints the
# walk-through and the table; `--train` trains) or as the notebook
# `notebooks/8.2_vgg.ipynb`, which trains.

# %%
import minicnn as mc
from minicnn import nn

page = mc.book.Page(
    "D2L 8.2 Networks Using Blocks (VGG)", model="vgg11",
    options={"--ratio": dict(type=int, default=4, help="the trained network's widths divided by this")},
)  # fmt: skip
mc.manual_seed(0)

# %% [markdown]
# The backend: `numba` (compiled kernels on the CPU) by default, `cupy` where a GPU
# works, `numpy` for the textbook path, to step through (`page.choose_backend("numpy")`).

# %%
backend = page.choose_backend()

# %% [markdown]
# ## VGG blocks
#
# A block is a run of 3×3 convolutions with ReLU (padding 1 keeps the size), then a 2×2
# max pool of stride 2 that halves height and width.


# %%
def vgg_block(num_convs, in_channels, out_channels):
    layers = []
    for _ in range(num_convs):
        layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))
        layers.append(nn.ReLU())
        in_channels = out_channels
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


# %% [markdown]
# ## VGG network
#
# VGG-11: five blocks, given as (number of convolutions, output channels), then
# AlexNet's fully connected head.

# %%
conv_arch = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))


def vgg(conv_arch):
    conv_blks = []
    in_channels = 1
    for num_convs, out_channels in conv_arch:
        conv_blks.append(vgg_block(num_convs, in_channels, out_channels))
        in_channels = out_channels
    return nn.Sequential(
        *conv_blks, nn.Flatten(),
        nn.Linear(out_channels * 7 * 7, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 10),
    )  # fmt: skip


net = vgg(conv_arch)

# %% [markdown]
# One 224×224 image through it, block by block: each block halves height and width.

# %%
page.walk_through(net)

# %% [markdown]
# ## Training
#
# VGG-11 computes far more than AlexNet, so the book trains a narrower network: every
# width divided by 4.

# %%
ratio = page.args.ratio
small_conv_arch = [(pair[0], pair[1] // ratio) for pair in conv_arch]
net = vgg(small_conv_arch)
print(mc.summary(net, (1, 1, page.size, page.size)))

# %% [markdown]
# The book's recipe, learning rate 0.05, batch 128, 10 epochs at 224×224, takes hours on
# 2 cores (`minicnn train vgg11` runs it). Here a short recipe of about two minutes that
# leaves chance level: the first 4096 images, batch 32, one epoch, the book's learning
# rate (VGG's head needs 224×224 exactly).
#
# The run keeps its metrics, checkpoint and report in `runs/vgg11/`; running the cell
# again replaces that run (in a notebook `page.train` passes `overwrite=True`; a script
# asks for `--overwrite`).

# %%
run = page.train(net, lr=0.05, batch_size=32, num_epochs=1, resize=224, limit=4096)

# %% [markdown]
# Twelve test images, with their true and predicted labels.

# %%
if run:  # trained above: not when the data is missing, nor as a script without --train
    page.show(mc.viz.predictions(net, run.test_iter), "predictions")
