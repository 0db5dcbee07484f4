"""Winograd's minimal filtering F(2x2, 3x3): a 3x3, stride-1 convolution in fewer products.

Lavin and Gray (2016), "Fast Algorithms for Convolutional Neural Networks". Cut the padded
input into 4x4 tiles that start every 2 pixels; each tile ``d`` and 3x3 filter ``g`` give a
2x2 block of the output as

    y_tile = AT [ (G g GT) * (BT d B) ] A          (* multiplies element by element)

with the small constant matrices below: 16 multiplications for 4 outputs, where the
direct sum needs 36. Summed over the input channels, the 16 elementwise products of a
layer become 16 matrix products, one per position (a, b) of the 4x4 transformed tile::

    V[a, b] = (BT d B)[a, b]  for every channel and tile       (16, C, P)    P = N*TH*TW
    U[a, b] = (G g GT)[a, b]  for every filter                 (16, OC, C)
    M[a, b] = U[a, b] @ V[a, b]                                (16, OC, P)
    y       = AT M A          per tile, cropped to (OH, OW)

so a layer costs 16/36 of im2col's multiply-adds, plus the transforms, which only add
and subtract (every coefficient is 0, +-1 or +-1/2, exact in binary floating point).

Backward is each step's adjoint, in reverse: ``dM = A dy AT`` per tile, then
``dU = dM @ V^T`` and ``dV = U^T @ dM`` (32 matrix products), ``dW = GT dU G`` and
``dx = B dV BT`` added back where the tiles overlap.

Each transform is the same sandwich ``S = L T R^T`` of a tile T between two small
matrices, which :func:`sandwich` writes out: the backends' kernels are that loop over
every tile of a layer.
"""

from __future__ import annotations

import numpy

from .window import Window2d

# The input transform BT, the filter transform G and the output transform AT of F(2x2, 3x3).
BT = numpy.array(
    [
        [1, 0, -1, 0],
        [0, 1, 1, 0],
        [0, -1, 1, 0],
        [0, 1, 0, -1],
    ],
    dtype=numpy.float64,
)
G = numpy.array(
    [
        [1, 0, 0],
        [0.5, 0.5, 0.5],
        [0.5, -0.5, 0.5],
        [0, 0, 1],
    ],
    dtype=numpy.float64,
)
AT = numpy.array(
    [
        [1, 1, 1, 0],
        [0, 1, -1, -1],
    ],
    dtype=numpy.float64,
)
TILE = 4  # input tile side: OUT + 3 - 1
OUT = 2  # output block side


def applies(win: Window2d) -> bool:
    """Whether F(2x2, 3x3) computes this window: a 3x3 kernel at stride 1."""
    return (win.kh, win.kw, win.sh, win.sw) == (3, 3, 1, 1)


def tiles(win: Window2d) -> tuple[int, int]:
    """(TH, TW): how many 2x2 output blocks cover the (OH, OW) output."""
    return -(-win.oh // OUT), -(-win.ow // OUT)


def sandwich(left, t, right):
    """``s[a][b] = sum over i, j of left[a, i] * t[i][j] * right[b, j]`` (s = L T R^T).

    ``t`` is a nested list of arrays (one per tile position, each covering many tiles);
    rows are combined first, then columns, and zero coefficients are skipped, in the
    order the compiled kernels follow (so the backends agree to the last bit).
    """
    rows = [[_combine(left[a], [t[i][j] for i in range(len(t))]) for j in range(len(t[0]))]
            for a in range(len(left))]  # fmt: skip
    return [[_combine(right[b], rows[a]) for b in range(len(right))] for a in range(len(left))]


def _combine(coefficients, terms):
    """``sum of c * term`` over the nonzero coefficients, first to last."""
    total = None
    for c, term in zip(coefficients, terms, strict=True):
        if c == 0:
            continue
        product = term if c == 1 else -term if c == -1 else term * term.dtype.type(c)
        total = product if total is None else total + product
    return total


def transform_weight(xp, weight):
    """U = G g GT for every filter: (OC, C, 3, 3) -> (16, OC, C).

    One matrix product: U[(a, b), (o, c)] = sum over (i, j) of G[a, i] G[b, j] g[o, c, i, j],
    and G[a, i] G[b, j] is the Kronecker product of G with itself (16 x 9).
    """
    g2 = xp.asarray(numpy.kron(G, G), dtype=weight.dtype)
    out_channels, in_channels = weight.shape[:2]
    return (g2 @ weight.reshape(-1, 9).T).reshape(TILE * TILE, out_channels, in_channels)


def transform_weight_grad(xp, grad_u):
    """dW = GT dU G, the adjoint of :func:`transform_weight`: (16, OC, C) -> (OC, C, 3, 3)."""
    g2 = xp.asarray(numpy.kron(G, G), dtype=grad_u.dtype)
    out_channels, in_channels = grad_u.shape[1:]
    grad_w = g2.T @ grad_u.reshape(TILE * TILE, -1)  # (9, OC*C)
    return xp.ascontiguousarray(grad_w.T).reshape(out_channels, in_channels, 3, 3)
