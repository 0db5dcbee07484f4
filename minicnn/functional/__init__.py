"""``minicnn.functional`` (also ``mc.nn.functional``): every operation as a function, named
as in ``torch.nn.functional``. Each layer's operation is a :class:`~minicnn.tensor.Function`
whose forward and backward sit side by side in the file of its family; the chapter's
loops (``corr2d``, ``pool2d``, ...) are written with Tensor operations, so autograd
derives their backward (slowly: one small graph per output element), and the
``*_simple`` layers are compositions whose backward autograd derives too:

=================  ==============================================================
elementwise.py     add sub mul div neg pow exp log relu sigmoid tanh astype
reduce.py          sum mean max
linear.py          matmul linear
shape.py           reshape transpose flatten getitem cat stack
conv.py            corr2d corr2d_multi_in corr2d_multi_in_out (the chapter's loops),
                   conv2d (im2col + one matrix product), im2col and conv2d_simple
                   (the same layer, its backward derived by autograd)
pool.py            pool2d (the chapter's loop), max_pool2d avg_pool2d adaptive_avg_pool2d,
                   max_pool2d_simple (im2col + max, its backward derived by autograd)
norm.py            batch_norm
dropout.py         dropout
loss.py            log_softmax softmax cross_entropy
=================  ==============================================================

The numba and cupy backends compute some of them faster behind one backend method
each: the engine room, minicnn/engine_room/, to read after these files.
"""

from .conv import (
    conv2d,
    conv2d_simple,
    corr2d,
    corr2d_multi_in,
    corr2d_multi_in_out,
    corr2d_multi_in_out_1x1,
    im2col,
)
from .dropout import dropout
from .elementwise import (
    add,
    astype,
    div,
    exp,
    log,
    mul,
    neg,
    pow,
    relu,
    sigmoid,
    sub,
    sum_to,
    tanh,
)
from .linear import linear, matmul
from .loss import cross_entropy, log_softmax, softmax
from .norm import batch_norm
from .pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d, max_pool2d_simple, pool2d
from .reduce import max, mean, sum
from .shape import cat, flatten, getitem, reshape, stack, transpose

__all__ = [
    "adaptive_avg_pool2d",
    "add",
    "astype",
    "avg_pool2d",
    "batch_norm",
    "cat",
    "conv2d",
    "conv2d_simple",
    "corr2d",
    "corr2d_multi_in",
    "corr2d_multi_in_out",
    "corr2d_multi_in_out_1x1",
    "cross_entropy",
    "div",
    "dropout",
    "exp",
    "flatten",
    "getitem",
    "im2col",
    "linear",
    "log",
    "log_softmax",
    "matmul",
    "max",
    "max_pool2d",
    "max_pool2d_simple",
    "mean",
    "mul",
    "neg",
    "pool2d",
    "pow",
    "relu",
    "reshape",
    "sigmoid",
    "softmax",
    "stack",
    "sub",
    "sum",
    "sum_to",
    "tanh",
    "transpose",
]
