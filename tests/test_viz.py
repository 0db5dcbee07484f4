"""mc.viz: the numbers behind each picture, the pictures as files, and the report page in
a real browser.

- the graph's nodes are the Functions backward visits, its edges the tensors between them;
- feature maps equal the layers' outputs; saliency equals finite differences; Grad-CAM
  equals its formula on gradients taken by splitting the network by hand;
- the confusion matrix sums to the test set's size and its trace matches the accuracy;
- report.html opens in headless Chromium with every image loaded and the table rendered.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import minicnn as mc
from minicnn import viz

pytest.importorskip("matplotlib", reason="mc.viz needs matplotlib (pip install -e '.[train]')")


def tiny_input(size=28, n=2, seed=0, dtype=np.float32):
    return mc.tensor(np.random.default_rng(seed).random((n, 1, size, size)).astype(dtype))


def lenet_loss(net, n=2):
    return mc.functional.cross_entropy(net(tiny_input(n=n)), mc.tensor(np.arange(n)))


# ---- the autograd graph ----------------------------------------------------------------
@pytest.mark.parametrize("model, size", [("lenet", 28), ("resnet18", 33), ("densenet", 29)])
def test_the_graphs_nodes_are_the_functions_backward_visits(model, size):
    mc.manual_seed(0)
    net = mc.models.get(model)
    loss = mc.functional.cross_entropy(net(tiny_input(size)), mc.tensor(np.array([1, 2])))
    graph = viz.graph(loss, names=net)
    node = {id(f): f"f{k}" for k, f in enumerate(graph.functions)}
    for fn in graph.functions:  # each edge is an input of its function, from its creator
        into = [edge[0] for edge in graph.edges if edge[1] == node[id(fn)]]
        assert into == [node[id(i.creator)] if i.creator is not None else into[k]
                        for k, i in enumerate(fn.inputs)]  # fmt: skip
    visited = []  # the order backward really calls them in
    for fn in graph.functions:
        fn.backward = (lambda f, b: lambda gy: (visited.append(id(f)), b(gy))[1])(fn, fn.backward)
    for name in dict(net.named_parameters()):  # every parameter is a named leaf
        assert f'label="{name}"' in graph.source
    sources = [edge[0] for edge in graph.edges]
    used_twice = {s for s in sources if s.startswith("f") and sources.count(s) > 1}
    if model != "lenet":  # a residual's X, a dense block's concatenated input: read twice
        assert used_twice
    loss.backward()
    assert visited == [id(f) for f in graph.functions]
    with pytest.raises(RuntimeError, match="already freed"):  # backward freed what it walked
        viz.graph(loss)


def test_the_graph_is_drawn_by_graphviz(tmp_path):
    if shutil.which("dot") is None:
        pytest.skip("needs Graphviz's dot program (apt-get install graphviz)")
    graph = viz.graph(lenet_loss(mc.models.lenet()), tmp_path / "graph.png")
    assert (tmp_path / "graph.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    graph.save(tmp_path / "graph.svg")
    assert "<svg" in (tmp_path / "graph.svg").read_text()
    net = mc.models.get("densenet")  # concatenations: a larger graph, drawn too
    loss = mc.functional.cross_entropy(net(tiny_input(29)), mc.tensor(np.array([1, 2])))
    viz.graph(loss, tmp_path / "densenet.svg", names=dict(net.named_parameters()))
    assert (tmp_path / "densenet.svg").read_text().count("class=\"node\"") > 100


def test_without_dot_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    graph = viz.graph(lenet_loss(mc.models.lenet()))
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        graph.save(tmp_path / "graph.png")
    graph.save(tmp_path / "graph.dot")  # the DOT text needs no Graphviz
    assert (tmp_path / "graph.dot").read_text() == graph.source


def test_a_leaf_has_no_graph():
    with pytest.raises(ValueError, match="no graph"):
        viz.graph(mc.tensor([1.0]))


# ---- what a network sees -----------------------------------------------------------------
def test_feature_maps_are_the_layers_outputs():
    mc.manual_seed(0)
    net = mc.models.lenet()
    image = tiny_input(n=1)
    assert list(viz.layer_outputs(net, image, "3")) == ["3"]  # one name, as a string
    maps = viz.layer_outputs(net, image)
    assert list(maps) == ["0", "3"]  # the two convolutions
    with mc.no_grad():
        first = net[0](image)
        second = net[3](net[2](net[1](first)))
    np.testing.assert_array_equal(maps["0"], first.numpy()[0])
    np.testing.assert_array_equal(maps["3"], second.numpy()[0])
    figure = viz.feature_maps(net, image, channels=4)
    shown = [ax.images[0].get_array() for ax in figure.axes[4:8]]  # the first layer's row
    for k, picture in enumerate(shown):
        np.testing.assert_array_equal(np.asarray(picture), maps["0"][k])
    assert all(m.training for m in net.modules())  # modes restored


def test_saliency_equals_finite_differences():
    mc.manual_seed(0)
    net = mc.models.lenet().double()
    image = np.random.default_rng(1).random((1, 1, 28, 28))
    with mc.no_grad():  # a picture records the graph it needs, even here
        heat, predicted = viz.saliency_map(net, image)
    assert all(p.grad is None for p in net.parameters())  # the network is left as it was
    net.eval()
    with mc.no_grad():
        assert predicted == int(net(mc.tensor(image)).numpy().argmax())

    def score(x):
        with mc.no_grad():
            return net(mc.tensor(x)).numpy()[0, predicted]

    h = 1e-6
    for i, j in [(3, 4), (14, 14), (20, 9), (27, 27)]:
        step = np.zeros_like(image)
        step[0, 0, i, j] = h
        estimate = (score(image + step) - score(image - step)) / (2 * h)
        assert heat[i, j] == pytest.approx(abs(estimate), rel=1e-5, abs=1e-10)


def test_grad_cam_is_its_formula_on_the_last_convolution():
    mc.manual_seed(0)
    net = mc.models.lenet().double()
    image = np.random.default_rng(2).random((1, 1, 28, 28))
    heat, predicted, layer = viz.grad_cam_map(net, image)
    assert layer == "3"
    net.eval()
    with mc.no_grad():
        assert predicted == int(net(mc.tensor(image)).numpy().argmax())
    expected = np.maximum(lenet_grad_cam_by_hand(net, image, predicted), 0)
    np.testing.assert_allclose(heat, expected, rtol=1e-12, atol=1e-15)


def lenet_grad_cam_by_hand(net, image, predicted):
    """LeNet's channels at layer 3, weighted by their mean gradient, summed: Grad-CAM's
    map before its ReLU."""
    net.eval()
    with mc.no_grad():
        A = net[3](net[2](net[1](net[0](mc.tensor(image)))))
    A = mc.tensor(A.numpy(), requires_grad=True)  # split by hand: the rest starts at A
    rest = A
    for module in list(net)[4:]:
        rest = module(rest)
    rest[0, predicted].backward()
    weights = A.grad.numpy()[0].mean(axis=(1, 2))
    return (weights[:, None, None] * A.numpy()[0]).sum(axis=0)


def test_grad_cam_keeps_only_what_raises_the_score():
    """Grad-CAM's ReLU: where the weighted channels sum to less than zero, the map is
    zero. (The book's xavier weights and this seed give a sum negative at 10 of the 100
    places and positive at the rest, so that the ReLU acts and a map without it differs.)"""
    mc.manual_seed(2)
    net = mc.models.lenet().double()
    mc.train.init_weights(net)
    image = np.random.default_rng(2).random((1, 1, 28, 28))
    heat, predicted, _ = viz.grad_cam_map(net, image)
    raw = lenet_grad_cam_by_hand(net, image, predicted)
    assert (raw < 0).any() and (raw > 0).any()
    np.testing.assert_array_equal(heat[raw < 0], 0)
    np.testing.assert_allclose(heat[raw > 0], raw[raw > 0], rtol=1e-12)


@pytest.mark.parametrize("model, size, layer", [
    ("resnet18", 96, "4"),  # the last stage: its Residual's output, after the addition
    ("googlenet", 96, "4.1"),  # the last Inception, all four branches
    ("densenet", 96, "7"),  # the last DenseBlock, every channel it concatenated
    ("nin", 224, "7"),  # the last NiN block
])  # fmt: skip
def test_grad_cam_looks_where_the_last_blocks_meet(model, size, layer):
    net = mc.models.get(model)
    heat, _, chosen = viz.grad_cam_map(net, tiny_input(size, n=1))
    assert chosen == layer and heat.ndim == 2 and min(heat.shape) > 1


def test_pictures_leave_the_network_as_it_was():
    """Modes (batch norm, dropout) and gradients are restored, even from non-None."""
    mc.manual_seed(0)
    net = mc.models.lenet_bn()
    net.train()
    lenet_loss(net).backward()
    grads = {name: p.grad for name, p in net.named_parameters()}
    viz.saliency_map(net, tiny_input(n=1))
    viz.grad_cam_map(net, tiny_input(n=1))
    viz.layer_outputs(net, tiny_input(n=1))
    assert all(m.training for m in net.modules())
    assert all(p.grad is grads[name] for name, p in net.named_parameters())
    assert all("forward" not in m.__dict__ for m in net.modules())


def test_an_image_of_pixels_is_scaled_like_the_loaders():
    net = mc.models.lenet()
    pixels = np.random.default_rng(3).integers(0, 256, (28, 28), dtype=np.uint8)
    np.testing.assert_array_equal(viz.layer_outputs(net, pixels)["0"],
                                  viz.layer_outputs(net, pixels / 255.0)["0"])  # fmt: skip
    with pytest.raises(ValueError, match=r"expected one image.*got shape \(2, 1, 28, 28\)"):
        viz.saliency_map(net, tiny_input(n=2))


def test_filters_show_the_first_convolutions_weights():
    net = mc.models.lenet()
    figure = viz.filters(net)
    weights = net[0].weight.numpy().mean(axis=1)
    for k in range(6):
        np.testing.assert_array_equal(np.asarray(figure.axes[k].images[0].get_array()), weights[k])


def test_unknown_layers_and_flat_outputs_are_clear_errors():
    net = mc.models.lenet()
    with pytest.raises(ValueError, match=r"no layer named 'conv9' in lenet; its layers are: 0, 1, 2"):
        viz.layer_outputs(net, tiny_input(n=1), ["conv9"])
    with pytest.raises(ValueError, match=r"layer 7 has no feature maps: .*have them: 0, 3"):
        viz.feature_maps(net, tiny_input(n=1), ["7"])


# ---- the chapter's mechanics ---------------------------------------------------------------
def _texts(axes):
    return [text.get_text() for text in axes.texts]


def test_the_mechanics_figures_show_the_books_numbers(tmp_path):
    figure = viz.corr2d(tmp_path / "corr2d.png")
    assert _texts(figure.axes[2]) == ["19", "25", "37", "43"]
    assert "= 19" in figure._supxlabel.get_text()
    figure = viz.im2col()
    assert _texts(figure.axes[2]) == ["1", "2", "1", "2", "4", "2", "1", "2", "1"]  # overlaps
    figure = viz.pooling()
    assert _texts(figure.axes[1]) == ["4", "5", "7", "8"] and _texts(figure.axes[2]) == ["2", "3", "5", "6"]
    figure = viz.padding_and_stride()
    assert "= 4" in figure._supxlabel.get_text()
    assert (tmp_path / "corr2d.png").read_bytes()[:4] == b"\x89PNG"


def test_a_figure_is_never_written_half_way(tmp_path, monkeypatch):
    path = tmp_path / "pooling.png"
    path.write_bytes(b"the old picture")
    figure = viz.pooling()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(figure, "savefig", fail)
    with pytest.raises(OSError, match="disk full"):
        viz._figure.finish(figure, path)
    assert path.read_bytes() == b"the old picture"
    assert [p.name for p in tmp_path.iterdir()] == ["pooling.png"]  # no temporary left


# ---- predictions and the confusion matrix on the real test set -----------------------------
@pytest.fixture(scope="module")
def test_iter():
    try:
        return mc.data.load_fashion_mnist(128, limit=600)[1]
    except FileNotFoundError as error:
        pytest.skip(f"needs the Fashion-MNIST files (apt-get install dataset-fashion-mnist): {error}")


def test_the_confusion_matrix_sums_to_the_test_set_and_its_trace_is_the_accuracy(test_iter):
    mc.manual_seed(0)
    net = mc.models.lenet()
    mc.train.init_weights(net)
    counts = viz.confusion_matrix(net, test_iter)
    assert counts.shape == (10, 10) and counts.sum() == test_iter.num_examples == 600
    np.testing.assert_array_equal(counts.sum(axis=1), np.bincount(test_iter.labels[:600], minlength=10))
    assert np.trace(counts) / counts.sum() == mc.train.evaluate_accuracy(net, test_iter)
    figure = viz.confusion(counts)
    assert f"accuracy {np.trace(counts) / 600:.3f}" in figure.axes[0].get_title()


def test_a_run_keeps_its_last_evaluations_predictions_for_the_confusion_matrix(test_iter):
    mc.manual_seed(0)
    net = mc.models.lenet()
    train_iter = mc.data.load_fashion_mnist(128, limit=256)[0]
    history = mc.train.fit(net, train_iter, test_iter, 2, 0.9, progress=False, log=lambda *a: None)
    counts = viz.confusion_counts(history.test_predictions)
    np.testing.assert_array_equal(counts, viz.confusion_matrix(net, test_iter))
    assert counts.sum() == 600 and np.trace(counts) / 600 == history.last["test_acc"]


def test_the_run_pictures_count_the_kept_predictions_instead_of_a_second_pass(test_iter, tmp_path):
    mc.manual_seed(0)
    net = mc.models.lenet()
    mc.train.init_weights(net)
    kept = []
    accuracy = mc.train.evaluate_accuracy(net, test_iter, kept)
    images_seen = []
    forward = net.forward
    net.forward = lambda x: (images_seen.append(x.shape[0]), forward(x))[1]
    viz.report.write_run_pictures(tmp_path, net, test_iter, kept)
    assert sum(images_seen) <= 12 + 1  # the 12 predictions drawn, test image 0's feature maps
    assert (tmp_path / "confusion.png").is_file()
    np.testing.assert_array_equal(viz.confusion_counts(kept), viz.confusion_matrix(net, test_iter))
    assert np.trace(viz.confusion_counts(kept)) / 600 == accuracy


def test_predictions_mark_the_wrong_ones_red(test_iter):
    mc.manual_seed(0)
    net = mc.models.lenet()
    figure = viz.predictions(net, test_iter, n=12)
    X, y = next(iter(test_iter))
    with mc.no_grad():
        net.eval()
        wrong = int((net(X).numpy()[:12].argmax(axis=1) != y.numpy()[:12]).sum())
    red = [ax for ax in figure.axes if ax.get_title() and ax.title.get_color() == "red"]
    assert len(red) == wrong


def test_an_image_index_out_of_range_gives_the_range(test_iter):
    with pytest.raises(IndexError, match="image index 600 is out of range: .* 0 to 599"):
        test_iter.example(600)


# ---- a run: the files train writes, the command line, the report in a browser -------------
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, test_iter):
    out = tmp_path_factory.mktemp("runs") / "lenet"
    mc.train.train_recipe("lenet", epochs=1, limit=512, out=out, log=lambda *a: None)
    return out


def test_train_writes_the_pictures_and_the_report(run_dir):
    for name in ("curves.png", "predictions.png", "confusion.png", "filters.png",
                 "featuremaps.png", "report.html", "run.json"):  # fmt: skip
        assert (run_dir / name).is_file(), name
    run = json.loads((run_dir / "run.json").read_text())
    assert run["model"] == "lenet" and run["recipe"]["lr"] == 0.9 and run["machine"]["cores"] >= 1
    page = (run_dir / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 5
    assert "loss " in page and "examples/sec on cpu" in page


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "minicnn", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)  # fmt: skip


def test_show_writes_each_picture_from_the_runs_checkpoint(run_dir):
    cwd = run_dir.parent.parent  # runs/lenet/ below it
    (cwd / "runs").mkdir(exist_ok=True)
    if not (cwd / "runs" / "lenet").exists():
        (cwd / "runs" / "lenet").symlink_to(run_dir)
    for what in ("graph", "filters", "featuremaps", "saliency", "gradcam", "predictions", "confusion"):
        result = run_cli("show", what, "lenet", "--image", "0", cwd=cwd)
        assert result.returncode == 0, result.stderr
        assert (run_dir / "pictures" / f"{what}.png").read_bytes()[:4] == b"\x89PNG"
    assert (run_dir / "pictures" / "graph.dot").read_text().startswith("digraph")
    result = run_cli("show", "featuremaps", "lenet", "--layer", "3", "--out", "mine", cwd=cwd)
    assert result.returncode == 0 and (cwd / "mine" / "featuremaps.png").exists()


def test_show_draws_the_checkpoints_weights(run_dir):
    """The filters drawn are the trained ones, not a fresh network's."""
    from minicnn.train import load_network

    with np.load(run_dir / "checkpoint.npz") as saved:
        trained = saved["model/0.weight"]
    net = load_network("lenet", run_dir / "checkpoint.npz")
    np.testing.assert_array_equal(net[0].weight.numpy(), trained)
    figure = viz.filters(net)
    np.testing.assert_array_equal(np.asarray(figure.axes[0].images[0].get_array()),
                                  trained.mean(axis=1)[0])  # fmt: skip


