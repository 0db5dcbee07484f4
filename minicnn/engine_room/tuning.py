"""Every speed threshold of the engine room, in one table.

Each number was measured on the networks' own shapes (``benchmarks/bench_ops.py``,
``benchmarks/bench_nets.py``); none changes a result beyond rounding. The modules read
them at call time (``tuning.NAME``), so a test or a benchmark may change one.
"""

# ---- conv2d (engine_room/conv.py) ---------------------------------------------------
#: Columns are unfolded a chunk of images at a time, about this many bytes of them: the
#: chunk stays in cache between im2col writing it and the product reading it.
CONV_CHUNK_BYTES = 4 << 20
#: A stride-1 layer's columns on wide rows (engine_room/conv.py, ``_correlate_wide``)
#: when its padded rows are at most this many times as wide as its output's (3x3 maps
#: padded to 5x5, 1.67, ran 1.3-1.6x slower) ...
WIDE_ROWS_MAX_RATIO = 1.5
#: ... in forward, only with at most this many output channels: the product's extra
#: columns cost more than the unfolding saves where they are many (16 -> 32 channels on
#: 12x12 maps, 5x5: forward 1.8 -> 2.2 ms at batch 32, backward 3.1 -> 2.6 ms).
WIDE_ROWS_FORWARD_MAX_CHANNELS = 16
#: On a GPU a chunk costs kernel launches and memory is plentiful: a whole batch at once.
GPU_CONV_CHUNK_BYTES = 512 << 20
#: A 1x1 convolution goes one image at a time (its columns are the image itself, no
#: copy) once an image has this many pixels; below, many tiny products cost more than
#: the copy (GoogLeNet's 528 -> 128 on 6x6 maps at batch 32: 2.9/6.5 ms forward/backward
#: an image at a time, 2.5/5.2 batched; on 12x12 maps the two tie, on 24x24 one image
#: at a time wins, 6.7/14.7 against 8.2/16.4).
POINTWISE_MIN_PIXELS = 64
#: Winograd pays for its transforms when its products are large: both channel counts at
#: least this ...
WINOGRAD_MIN_CHANNELS = 64
#: ... and an output at least this many pixels on each side. Which side pays depends on
#: how fast the machine's BLAS runs beside the compiled transforms. On an AMD EPYC (Zen 5,
#: AVX-512, its OpenBLAS held to the Haswell kernels by OPENBLAS_CORETYPE; 2 threads,
#: batch 32) Winograd's time over im2col's, forward: 0.55-0.68 on 24x24 maps, 0.9-1.0 on
#: 12x12, 0.8-0.9 on 6x6 (ResNet-18's 256 -> 256, GoogLeNet's 160 -> 320), 1.55 on 3x3
#: (512 -> 512: 4 tiles of 16 products for 9 outputs). The whole step with 6x6 maps in:
#: GoogLeNet 0.89-0.95 and ResNet-18 0.95 of the time with 8 as the least side. On an Intel
#: Xeon (SkylakeX BLAS kernels, up to 2.2x as fast a GEMM) im2col had run 256 -> 256 on
#: 6x6 in 0.94-0.98x Winograd's time, and 64 -> 64 on 24x24 in 1.5x (7.8 against 11.6 ms);
#: on a day its BLAS ran at half speed, Winograd had won down to 6x6 there too. So 6: the
#: loss on the fast BLAS is a few percent of a few layers, the gain on the slow one a
#: tenth of the step.
WINOGRAD_MIN_SIDE = 6
#: Backward, a 3x3 layer's Winograd adjoints run where both sides have at least
#: WINOGRAD_WIDE_CHANNELS channels or the output is WINOGRAD_NARROW_MIN_SIDE a side, else
#: im2col computes backward. On the AMD EPYC above, Winograd's backward over im2col's:
#: 0.48 (GoogLeNet's 64 -> 192 on 24x24), 0.70 (ResNet-18's 64 -> 64), 0.78-0.82 on 12x12
#: (128 -> 128, 128 -> 192) and 6x6 (256 -> 256; 160 -> 320 a tie); on the Intel Xeon
#: from 64 to 192 channels on 12x12 and 24x24 maps 0.97-1.1 (AlexNet's 384 -> 384 on
#: 12x12: 184 against 269 ms). So every layer whose forward is Winograd's. A 5x5 layer's
#: always pay (AlexNet's 96 -> 256 on 26x26: 173 against 219-227 ms).
WINOGRAD_WIDE_CHANNELS = 64
WINOGRAD_NARROW_MIN_SIDE = 32
#: Winograd's transformed tiles, a chunk of images at a time: large enough for products
#: that BLAS runs at full speed, small enough to bound the memory.
WINOGRAD_CHUNK_BYTES = 16 << 20

#: dW is computed in its own layout, dy @ cols^T, from this many elements; smaller ones
#: transposed and copied back (engine_room/conv.py, ``_WeightGradSum``).
DW_IN_LAYOUT_MIN_ELEMENTS = 1 << 18

