# %% [markdown]
# # 8.6 Residual Networks (ResNet)
#
# *Dive into Deep Learning*, section 8.6, with minicnn in place of PyTorch: the residual
# block, whose input is added back to its output, ResNet-18 stage by stage, and a short
# training run.
#
# This page is `examples/resnet.py`, run as a script (`python examples/resnet.py` prints
# the walk-through and the table, `--size 224` the book's walk-through; `--train` trains)
# or as the notebook `notebooks/8.6_resnet.ipynb`, which trains.

# %%
import minicnn as mc
from minicnn import nn
from minicnn.nn import functional as F

page = mc.book.Page("D2L 8.6 Residual Networks (ResNet)", model="resnet18")
mc.manual_seed(0)

# %% [markdown]
# The backend: `numba` (compiled kernels on the CPU) by default, `cupy` where a GPU
# works, `numpy` for the textbook path, to step through (`page.choose_backend("numpy")`).

# %%
backend = page.choose_backend()

# %% [markdown]
# ## Residual blocks
#
# Two 3×3 convolutions with batch norm; the input is added back before the last ReLU.
# `use_1x1conv` brings the input to the output's shape when the block changes it.


# %%
class Residual(nn.Module):
    def __init__(self, input_channels, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1,
                               stride=strides)  # fmt: skip
        self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
        if use_1x1conv:
            self.conv3 = nn.Conv2d(input_channels, num_channels, kernel_size=1, stride=strides)
        else:
            self.conv3 = None
        self.bn1 = nn.BatchNorm2d(num_channels)
        self.bn2 = nn.BatchNorm2d(num_channels)

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)


# %% [markdown]
# ## ResNet model
#
# GoogLeNet's stem with batch norm, then four stages of two residual blocks; the first
# block of each later stage halves height and width and doubles the channels.


# %%
def resnet_block(input_channels, num_channels, num_residuals, first_block=False):
    blk = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blk.append(Residual(input_channels, num_channels, use_1x1conv=True, strides=2))
        else:
            blk.append(Residual(num_channels, num_channels))
    return blk


b1 = nn.Sequential(
    nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3),
    nn.BatchNorm2d(64), nn.ReLU(),
    nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
)  # fmt: skip
b2 = nn.Sequential(*resnet_block(64, 64, 2, first_block=True))
b3 = nn.Sequential(*resnet_block(64, 128, 2))
b4 = nn.Sequential(*resnet_block(128, 256, 2))
b5 = nn.Sequential(*resnet_block(256, 512, 2))
net = nn.Sequential(b1, b2, b3, b4, b5,
                    nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(512, 10))  # fmt: skip

# %% [markdown]
# One 96×96 image through it, stage by stage (the book's loop; the book walks a 224×224
# one), then `mc.summary`.

# %%
page.walk_through(net)
print(mc.summary(net, (1, 1, page.size, page.size)))

# %% [markdown]
# ## Training
#
# The book's recipe, learning rate 0.05, batch 256, 10 epochs at 96×96, takes hours on
# 2 cores (`minicnn train resnet18` runs it). Here a short recipe of about half a minute:
# the first 4096 images at 32×32, batch 64, one epoch, the book's learning rate. Batch
# norm and the residual paths let it learn from the first steps.
#
# The run keeps its metrics, checkpoint and report in `runs/resnet18/`; running the cell
# again replaces that run (in a notebook `page.train` passes `overwrite=True`; a script
# asks for `--overwrite`).

# %%
run = page.train(net, lr=0.05, batch_size=64, num_epochs=1, resize=32, limit=4096)

# %% [markdown]
# Twelve test images, with their true and predicted labels.

# %%
if run:  # trained above: not when the data is missing, nor as a script without --train
    page.show(mc.viz.predictions(net, run.test_iter), "predictions")
