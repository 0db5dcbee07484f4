"""Every network's training step on every backend equals the NumPy backend's: the same
output, loss and parameter gradients (1e-12 relative in float64, 1e-10 on a GPU, 1e-5 in
float32) and the same batch-norm statistics. The NumPy backend is held equal to PyTorch in
test_models.py, so this carries that proof to the Numba and CuPy backends. Each runs
twice: with its engine room's algorithms (taps, Winograd, ...: engine_room/conv.py), and
with ``mc.config.reference`` on, the chapter's algorithms everywhere.

In float32, the engine room's algorithms and cuBLAS sum in other orders than the
reference's im2col on the CPU's BLAS. Where a network amplifies round-off (batch norm
over the 2 to 8 values per channel of these tiny inputs), float32 gradients then differ
by as much as float32 differs from float64: 1.5 % of the first conv's gradient in
ResNet-18. There the backend is held to the reference's own float32 accuracy: its error
against the float64 step at most 4 times NumPy's, give or take 1e-5 of the values'
scale. A wrong kernel errs by the size of the values themselves.

That holds with the reference switch on too, in float32 where a network has batch norm:
the numba backend then computes the same algorithms, but its batch-norm sums (compiled
from BATCH_NORM_MIN_COUNT values per channel) add in another order, and OpenBLAS rounds
a product differently on 1 thread and on 2 with some of its kernels (Haswell's, on an
AMD EPYC). Elsewhere the CPU backends agree to 1e-5.

DenseNet runs at 37 pixels, not at the 29 that leave its last stage 1x1: there its last
batch norm sees 2 values per channel, and float32 round-off is amplified so much that
two orders of summation differed from float64 by 27 times each other's error.

Why 4 (FLOAT32_FACTOR), from numbers (Intel Xeon, OpenBLAS SkylakeX, 2026-12-07): each
float32 step's largest error against the float64 step, less the 1e-5 allowance, over
NumPy's own float32 error, for every order of summation the backends take (engine room
or reference; one image per chunk or whole batches; numba, and cupy on the tests'
emulation): DenseNet 0.96 to 1.25 (its worst value: the gradient of the last dense
block's second convolution), ResNet-18 1.00, LeNet-BN 0.21 to 0.77. So 4 leaves three
times the largest spread measured, while a wrong kernel errs by the values' own size.
A GPU's cuBLAS adds in orders of its own: gpu_check.sh runs these cases on a device."""

import numpy
import pytest

import minicnn as mc
import minicnn.backend

OTHER_BACKENDS = [name for name in minicnn.backend._REGISTRY if name != "numpy"]

SIZES = {  # the smallest input that leaves every stage at least 2x2 (see test_models.py)
    "lenet": 28, "lenet_bn": 28, "alexnet": 193, "vgg11": 224, "nin": 67,
    "googlenet": 33, "resnet18": 33, "densenet": 37,
}  # fmt: skip
TOLERANCE = {numpy.float64: 1e-12, numpy.float32: 1e-5}
GPU_FLOAT64 = 1e-10  # cuBLAS and CuPy's reductions sum in other orders than the CPU's
FLOAT32_FACTOR = 4  # see the module's docstring
BATCH_NORM_MODELS = ("lenet_bn", "resnet18", "densenet")


def training_step(backend_name, model, dtype, reference=False):
    """One forward and backward in training mode (dropout off); everything as NumPy."""
    with mc.use_backend(backend_name), mc.config.using_reference(reference):
        mc.manual_seed(0)
        net = mc.models.get(model)
        net = net.double() if dtype == numpy.float64 else net
        for module in net.modules():
            if isinstance(module, mc.nn.Dropout):
                module.p = 0.0
        rng = numpy.random.default_rng(1)
        x = mc.tensor(rng.standard_normal((2, 1, SIZES[model], SIZES[model])).astype(dtype))
        y = mc.tensor(numpy.array([3, 7]))
        output = net(x)
        loss = mc.nn.functional.cross_entropy(output, y)
        loss.backward()
        result = {"output": output.numpy(), "loss": loss.numpy()}
        result.update({f"grad {k}": p.grad.numpy() for k, p in net.named_parameters()})
        result.update({f"state {k}": v for k, v in net.state_dict().items()})
        return result


def assert_close(actual, expected, what, rtol, scale):
    """Within ``rtol`` of each value, or of ``scale`` (the largest value of its kind in the
    network) for values that are round-off themselves: the gradient of a bias right
    before a batch norm is zero in exact arithmetic."""
    error = numpy.abs(actual - expected) - rtol * numpy.abs(expected) - rtol * scale
    assert error.max(initial=0.0) <= 0, (
        f"{what}: differs by {numpy.abs(actual - expected).max():.3g}"
    )


# float64 at 193-224 pixels is slow: AlexNet and VGG are compared in float32 only
CASES = [
    pytest.param(model, dtype, id=f"{model}-{dtype.__name__}")
    for model in SIZES
    for dtype in (numpy.float64, numpy.float32)
    if not (dtype == numpy.float64 and model in ("alexnet", "vgg11"))
]


@pytest.mark.parametrize("algorithms", ["engine-room", "reference"])
@pytest.mark.parametrize("model, dtype", CASES)
@pytest.mark.parametrize("backend_name", OTHER_BACKENDS)
def test_training_step_equals_the_numpy_backend(backend_name, model, dtype, algorithms):
    reason = minicnn.backend.unavailable_reason(backend_name)
    if reason:
        pytest.skip(f"backend {backend_name!r} unavailable: {reason}")
    reference = algorithms == "reference"
    expected = training_step("numpy", model, dtype)
    actual = training_step(backend_name, model, dtype, reference)
    assert actual.keys() == expected.keys()
    on_gpu = mc.get_backend(backend_name).device != "cpu"
    rtol = GPU_FLOAT64 if dtype == numpy.float64 and on_gpu else TOLERANCE[dtype]
    if dtype == numpy.float32 and (on_gpu or not reference or model in BATCH_NORM_MODELS):
        assert_as_accurate(actual, expected, training_step("numpy", model, numpy.float64), model)
        return
    largest = largest_of_each_kind(expected)
    for key in expected:
        scale = largest[key.split()[0]]
        assert_close(actual[key], expected[key], f"{model} {key}", rtol, scale)


def largest_of_each_kind(values):
    """{"output": largest |value| of the output, "grad": of every gradient, ...}"""
    largest = {}
    for key, value in values.items():
        kind = key.split()[0]
        largest[kind] = max(largest.get(kind, 0.0), float(numpy.abs(value).max(initial=0.0)))
    return largest


def assert_as_accurate(actual, reference, truth, model):
    """Each of ``actual``'s values is at most FLOAT32_FACTOR times as far from ``truth``
    (float64) as ``reference``'s value is, give or take 1e-5 of its kind's scale. (Two
    float32 sums in different orders err alike, not equally: the factor leaves room for
    that, while a wrong kernel errs by the size of the values themselves.)"""
    largest = largest_of_each_kind(truth)
    for key in truth:
        error = numpy.abs(actual[key] - truth[key]).max(initial=0.0)
        reference_error = numpy.abs(reference[key] - truth[key]).max(initial=0.0)
        allowed = FLOAT32_FACTOR * reference_error + 1e-5 * largest[key.split()[0]]
        assert error <= allowed, (
            f"{model} {key}: {error:.3g} from float64, NumPy's float32 {reference_error:.3g}"
        )
