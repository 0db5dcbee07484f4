"""What a trained network sees: its first filters, its feature maps, and where in the
image its decision comes from (saliency, Grad-CAM), computed with minicnn's own autograd.

The numbers behind each picture come from a function of their own:

- :func:`layer_outputs`: each chosen layer's output for one image (the feature maps);
- :func:`saliency_map`: d(score of the predicted class) / d(input pixel), by backward;
- :func:`grad_cam_map`: Grad-CAM (Selvaraju et al., 2017) on the last convolution,
  ``relu(sum over k of mean(dscore/dA_k) * A_k)``, A_k its k-th output channel.
"""

from __future__ import annotations

import numpy

from .. import nn
from ..tensor import Tensor, enable_grad, no_grad
from ._figure import finish, host, subplots


def _as_batch(net, image):
    """One image (C, H, W), (H, W) or (1, C, H, W), array or Tensor, as a (1, C, H, W) tensor
    on the network's backend, in the parameters' dtype; integer pixels (a FashionMNIST
    image, 0 to 255) are scaled to [0, 1] as the loader scales them."""
    data = host(image)
    if not 2 <= data.ndim <= 4 or (data.ndim == 4 and data.shape[0] != 1):
        raise ValueError(
            f"expected one image, (H, W), (C, H, W) or (1, C, H, W), got shape {data.shape}"
        )
    if data.dtype.kind in "ui":
        data = data / 255.0
    data = data.reshape((1,) * (4 - data.ndim) + data.shape)
    params = list(net.parameters())
    backend = params[0].backend if params else None
    dtype = params[0].dtype if params else data.dtype
    array = data.astype(dtype) if backend is None else backend.asarray(data, dtype=dtype)
    return Tensor(array)


def conv_layers(net) -> list[str]:
    """The dotted names of the network's Conv2d layers, in order."""
    return [name for name, module in net.named_modules() if isinstance(module, nn.Conv2d)]


def _module(net, name):
    modules = dict(net.named_modules())
    if name not in modules or name == "":
        raise ValueError(
            f"no layer named {name!r} in {getattr(net, 'name', type(net).__name__)}; its layers are: "
            f"{', '.join(n for n in modules if n)}"
        )
    return modules[name]


class _Capture:
    """Wraps the forward of chosen modules for one pass: records what each returns,
    and with ``as_leaf`` hands the rest of the network a leaf copy of it, so that
    backward stops there and leaves that copy's gradient in ``.grad``."""

    def __init__(self, net, names, as_leaf=False):
        self.outputs: dict[str, Tensor] = {}
        self.order: list[str] = []  # the modules in the order their forward finished
        self.modules = [(name, _module(net, name)) for name in names]
        self.as_leaf = as_leaf
        self.previous = [module.__dict__.get("forward") for _, module in self.modules]

    def __enter__(self):
        for name, module in self.modules:
            original = module.forward

            def forward(*args, _name=name, _original=original, **kwargs):
                output = _original(*args, **kwargs)
                if self.as_leaf:
                    output = Tensor(output.data, requires_grad=True)
                self.outputs[_name] = output
                self.order.append(_name)
                return output

            object.__setattr__(module, "forward", forward)
        return self

    def __exit__(self, *exc_info):
        for (_, module), previous in zip(self.modules, self.previous, strict=True):
            if previous is None:
                module.__dict__.pop("forward", None)
            else:  # someone's own wrapper was there: put it back
                object.__setattr__(module, "forward", previous)


def _eval(net):
    """Put ``net`` in eval mode; return a function that restores every module's mode and
    every parameter's gradient (a picture's backward leaves the network as it was)."""
    modes = [(module, module.training) for module in net.modules()]
    grads = [(p, p.grad) for p in net.parameters()]
    net.eval()

    def restore():
        for module, training in modes:
            object.__setattr__(module, "training", training)
        for parameter, grad in grads:
            parameter.grad = grad

    return restore


def layer_outputs(net, image, layers=None) -> dict[str, numpy.ndarray]:
    """{layer name: its output for ``image``, as a NumPy (C, H, W) array}, in eval mode;
    ``layers`` names them (default: every Conv2d)."""
    names = conv_layers(net) if layers is None else [layers] if isinstance(layers, str) else list(layers)
    capture = _one_pass(net, image, names)
    return {name: host(capture.outputs[name])[0] for name in names}


def _one_pass(net, image, names) -> _Capture:
    """The outputs of the modules ``names`` in one forward pass, eval mode, no graph."""
    restore = _eval(net)
    try:
        with no_grad(), _Capture(net, names) as capture:
            net(_as_batch(net, image))
    finally:
        restore()
    return capture


