"""Winograd's minimal filtering F(m x m, r x r): an r x r, stride-1 convolution in fewer products.

Lavin and Gray (2016), "Fast Algorithms for Convolutional Neural Networks". Cut the padded
input into n x n tiles, n = m + r - 1, that start every m pixels; each tile ``d`` and
r x r filter ``g`` give an m x m block of the output as

    y_tile = AT [ (G g GT) * (BT d B) ] A          (* multiplies element by element)

with small constant matrices AT (m x n), G (n x r), BT (n x n): n*n multiplications for
m*m outputs, where the direct sum needs m*m*r*r. F(2x2, 3x3) does 16 for 4 outputs
instead of 36, F(2x2, 5x5) 36 instead of 100. Summed over the input channels, the n*n
elementwise products of a layer become n*n matrix products, one per position (a, b) of
the transformed tile::

    V[a, b] = (BT d B)[a, b]  for every channel and tile       (n*n, C, P)    P = N*TH*TW
    U[a, b] = (G g GT)[a, b]  for every filter                 (n*n, OC, C)
    M[a, b] = U[a, b] @ V[a, b]                                (n*n, OC, P)
    y       = AT M A          per tile, cropped to (OH, OW)

Backward is each step's adjoint, in reverse: ``dM = A dy AT`` per tile, then
``dU = dM @ V^T`` and ``dV = U^T @ dM``, ``dW = GT dU G`` and ``dx = B dV BT`` added back
where the tiles overlap.

Where the matrices come from (:func:`toom_cook`): a correlation is the transpose of a
polynomial product, and a polynomial product is evaluated at n points, multiplied point
by point, and interpolated back. Each transform is the same sandwich ``S = L T R^T`` of a
tile T between two of these matrices, which :func:`sandwich` writes out: the backends'
kernels are that loop over every tile of a layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy

from ..backend.window import Window2d


@dataclass(frozen=True, eq=False)
class Algorithm:
    """F(m x m, r x r): ``m`` outputs per tile side, an ``r`` x ``r`` kernel, tiles of side n."""

    m: int
    r: int
    AT: numpy.ndarray  # (m, n): output transform
    G: numpy.ndarray  # (n, r): filter transform
    BT: numpy.ndarray  # (n, n): input transform

    @property
    def n(self) -> int:
        return self.m + self.r - 1

    def tiles(self, win: Window2d) -> tuple[int, int]:
        """(TH, TW): how many m x m output blocks cover the (OH, OW) output."""
        return -(-win.oh // self.m), -(-win.ow // self.m)

    def __repr__(self) -> str:
        return f"F({self.m}x{self.m}, {self.r}x{self.r})"


def toom_cook(m: int, r: int, points) -> Algorithm:
    """The matrices of F(m, r) from n - 1 finite interpolation points and infinity.

    Linear convolution c = h conv g (h of m values, g of r) is the product of polynomials
    h(x) g(x): evaluate both at the n points (Vh h, Vg g; the point "infinity" reads the
    leading coefficient), multiply, interpolate back (Vn^-1). So c = Vn^-1 [(Vg g) * (Vh h)],
    which is linear in h, and correlation, y_i = sum_j g_j d_(i+j), is its transpose:

        y = Vh^T [ (Vg g) * (Vn^-T d) ],    AT = Vh^T,  G = Vg,  BT = Vn^-T.

    Each row k of BT is then scaled to whole numbers and row k of G divided by the same
    factor (their product is unchanged), so the input transform, run on every tile, only
    adds and subtracts small integers, and the fractions go into G, applied once per step.
    """
    n = m + r - 1
    if len(points) != n - 1:
        raise ValueError(f"F({m}, {r}) needs {n - 1} finite points, got {len(points)}")

    def vandermonde(columns):
        rows = [[Fraction(p) ** k for k in range(columns)] for p in points]
        return rows + [[Fraction(int(k == columns - 1)) for k in range(columns)]]  # infinity

    bt = _transpose(_inverse(vandermonde(n)))
    g = vandermonde(r)
    for k in range(n):
        scale = math.lcm(*(value.denominator for value in bt[k]))
        bt[k] = [value * scale for value in bt[k]]
        g[k] = [value / scale for value in g[k]]
    as_array = lambda rows: numpy.array(rows, dtype=numpy.float64)  # noqa: E731
    return Algorithm(m, r, as_array(_transpose(vandermonde(m))), as_array(g), as_array(bt))


def _transpose(rows):
    return [list(column) for column in zip(*rows, strict=True)]


def _inverse(rows):
    """Gauss-Jordan elimination in exact fractions."""
    n = len(rows)
    table = [list(row) + [Fraction(int(i == k)) for k in range(n)] for i, row in enumerate(rows)]
    for col in range(n):
        pivot = next(i for i in range(col, n) if table[i][col] != 0)
        table[col], table[pivot] = table[pivot], table[col]
        table[col] = [value / table[col][col] for value in table[col]]
        for i in range(n):
            if i != col and table[i][col] != 0:
                table[i] = [a - table[i][col] * b for a, b in zip(table[i], table[col], strict=True)]
    return [row[n:] for row in table]


F2x2_3x3 = toom_cook(2, 3, (0, 1, -1))
F2x2_5x5 = toom_cook(2, 5, (0, 1, -1, 2, -2))
F4x4_3x3 = toom_cook(4, 3, (0, 1, -1, 2, -2))


# The algorithm for each kernel side. F(4x4, 3x3) needs fewer products still (36 for 16
# outputs, 4x fewer than direct; 1.3 to 2x faster than F(2x2, 3x3) on 12x12 to 56x56
# outputs here), but its larger coefficients (up to 8, and 1/24 in G) cost float32 about
# 1.5 digits: 1e-5 to 2e-5 of the output's scale against 3e-7 for a direct sum, beyond the
# 1e-5 the fast backends promise to agree with NumPy. Set ALGORITHMS[3] = F4x4_3x3 to
# trade that accuracy for speed (its kernels are not generated: the numba backend then
# runs the NumPy transforms below, slower; add it to winograd_codegen.ALGORITHMS too).
ALGORITHMS = {3: F2x2_3x3, 5: F2x2_5x5}


def choose(win: Window2d) -> Algorithm | None:
    """The algorithm for this window, or None: square kernels in ALGORITHMS, at stride 1."""
    if (win.sh, win.sw) != (1, 1) or win.kh != win.kw:
        return None
    return ALGORITHMS.get(win.kh)


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
        product = term * term.dtype.type(c)
        total = product if total is None else total + product
    return total


def transform_weight(xp, weight, algorithm: Algorithm):
    """U = G g GT for every filter: (OC, C, r, r) -> (n*n, OC, C).

    One matrix product: U[(a, b), (o, c)] = sum over (i, j) of G[a, i] G[b, j] g[o, c, i, j],
    and G[a, i] G[b, j] is the Kronecker product of G with itself (n*n x r*r).
    """
    g2 = xp.asarray(numpy.kron(algorithm.G, algorithm.G), dtype=weight.dtype)
    out_channels, in_channels = weight.shape[:2]
    return (g2 @ weight.reshape(-1, algorithm.r**2).T).reshape(-1, out_channels, in_channels)


def transform_weight_grad(xp, grad_u, algorithm: Algorithm):
    """dW = GT dU G, the adjoint of :func:`transform_weight`: (n*n, OC, C) -> (OC, C, r, r)."""
    g2 = xp.asarray(numpy.kron(algorithm.G, algorithm.G), dtype=grad_u.dtype)
    out_channels, in_channels = grad_u.shape[1:]
    grad_w = g2.T @ grad_u.reshape(algorithm.n**2, -1)  # (r*r, OC*C)
    r = algorithm.r
    return xp.ascontiguousarray(grad_w.T).reshape(out_channels, in_channels, r, r)


# ---- the transforms of a whole layer, as NumPy slices (xp: numpy or cupy) -------------
# The reference for the generated Numba kernels (winograd_codegen.py), which compute the
# same sums one tile at a time; the numba backend runs these for other dtypes.
def transform_input(xp, x, win: Window2d, alg: Algorithm):
    """V = BT d B for every n x n tile d of every padded input plane: (n*n, C, N*TH*TW).

    Tile (th, tw) of plane (n, c) is ``x_pad[n, c, m*th : m*th + n, m*tw : m*tw + n]``,
    so its pixel (i, j), over all tiles at once, is one strided slice.
    """
    m, n = alg.m, alg.n
    th, tw = alg.tiles(win)
    x_pad = xp.zeros(_tiled_shape(win, alg), dtype=x.dtype)
    x_pad[:, :, win.ph : win.ph + win.h, win.pw : win.pw + win.w] = x.transpose(1, 0, 2, 3)
    d = [[x_pad[:, :, i : i + m * th : m, j : j + m * tw : m] for j in range(n)]
         for i in range(n)]  # fmt: skip
    v = sandwich(alg.BT, d, alg.BT)
    return xp.stack([v[a][b] for a in range(n) for b in range(n)]).reshape(
        n * n, win.c, -1
    )


def transform_output(xp, m_tiles, win: Window2d, alg: Algorithm, out=None):
    """y = AT M A for every transformed tile M of ``m_tiles`` (n*n, OC, N*TH*TW): the
    m x m output blocks, laid out as (N, OC, OH, OW), in ``out`` if given."""
    m, n = alg.m, alg.n
    th, tw = alg.tiles(win)
    out_channels = m_tiles.shape[1]
    tile = m_tiles.reshape(n, n, out_channels, win.n, th, tw)
    y = sandwich(alg.AT, tile, alg.AT)
    blocks = xp.empty((out_channels, win.n, th, m, tw, m), dtype=m_tiles.dtype)
    for a in range(m):
        for b in range(m):
            blocks[:, :, :, a, :, b] = y[a][b]
    y = blocks.reshape(out_channels, win.n, m * th, m * tw)[:, :, : win.oh, : win.ow]
    if out is None:
        return xp.ascontiguousarray(y.transpose(1, 0, 2, 3))
    out[...] = y.transpose(1, 0, 2, 3)
    return out


def transform_output_grad(xp, gy, win: Window2d, alg: Algorithm):
    """dM = A dy AT for every m x m block of ``gy`` (N, OC, OH, OW), the adjoint of
    :func:`transform_output` (blocks past the output's edge read zeros): (n*n, OC, P)."""
    m, n = alg.m, alg.n
    th, tw = alg.tiles(win)
    out_channels = gy.shape[1]
    g_pad = xp.zeros((out_channels, win.n, m * th, m * tw), dtype=gy.dtype)
    g_pad[:, :, : win.oh, : win.ow] = gy.transpose(1, 0, 2, 3)
    g = [[g_pad[:, :, a::m, b::m] for b in range(m)] for a in range(m)]
    dm = sandwich(alg.AT.T, g, alg.AT.T)
    return xp.stack([dm[i][j] for i in range(n) for j in range(n)]).reshape(
        n * n, out_channels, -1
    )


def transform_input_grad(xp, dv, win: Window2d, alg: Algorithm):
    """dx: dd = B dV BT for every tile, added back where the tile was cut from (tiles
    overlap by r - 1 pixels), padding dropped; the adjoint of :func:`transform_input`."""
    m, n = alg.m, alg.n
    th, tw = alg.tiles(win)
    dv = dv.reshape(n, n, win.c, win.n, th, tw)
    dd = sandwich(alg.BT.T, dv, alg.BT.T)
    dx_pad = xp.zeros(_tiled_shape(win, alg), dtype=dv.dtype)
    for i in range(n):
        for j in range(n):
            dx_pad[:, :, i : i + m * th : m, j : j + m * tw : m] += dd[i][j]
    dx = dx_pad[:, :, win.ph : win.ph + win.h, win.pw : win.pw + win.w]
    return xp.ascontiguousarray(dx.transpose(1, 0, 2, 3))


def _tiled_shape(win: Window2d, alg: Algorithm) -> tuple[int, int, int, int]:
    """(C, N, Hp, Wp): the padded planes, channels first, that the tiles exactly cover
    (the input's padding, plus zeros below and right up to the last tile's edge)."""
    th, tw = alg.tiles(win)
    return (win.c, win.n, alg.m * th + alg.r - 1, alg.m * tw + alg.r - 1)
