# %% [markdown]
# # 8.4 Multi-Branch Networks (GoogLeNet)
#
# *Dive into Deep Learning*, section 8.4, with minicnn in place of PyTorch: the Inception
# block's four parallel paths, GoogLeNet stage by stage, and a short training run.
#
# This page is `examples/googlenet.py`, run as a script (`python examples/googlenet.py`
# prints the walk-through and the table; `--train` trains) or as the notebook
# `notebooks/8.4_googlenet.ipynb`, which trains.

# %%
import minicnn as mc
from minicnn import nn
from minicnn.nn import functional as F

page = mc.book.Page("D2L 8.4 Multi-Branch Networks (GoogLeNet)", model="googlenet")
mc.manual_seed(0)

# %% [markdown]
# The backend: `numba` (compiled kernels on the CPU) by default, `cupy` where a GPU
# works, `numpy` for the textbook path, to step through (`page.choose_backend("numpy")`).

# %%
backend = page.choose_backend()

# %% [markdown]
# ## Inception blocks
#
# Four paths over the same input, concatenated on the channel axis: `c1` channels of a
# 1×1 convolution; `c2` a 1×1 then a 3×3 convolution; `c3` a 1×1 then a 5×5
# convolution; `c4` a 3×3 max pool then a 1×1 convolution. Each path keeps height and
# width.


# %%
class Inception(nn.Module):
    def __init__(self, in_channels, c1, c2, c3, c4):
        super().__init__()
        # Path 1: a single 1x1 convolutional layer
        self.p1_1 = nn.Conv2d(in_channels, c1, kernel_size=1)
        # Path 2: a 1x1 convolutional layer followed by a 3x3 convolutional layer
        self.p2_1 = nn.Conv2d(in_channels, c2[0], kernel_size=1)
        self.p2_2 = nn.Conv2d(c2[0], c2[1], kernel_size=3, padding=1)
        # Path 3: a 1x1 convolutional layer followed by a 5x5 convolutional layer
        self.p3_1 = nn.Conv2d(in_channels, c3[0], kernel_size=1)
        self.p3_2 = nn.Conv2d(c3[0], c3[1], kernel_size=5, padding=2)
        # Path 4: a 3x3 max pooling layer followed by a 1x1 convolutional layer
        self.p4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.p4_2 = nn.Conv2d(in_channels, c4, kernel_size=1)

    def forward(self, x):
        p1 = F.relu(self.p1_1(x))
        p2 = F.relu(self.p2_2(F.relu(self.p2_1(x))))
        p3 = F.relu(self.p3_2(F.relu(self.p3_1(x))))
        p4 = F.relu(self.p4_2(self.p4_1(x)))
        # Concatenate the outputs on the channel dimension
        return F.cat((p1, p2, p3, p4), dim=1)


# %% [markdown]
# ## GoogLeNet model
#
# A stem of plain convolutions, then nine Inception blocks in three stages, each stage
# ending in a max pool that halves height and width; global average pooling, and one
# Linear layer.

# %%
b1 = nn.Sequential(
    nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3), nn.ReLU(),
    nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
)  # fmt: skip
b2 = nn.Sequential(
    nn.Conv2d(64, 64, kernel_size=1), nn.ReLU(),
    nn.Conv2d(64, 192, kernel_size=3, padding=1), nn.ReLU(),
    nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
)  # fmt: skip
b3 = nn.Sequential(
    Inception(192, 64, (96, 128), (16, 32), 32),
    Inception(256, 128, (128, 192), (32, 96), 64),
    nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
)
b4 = nn.Sequential(
    Inception(480, 192, (96, 208), (16, 48), 64),
    Inception(512, 160, (112, 224), (24, 64), 64),
    Inception(512, 128, (128, 256), (24, 64), 64),
    Inception(512, 112, (144, 288), (32, 64), 64),
    Inception(528, 256, (160, 320), (32, 128), 128),
    nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
)
b5 = nn.Sequential(
    Inception(832, 256, (160, 320), (32, 128), 128),
    Inception(832, 384, (192, 384), (48, 128), 128),
    nn.AdaptiveAvgPool2d((1, 1)),
    nn.Flatten(),
)
net = nn.Sequential(b1, b2, b3, b4, b5, nn.Linear(1024, 10))

# %% [markdown]
# One 96×96 image through it, stage by stage (the book's loop), then `mc.summary`.

# %%
page.walk_through(net)
print(mc.summary(net, (1, 1, page.size, page.size)))

# %% [markdown]
# ## Training
#
# The book's recipe, learning rate 0.1, batch 128, 10 epochs of plain SGD at 96×96, takes
# hours on 2 cores (`minicnn train googlenet` runs it). Here a short recipe of about half a
# minute: the first 4096 images at 32×32, batch 64, two epochs.
#
# Twenty-two layers without batch norm start slowly with the book's SGD: 384 steps at
# 32×32 barely left chance (test accuracy 0.21). So this run takes Adam (Kingma & Ba),
# learning rate 0.001, whose steps do not shrink with the gradients.
#
# The run keeps its metrics, checkpoint and report in `runs/googlenet/`; running the cell
# again replaces that run (in a notebook `page.train` passes `overwrite=True`; a script
# asks for `--overwrite`).

# %%
run = page.train(net, lr=0.001, batch_size=64, num_epochs=2, resize=32, limit=4096, optimizer="adam")

# %% [markdown]
# Twelve test images, with their true and predicted labels.

# %%
if run:  # trained above: not when the data is missing, nor as a script without --train
    page.show(mc.viz.predictions(net, run.test_iter), "predictions")