# ---- the numba backend's team of threads (engine_room/team.py) ----------------------
#: Work smaller than this runs on the calling thread alone: waking a sleeping worker
#: costs tens of microseconds (an exp over 200 000 floats ran slower on two threads).
PARALLEL_MIN_ELEMENTS = 1 << 18  # a loop: the elements it writes
#: A matrix product (m, k) @ (k, n) of at least this many multiply-adds m*k*n, and a
#: convolution's batch whose products take as many (OC * C*kh*kw * N*OH*OW). Below it a
#: layer's arrays fit in one core's cache, and halves of them written on two cores cost
#: the next operation more than the second core saved. On an Intel Xeon (2 cores,
#: SkylakeX BLAS kernels), LeNet-BN's step at batch 32, whose second layer takes 4.9
#: million, ran 1.24x the 1-thread time at 2 threads when its layers were cut into
#: parts, 0.99x on one thread (3.6 ms; LeNet: 1.10x and 0.99x), while at batch 256 both
#: networks keep the second core's gain (0.67x and 0.72x the 1-thread time). (An AMD
#: EPYC had gained from cutting LeNet's layers into parts at batch 32, 3.9 -> 3.4 ms: a
#: loss on one machine counts more than a missed gain on another.) Counted in elements
#: of im2col's columns, as it once was, the threshold had left GoogLeNet's 1x1 layers on
#: 12x12 maps on one thread.
PARALLEL_MIN_MULTIPLY_ADDS = 1 << 24
#: The sigmoid's three passes (-|x|, NumPy's exp, the division) run a block of this many
#: elements at a time, which stays in cache from one pass to the next (smaller blocks
#: cost more calls than they save: 16 K elements ran 1.7x slower than unblocked).
ELEMENTWISE_BLOCK = 1 << 17
#: window_sum's compiled loop beats NumPy's strided adds only when cut into parts.
STRIDED_MIN_THREADS = 2
#: Batch norm's compiled sums need this many values per channel; fewer keep NumPy's
#: (its elementwise passes, NumPy's bits, run compiled on maps of any size). ResNet-18's
#: 6x6 maps at batch 32 (1152 values) ran their statistics 5x faster compiled (0.93 ->
#: 0.19 ms, 256 channels); the tests' two-image inputs (at most 450 values) would see the
#: sums' other order amplified by later batch norms over 2 to 8 values (1e-10 apart in
#: float64, where NumPy's order agrees to 1e-12).
BATCH_NORM_MIN_COUNT = 1024

# ---- max pooling (engine_room/numba_.py) ---------------------------------------------
#: A strided max pool runs row by row (``_max_pool2d``) from this many outputs a row;
#: narrower ones, and every stride-1 pool, whole planes at a time (``_max_pool2d_planes``).
#: On an AMD EPYC, one thread, batch 32, rows against planes: 3x3 stride 2 on 48x48 and
#: 54x54 maps (24 and 26 outputs a row) 26/37 against 35/47 ms; on 24x24 and 26x26 (12
#: outputs) 36/51 against 22/32; GoogLeNet's stride-1 pools on 12x12 and 6x6 maps
#: 20/17 against 7/10; VGG-11's 2x2 on 56x56 (28 outputs) a tie.
MAX_POOL_ROWS_MIN_OUTPUTS = 16
#: ``_max_pool2d_planes`` pads and passes over blocks of planes of about this many
#: elements, which stay in cache from one pass to the next.
MAX_POOL_BLOCK = 1 << 14

# ---- the numba backend's buffer pool (engine_room/allocator.py) ---------------------------
#: Arrays of at least this many bytes are reused from step to step. glibc serves those of
#: 128 KiB and more with pages it gives back on free, then faults in again (LeNet at
#: batch 32: 410-560 page faults a step from 1 MiB, 4.4 -> 3.8-4.4 ms and LeNet-BN 4.9 ->
#: 4.4 ms from 128 KiB; peak memory 1.7x and 1.9x PyTorch's, within the 2x target).
POOL_MIN_BYTES = 128 << 10
#: Segments: (requests below this many bytes, the segment they start), in order; a
#: larger request starts a segment of its own, rounded up to POOL_SEGMENT_ROUNDING.
#: PyTorch's CUDA caching allocator's sizes. Traced and replayed, ResNet-18's step at
#: batch 32 held 178 MB in blocks of such segments where its arrays held 141 at once
#: (GoogLeNet 180 for 142, DenseNet 256 for 167); a pool of whole arrays had held 249
#: (273, 268), and segments of 16 or 32 MiB for every size within 10% of these.
POOL_SEGMENTS = ((1 << 20, 2 << 20), (10 << 20, 20 << 20))
POOL_SEGMENT_ROUNDING = 2 << 20
#: The pool holds at most this much; past it, unused segments are given back.
POOL_LIMIT_BYTES = 4 << 30
