"""Every network's training step on every backend equals the NumPy backend's: the same
output, loss and parameter gradients (1e-12 relative in float64, 1e-10 on a GPU, 1e-5 in
float32) and the same batch-norm statistics. The NumPy backend is held equal to PyTorch in
test_models.py, so this carries that proof to the Numba and CuPy backends."""

import numpy
import pytest

import minicnn as mc
import minicnn.backend

OTHER_BACKENDS = [name for name in minicnn.backend._REGISTRY if name != "numpy"]

SIZES = {  # the smallest input that leaves every stage at least 2x2 (see test_models.py)
    "lenet": 28, "lenet_bn": 28, "alexnet": 193, "vgg11": 224, "nin": 67,
    "googlenet": 33, "resnet18": 33, "densenet": 29,
}  # fmt: skip
TOLERANCE = {numpy.float64: 1e-12, numpy.float32: 1e-5}
GPU_FLOAT64 = 1e-10  # cuBLAS and CuPy's reductions sum in other orders than the CPU's


def training_step(backend_name, model, dtype):
    """One forward and backward in training mode (dropout off); everything as NumPy."""
    with mc.use_backend(backend_name):
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


@pytest.mark.parametrize("model, dtype", CASES)
@pytest.mark.parametrize("backend_name", OTHER_BACKENDS)
def test_training_step_equals_the_numpy_backend(backend_name, model, dtype):
    reason = minicnn.backend.unavailable_reason(backend_name)
    if reason:
        pytest.skip(f"backend {backend_name!r} unavailable: {reason}")
    expected = training_step("numpy", model, dtype)
    actual = training_step(backend_name, model, dtype)
    rtol = TOLERANCE[dtype]
    if dtype == numpy.float64 and mc.get_backend(backend_name).device != "cpu":
        rtol = GPU_FLOAT64
    assert actual.keys() == expected.keys()
    largest = {}
    for key, value in expected.items():
        kind = key.split()[0]
        largest[kind] = max(largest.get(kind, 0.0), float(numpy.abs(value).max(initial=0.0)))
    for key in expected:
        scale = largest[key.split()[0]]
        assert_close(actual[key], expected[key], f"{model} {key}", rtol, scale)