def filters(net, path=None):
    """The first convolution's filters as a grid (each filter's input channels averaged)."""
    names = conv_layers(net)
    if not names:
        raise ValueError(f"{type(net).__name__} has no Conv2d layer to show the filters of")
    weight = host(_module(net, names[0]).weight).mean(axis=1)  # (OC, kh, kw)
    columns = min(len(weight), 12)
    rows = -(-len(weight) // columns)
    figure, axes = subplots(rows, columns, figsize=(columns * 0.9, rows * 0.9 + 0.5),
                                squeeze=False)  # fmt: skip
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k < len(weight):
            ax.imshow(weight[k], cmap="gray", interpolation="nearest")
    figure.suptitle(f"layer {names[0]}: {len(weight)} filters of {weight.shape[1]}x{weight.shape[2]}")
    return finish(figure, path)


def feature_maps(net, image, layers=None, path=None, channels=8):
    """The first ``channels`` feature maps of each chosen layer (default: every Conv2d)
    for one image, one row per layer, the image first."""
    maps = layer_outputs(net, image, layers)
    _require_maps(net, maps)
    rows = len(maps) + 1
    figure, axes = subplots(rows, channels, figsize=(channels * 1.1, rows * 1.2), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    axes[0, 0].imshow(host(image).reshape(host(image).shape[-2:]), cmap="gray")
    axes[0, 0].set_title("image", fontsize=8)
    for row, (name, output) in enumerate(maps.items(), start=1):
        for k in range(min(channels, len(output))):
            axes[row, k].imshow(output[k], cmap="viridis")
        axes[row, 0].set_title(f"layer {name}: {output.shape[0]}x{output.shape[1]}x{output.shape[2]}",
                               fontsize=8, loc="left")  # fmt: skip
    return finish(figure, path)


def _require_maps(net, maps: dict) -> None:
    flat = [name for name, output in maps.items() if output.ndim != 3]
    if flat:
        raise ValueError(
            f"layer {flat[0]} has no feature maps: its output is {maps[flat[0]].shape}, not "
            f"(channels, height, width); layers that have them: {', '.join(conv_layers(net))}"
        )


def saliency_map(net, image) -> tuple[numpy.ndarray, int]:
    """(|d score / d pixel|, largest over the input channels, as (H, W); the predicted
    class), where score is the predicted class's logit: the pixels whose change would
    change the decision most."""
    restore = _eval(net)
    try:
        x = _as_batch(net, image).requires_grad_()
        with enable_grad():  # even inside the caller's no_grad
            logits = net(x)
            predicted = int(host(logits)[0].argmax())
            logits[0, predicted].backward()
    finally:
        restore()
    return numpy.abs(host(x.grad)[0]).max(axis=0), predicted


def saliency(net, image, path=None, classes=None):
    """The image and its saliency map side by side."""
    heat, predicted = saliency_map(net, image)
    figure, axes = subplots(1, 2, figsize=(5, 2.7))
    axes[0].imshow(host(image).reshape(heat.shape), cmap="gray")
    axes[1].imshow(heat, cmap="hot")
    axes[0].set_title("image")
    axes[1].set_title(f"saliency for {_name(predicted, classes)}")
    for ax in axes:
        ax.axis("off")
    return finish(figure, path)


def last_feature_maps(net, image) -> str:
    """The layer Grad-CAM looks at by default: the last module to finish whose output is
    still a map larger than 1x1 and which is or holds a convolution. That is the last
    convolution's block where blocks meet (ResNet's last Residual, after its addition;
    GoogLeNet's last Inception, every branch; DenseNet's last DenseBlock, every channel
    it concatenated), or the last convolution itself (LeNet)."""
    names = [name for name, module in net.named_modules() if name and _holds_conv(module)]
    capture = _one_pass(net, image, names)
    maps = [name for name in capture.order
            if capture.outputs[name].ndim == 4 and min(capture.outputs[name].shape[2:]) > 1]  # fmt: skip
    if not maps:
        raise ValueError("grad_cam: every convolution's output is 1x1 here; no map to show")
    return maps[-1]


def _holds_conv(module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in module.modules())


def grad_cam_map(net, image, layer=None) -> tuple[numpy.ndarray, int, str]:
    """(Grad-CAM heat map at ``layer``'s resolution, (h, w); the predicted class; the
    layer). ``layer`` defaults to :func:`last_feature_maps`."""
    x = _as_batch(net, image)
    layer = last_feature_maps(net, x) if layer is None else layer
    restore = _eval(net)
    try:
        with enable_grad():  # even inside the caller's no_grad
            with _Capture(net, [layer], as_leaf=True) as capture:
                logits = net(x)
            if capture.outputs[layer].ndim != 4:
                _require_maps(net, {layer: host(capture.outputs[layer])[0]})
            predicted = int(host(logits)[0].argmax())
            logits[0, predicted].backward()
    finally:
        restore()
    activations = host(capture.outputs[layer])[0]  # (K, h, w)
    gradients = host(capture.outputs[layer].grad)[0]
    weights = gradients.mean(axis=(1, 2))  # one weight per channel
    return numpy.maximum((weights[:, None, None] * activations).sum(axis=0), 0), predicted, layer


def grad_cam(net, image, layer=None, path=None, classes=None):
    """The image with its Grad-CAM map laid over it (stretched to the image's size)."""
    heat, predicted, layer = grad_cam_map(net, image, layer)
    picture = host(image)
    picture = picture.reshape(picture.shape[-2:])
    figure, axes = subplots(1, 2, figsize=(5, 2.7))
    axes[0].imshow(picture, cmap="gray")
    axes[1].imshow(picture, cmap="gray")
    axes[1].imshow(heat, cmap="jet", alpha=0.5, extent=(0, picture.shape[1], picture.shape[0], 0),
                   interpolation="bilinear")  # fmt: skip
    axes[0].set_title("image")
    axes[1].set_title(f"Grad-CAM ({layer}): {_name(predicted, classes)}", fontsize=9)
    for ax in axes:
        ax.axis("off")
    return finish(figure, path)


def _name(index: int, classes) -> str:
    if classes is None:
        from ..data import CLASSES

        classes = CLASSES
    return classes[index] if 0 <= index < len(classes) else str(index)
