"""The command line: ``minicnn train|summary|gradcheck|show|report`` (also ``python -m minicnn``).

minicnn train lenet                       # the book's recipe for LeNet
minicnn train resnet18 --resize 32 --limit 2000 --epochs 2
minicnn summary resnet18 --size 224
minicnn show featuremaps lenet --image 0  # a picture of the trained network (runs/lenet/)
minicnn report runs/lenet                 # rebuild runs/lenet/report.html

Every argument is checked before any work starts: a bad one is a one-line error that
names it and what it accepts (exit status 2), with no traceback and no run folder left.
What goes wrong later (a bad checkpoint or data file, a folder that holds a run, a full
disk) is one line too, naming the file and what to do (exit status 1); Ctrl-C and
SIGTERM save the run and exit with 130 and 143. ``--debug`` (or ``MINICNN_DEBUG=1``)
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy

from . import config, models, threads
from .backend import available_backends, current_backend, manual_seed, use_backend


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:  # the environment's choices too: MINICNN_BACKEND, MINICNN_CONV_OFF, OMP_NUM_THREADS, ...
        if args.backend:
            use_backend(args.backend)
        current_backend()
        config.check_switches()
        if args.threads:
            threads.set_num_threads(args.threads)
    except (ValueError, RuntimeError) as error:
        parser.error(str(error))
    if getattr(args, "resume", False):
        checkpoint = Path(args.out or f"runs/{args.model}") / "checkpoint.npz"
        if not checkpoint.exists():
            parser.error(f"argument --resume: no checkpoint to resume from at {checkpoint}")
    for argument in ("resize", "size"):  # an image side the network accepts
        if getattr(args, argument, None) is not None:
            _check_side(parser, args.model, args.__dict__[argument], f"--{argument}")
    return _run(args)


def _run(args) -> int:
    """Run the command; what goes wrong is one line on stderr, not a traceback."""
    from .data.fashion_mnist import DownloadError, IDXError
    from .durable import DiskFullError
    from .train import CheckpointError, RunExistsError, Terminated, TrainingDiverged

    debug = args.debug or os.environ.get("MINICNN_DEBUG", "") not in ("", "0")
    try:
        return args.run(args)
    except Terminated:
        return 143  # 128 + SIGTERM; the run said where it saved itself
    except KeyboardInterrupt:
        return 130  # 128 + SIGINT
    except RunExistsError as error:
        if debug:
            raise
        _say(args, f"{error.folder} holds {error.holds}: --resume continues it, --out DIR "
                   "starts a new run elsewhere, --overwrite replaces it")  # fmt: skip
    except (CheckpointError, IDXError, DiskFullError, DownloadError, TrainingDiverged,
            FileNotFoundError) as error:  # fmt: skip
        if debug:
            raise
        _say(args, str(error))
    return 1


def _say(args, message: str) -> None:
    """One line on stderr: ``minicnn COMMAND: message`` (a message's lines joined)."""
    line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    print(f"minicnn {args.command}: {line}", file=sys.stderr)


def _check_side(parser, model: str, side: int, argument: str) -> None:
    net = models.get(model)
    try:
        net.check_input(numpy.empty((0, net.in_channels, side, side), numpy.float32))
    except ValueError as error:
        parser.error(f"argument {argument}: {error}")


def _whole_number(text: str) -> int:
    """argparse type: a whole number >= 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def _natural_number(text: str) -> int:
    """argparse type: a whole number >= 0."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(text)


def _positive_number(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minicnn", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train", help="train a network on Fashion-MNIST (the book's recipe)"
    )
    train.add_argument("model", choices=models.names())
    train.add_argument("--epochs", type=_whole_number, help="default: the book's 10")
    train.add_argument("--lr", type=_positive_number, help="default: the book's, per model")
    train.add_argument("--batch-size", type=_whole_number, help="default: the book's, per model")
    train.add_argument(
        "--resize", type=_whole_number, help="image side; default: the book's, per model"
    )
    train.add_argument(
        "--limit", type=_whole_number, help="use only the first LIMIT training and test images"
    )
    train.add_argument("--seed", type=_natural_number, default=0)
    train.add_argument(
        "--out", help="folder for metrics, curves and checkpoints (default runs/MODEL)"
    )
    again = train.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    again.add_argument("--overwrite", action="store_true",
                       help="replace the run that OUT holds (without this, a run is never replaced)")  # fmt: skip
    train.add_argument("--data-root", help="folder holding the Fashion-MNIST files")
    train.add_argument("--download", action="store_true", help="download the data if not found")
    train.set_defaults(run=_train, command="train")

    summary = commands.add_parser("summary", help="per-layer shapes, parameters and FLOPs")
    summary.add_argument("model", choices=models.names())
    summary.add_argument(
        "--size", type=_whole_number, help="input side; default: the book's, per model"
    )
    summary.set_defaults(run=_summary, command="summary")

    gradcheck = commands.add_parser("gradcheck", help="finite-difference check of a whole network")
    gradcheck.add_argument("model", choices=models.names())
    gradcheck.add_argument("--directions", type=_whole_number, default=3)
    gradcheck.set_defaults(run=_gradcheck, command="gradcheck")

    show = commands.add_parser("show", help="draw a picture of a trained network (mc.viz)")
    show.add_argument("what", choices=SHOWS, help="the picture")
    show.add_argument("model", choices=models.names())
    show.add_argument("--checkpoint", help="default: runs/MODEL/checkpoint.npz")
    show.add_argument("--image", type=_natural_number, default=0, help="test image index")
    show.add_argument("--layer", action="append",
                      help="featuremaps, gradcam: a layer's dotted name (as mc.summary shows it)")
    show.add_argument("--out", help="folder for the PNG (default: pictures/ beside the checkpoint)")
    show.add_argument("--data-root", help="folder holding the Fashion-MNIST files")
    show.set_defaults(run=_show, command="show")

    report = commands.add_parser("report", help="rebuild RUN_DIR/report.html from a run")
    report.add_argument("run_dir", help="a run's folder, e.g. runs/lenet")
    report.add_argument("--data-root", help="folder holding the Fashion-MNIST files")
    report.set_defaults(run=_report, command="report")

    for command in (train, summary, gradcheck, show, report):
        command.add_argument("--backend", choices=available_backends(), help="array backend")
        command.add_argument(
            "--threads",
            type=_whole_number,
            help="CPU threads (default: every core this process may use; see mc.set_num_threads)",
        )
        command.add_argument("--debug", action="store_true",
                             help="show the traceback of an error (also MINICNN_DEBUG=1)")  # fmt: skip
    return parser


#: minicnn show WHAT: the pictures; those that look at test images load the test set.
SHOWS = ("graph", "filters", "featuremaps", "saliency", "gradcam", "predictions", "confusion")
NEEDS_IMAGES = {"featuremaps", "saliency", "gradcam", "predictions", "confusion"}
#: What a picture or report command may meet: one line of error, exit status 2.
PICTURE_ERRORS = (OSError, ValueError, IndexError, KeyError, RuntimeError, ImportError)


def _show(args) -> int:
    """Draw one picture of MODEL, trained (its run's checkpoint), into WHAT.png in
    --out (default: the run's pictures/ folder, beside the run's own report pictures)."""
    from .train import load_network

    checkpoint = Path(args.checkpoint or f"runs/{args.model}/checkpoint.npz")
    out = Path(args.out) if args.out else checkpoint.parent / "pictures"
    path = out / f"{args.what}.png"
    try:
        if args.what == "graph":  # the graph's shape needs no trained weights
            net = load_network(args.model, checkpoint) if checkpoint.exists() else models.get(args.model)
            _show_graph(net, path)
        else:
            net = load_network(args.model, checkpoint)
            run = _run_beside(checkpoint)
            test_iter = _test_images(args, run, args.model) if args.what in NEEDS_IMAGES else None
            _draw(args, net, test_iter, path)
    except PICTURE_ERRORS as error:
        print(f"minicnn show {args.what}: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def _draw(args, net, test_iter, path) -> None:
    from . import viz

    if args.what == "filters":
        viz.filters(net, path=path)
    elif args.what == "predictions":
        viz.predictions(net, test_iter, path=path)
    elif args.what == "confusion":
        viz.confusion(viz.confusion_matrix(net, test_iter), path=path)
    else:
        image, _ = test_iter.example(args.image)
        if args.what == "featuremaps":
            viz.feature_maps(net, image, args.layer, path=path)
        elif args.what == "saliency":
            viz.saliency(net, image, path=path)
        else:
            viz.grad_cam(net, image, args.layer[-1] if args.layer else None, path=path)


def _show_graph(net, path) -> None:
    """The graph of one training step's loss; its DOT text beside the picture, always."""
    from . import viz
    from .functional import cross_entropy
    from .tensor import tensor

    size = net.resolution
    rng = numpy.random.default_rng(0)
    x = tensor(rng.random((2, net.in_channels, size, size), dtype=numpy.float32))
    loss = cross_entropy(net(x), tensor(numpy.array([0, 1])))
    graph = viz.graph(loss, names=net)
    graph.save(path.with_suffix(".dot"))
    try:
        graph.save(path)
    except RuntimeError as error:
        raise RuntimeError(f"{error}; wrote the DOT text to {path.with_suffix('.dot')}") from None


def _run_beside(checkpoint: Path) -> dict:
    from .viz.report import read_run

    return read_run(checkpoint.parent)


def _test_images(args, run: dict, model: str):
    """The test images as the run saw them: its resize and limit (run.json), else the
    recipe's."""
    from .data import DataLoader, FashionMNIST
    from .train import RECIPES

    recipe = run.get("recipe", {})
    resize = recipe["resize"] if "resize" in recipe else RECIPES[model].resize
    return DataLoader(FashionMNIST(args.data_root, train=False), 256, resize=resize,
                      limit=recipe.get("limit"))  # fmt: skip


def _report(args) -> int:
    """Rebuild a run's report.html: its pictures redrawn from its checkpoint when the
    run says which network it trained (run.json) and the test images are here, else
    the pictures it has."""
    from .train import load_network
    from .viz.report import read_metrics, read_run, write_report

    run_dir = Path(args.run_dir)
    try:
        read_metrics(run_dir)
        run = read_run(run_dir)
        net = test_iter = None
        if run.get("model") and (run_dir / "checkpoint.npz").exists():
            net = load_network(run["model"], run_dir / "checkpoint.npz")
            try:
                test_iter = _test_images(args, run, run["model"])
            except FileNotFoundError as error:
                print(f"minicnn report: keeping the run's pictures: {error}", file=sys.stderr)
        path = write_report(run_dir, net, test_iter)
    except PICTURE_ERRORS as error:
        print(f"minicnn report: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def _train(args) -> int:
    from .train import train_recipe

    train_recipe(
        args.model, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
        resize=args.resize, limit=args.limit, seed=args.seed, out=args.out, resume=args.resume,
        overwrite=args.overwrite, data_root=args.data_root, download=args.download,
    )  # fmt: skip
    return 0


def _summary(args) -> int:
    from .summary import summary

    net = models.get(args.model)
    size = args.size or net.resolution
    print(summary(net, (1, net.in_channels, size, size)))
    return 0


def _gradcheck(args) -> int:
    """Every parameter moved at once along random unit directions, in float64, on the
    smallest input that leaves every stage at least 2x2 (a 1x1 input would give batch
    norm only a few values per channel, and gradients of 1e4)."""
    import numpy

    from .functional import cross_entropy
    from .gradcheck import GradcheckError, gradcheck
    from .tensor import tensor

    manual_seed(0)
    net = models.get(args.model).double()
    size = net.min_size if net.min_size > 1 else 33
    rng = numpy.random.default_rng(0)
    x = tensor(rng.random((3, net.in_channels, size, size)))
    y = tensor(rng.integers(0, net.num_classes, 3))
    params = list(net.parameters())
    try:
        gradcheck(
            lambda *p: cross_entropy(net(x), y), params, joint=True, directions=args.directions
        )
    except GradcheckError as error:
        print(f"{args.model}: {error}", file=sys.stderr)
        return 1
    print(
        f"{args.model}: gradients of {len(params)} parameter tensors agree with finite differences"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
