"""The command line: ``minicnn train|summary|gradcheck`` (also ``python -m minicnn``).

minicnn train lenet                       # the book's recipe for LeNet
minicnn train resnet18 --resize 32 --limit 2000 --epochs 2
minicnn summary resnet18 --size 224

Every argument is checked before any work starts: a bad one is a one-line error that
names it and what it accepts (exit status 2), with no traceback and no run folder left.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy

from . import models, threads
from .backend import available_backends, current_backend, manual_seed, use_backend


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:  # the environment's choices too: MINICNN_BACKEND, OMP_NUM_THREADS, ...
        if args.backend:
            use_backend(args.backend)
        current_backend()
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
    return args.run(args)


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
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    train.add_argument("--data-root", help="folder holding the Fashion-MNIST files")
    train.add_argument("--download", action="store_true", help="download the data if not found")
    train.set_defaults(run=_train)

    summary = commands.add_parser("summary", help="per-layer shapes, parameters and FLOPs")
    summary.add_argument("model", choices=models.names())
    summary.add_argument(
        "--size", type=_whole_number, help="input side; default: the book's, per model"
    )
    summary.set_defaults(run=_summary)

    gradcheck = commands.add_parser("gradcheck", help="finite-difference check of a whole network")
    gradcheck.add_argument("model", choices=models.names())
    gradcheck.add_argument("--directions", type=_whole_number, default=3)
    gradcheck.set_defaults(run=_gradcheck)

    for command in (train, summary, gradcheck):
        command.add_argument("--backend", choices=available_backends(), help="array backend")
        command.add_argument(
            "--threads",
            type=_whole_number,
            help="CPU threads (default: every core this process may use; see mc.set_num_threads)",
        )
    return parser


def _train(args) -> int:
    from .train import train_recipe

    train_recipe(
        args.model, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
        resize=args.resize, limit=args.limit, seed=args.seed, out=args.out, resume=args.resume,
        data_root=args.data_root, download=args.download,
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
