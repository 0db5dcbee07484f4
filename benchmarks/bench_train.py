"""The main job as a user runs it: ``minicnn train MODEL`` beside PyTorch on the same recipe.

    python benchmarks/bench_train.py                          # LeNet, LeNet-BN: full recipe
    python benchmarks/bench_train.py --models lenet --rounds 3
    python benchmarks/bench_train.py --models resnet18,densenet --images 2048

Each run is a fresh process, timed by the wall clock from start to exit, with the
environment as it is (no thread variables added: every engine on its default threads,
all the cores this process may use):

- minicnn: ``python -m minicnn train MODEL --seed 0 [overrides]``, the command line itself;
- PyTorch: ``python benchmarks/train_torch.py MODEL --seed 0 [overrides]``, the book's
  ``train_ch6`` in PyTorch, on the same Fashion-MNIST files, in the same shuffled order,
  from the same initial weights, with the same evaluation after every epoch.

Both read the files, shuffle, batch, resize (bilinear), train, evaluate the test set
each epoch and print the book's closing lines, so the wall time covers the same work.
LeNet and LeNet-BN run their full recipe (10 epochs of 60 000 images); the other
networks run ``--images`` training images (and as many test images) for one epoch at
their recipe's resolution and batch, since a full recipe costs hours on a few cores.
Rounds alternate the engines, so a neighbour's burst on a shared machine hits both; the
median of the rounds is reported. "examples/s" is training images over wall seconds.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

import common  # noqa: E402

from minicnn.train import RECIPES  # noqa: E402

FULL_RECIPE = ("lenet", "lenet_bn")
FINAL_LINE = re.compile(r"loss ([\d.]+), train acc ([\d.]+), test acc ([\d.]+)")
TRAIN_IMAGES = 60_000


def overrides(model: str, images: int) -> list[str]:
    """The command-line arguments that cut a recipe to ``images`` images, one epoch."""
    return [] if model in FULL_RECIPE else [f"--limit={images}", "--epochs=1"]


def run(command: list[str]) -> dict:
    """Run ``command`` to the end; its wall seconds and the book's final line."""
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    loss, train_acc, test_acc = map(float, FINAL_LINE.findall(result.stdout)[-1])
    return {"seconds": seconds, "loss": loss, "train_acc": train_acc, "test_acc": test_acc}


def minicnn_command(model: str, images: int, out: str) -> list[str]:
    return [sys.executable, "-m", "minicnn", "train", model, "--seed=0", f"--out={out}",
            *overrides(model, images)]  # fmt: skip


def torch_command(model: str, images: int) -> list[str]:
    return [sys.executable, str(ROOT / "benchmarks" / "train_torch.py"), model, "--seed=0",
            *overrides(model, images)]  # fmt: skip


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(FULL_RECIPE))
    parser.add_argument("--images", type=int, default=1024,
                        help="training images for the networks other than LeNet and LeNet-BN")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)

    header = "\n".join([
        f"Machine: {common.machine_line()}",
        "Threads: each engine's default (no thread variables set); wall clock, start to exit",
        *(f"- {line}" for line in common.library_report(with_torch=True)),
    ])  # fmt: skip
    print(header, flush=True)
    results = []
    for model in args.models.split(","):
        runs = {"minicnn": [], "torch": []}
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory() as out:
                runs["minicnn"].append(run(minicnn_command(model, args.images, out)))
            runs["torch"].append(run(torch_command(model, args.images)))
            print(f"  {model}: minicnn {runs['minicnn'][-1]['seconds']:.1f} s, "
                  f"torch {runs['torch'][-1]['seconds']:.1f} s", file=sys.stderr, flush=True)  # fmt: skip
        results.append(summarise(model, args.images, runs))
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps({"header": header, "results": results}, indent=1))


def summarise(model: str, images: int, runs: dict) -> dict:
    recipe = RECIPES[model]
    full = model in FULL_RECIPE
    examples = TRAIN_IMAGES * recipe.num_epochs if full else images
    row = {"model": model, "recipe": "book" if full else f"{images} images, 1 epoch",
           "resolution": recipe.resize or 28, "batch": recipe.batch_size, "examples": examples}  # fmt: skip
    for engine, engine_runs in runs.items():
        seconds = common.median([r["seconds"] for r in engine_runs])
        last = engine_runs[-1]
        row[engine] = {"seconds": seconds, "all_seconds": [r["seconds"] for r in engine_runs],
                       "examples_per_s": examples / seconds, "test_acc": last["test_acc"],
                       "loss": last["loss"], "train_acc": last["train_acc"]}  # fmt: skip
    row["ratio"] = row["minicnn"]["seconds"] / row["torch"]["seconds"]
    return row


def table(results: list[dict]) -> str:
    headers = ["network", "recipe", "res", "batch", "minicnn s", "torch s", "time / torch",
               "minicnn examples/s", "torch examples/s", "test acc (minicnn / torch)"]  # fmt: skip
    rows = [[r["model"], r["recipe"], r["resolution"], r["batch"],
             f"{r['minicnn']['seconds']:.1f}", f"{r['torch']['seconds']:.1f}", f"{r['ratio']:.2f}",
             f"{r['minicnn']['examples_per_s']:.0f}", f"{r['torch']['examples_per_s']:.0f}",
             f"{r['minicnn']['test_acc']:.3f} / {r['torch']['test_acc']:.3f}"]
            for r in results]  # fmt: skip
    return common.markdown_table(headers, rows)


if __name__ == "__main__":
    main()