@pytest.mark.parametrize("args, message", [
    (("show", "filters", "resnet18", "--checkpoint", "CHECKPOINT"), "holds a lenet network, not a resnet18"),
    (("show", "saliency", "lenet", "--checkpoint", "CHECKPOINT", "--image", "10000"),
     "image index 10000 is out of range"),
    (("show", "featuremaps", "lenet", "--checkpoint", "CHECKPOINT", "--layer", "x"),
     "no layer named 'x' in lenet; its layers are"),
    (("show", "filters", "densenet"), "no checkpoint at runs/densenet/checkpoint.npz: train one with"),
    (("report", "nowhere"), "nowhere: no metrics.jsonl"),
])  # fmt: skip
def test_bad_requests_are_one_clear_line(run_dir, tmp_path, args, message):
    args = [str(run_dir / "checkpoint.npz") if a == "CHECKPOINT" else a for a in args]
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_report_rebuilds_the_page(run_dir):
    (run_dir / "report.html").unlink()
    result = run_cli("report", str(run_dir), cwd=run_dir)
    assert result.returncode == 0, result.stderr
    assert (run_dir / "report.html").read_text().count("data:image/png;base64,") == 5


CHECK = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const result = {images: images.length,
                  loaded: images.filter(i => i.complete && i.naturalWidth > 0).length,
                  rows: document.querySelectorAll("#summary tbody tr").length,
                  tableHeight: document.querySelector("#summary").getBoundingClientRect().height};
  document.body.setAttribute("data-check", JSON.stringify(result));
});
</script></body>"""


def test_the_report_opens_in_a_real_browser(run_dir, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("needs Chromium to open the report (apt-get install chromium)")
    page = (run_dir / "report.html").read_text().replace("</body>", CHECK)
    checked = tmp_path / "report.html"
    checked.write_text(page)
    result = subprocess.run(
        [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
         "--dump-dom", checked.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    found = re.search(r'data-check="([^"]*)"', result.stdout)
    assert found, result.stderr[-2000:]
    check = json.loads(found.group(1).replace("&quot;", '"'))
    assert check["images"] == 5 and check["loaded"] == 5
    assert check["rows"] == 12 and check["tableHeight"] > 100  # LeNet's 12 layers, drawn
