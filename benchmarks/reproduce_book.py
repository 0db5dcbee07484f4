"""Reproduce the book's results (the closing lines D2L 7.6 and 8.1-8.7 print): each network trained by minicnn
and by PyTorch with the same recipe, the same starting weights, the same files and the
same shuffled order, then one markdown table.

    python benchmarks/reproduce_book.py                       # every row below
    python benchmarks/reproduce_book.py --models lenet,lenet_bn

LeNet and LeNet-BN run the book's full recipe. The other networks cost hours per epoch
at the book's resolution on 2 CPU cores, so they run the reduced recipe in REDUCED, each
about ten minutes per engine on one core: fewer epochs, a smaller resize where the network
allows it (AlexNet's Linear layer needs 193 to 224, VGG's exactly 224), and for AlexNet
and VGG a subset (``limit`` training and test images) and a smaller batch, for more steps
in the time; the learning rate is the book's.

Both engines start from the same weights and see the same batches in the same order;
dropout (AlexNet, VGG) zeroes the same values (benchmarks/train_torch.py). What remains
between them is floating-point rounding, which training amplifies.
"""

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]

# model -> overrides of the book's recipe (empty: the full recipe)
REDUCED = {
    "lenet": {},
    "lenet_bn": {},
    "alexnet": dict(resize=193, limit=9600, epochs=1, batch_size=32),
    "vgg11": dict(limit=8192, epochs=2, batch_size=32),
    "nin": dict(resize=72, epochs=2),
    "googlenet": dict(resize=32, epochs=4),
    "resnet18": dict(resize=32, epochs=2),
    "densenet": dict(resize=32, epochs=3),
}
BOOK = {  # d2l-zh 2.0.0 loss / train acc / test acc
    "lenet": "0.469 / 0.823 / 0.779",
    "lenet_bn": "0.267 / 0.902 / 0.708",
    "alexnet": "0.331 / 0.878 / 0.883",
    "vgg11": "0.178 / 0.935 / 0.920",
    "nin": "0.563 / 0.786 / 0.790",
    "googlenet": "0.262 / 0.900 / 0.886",
    "resnet18": "0.012 / 0.997 / 0.893",
    "densenet": "0.140 / 0.948 / 0.885",
}


def options(overrides: dict) -> list[str]:
    return [f"--{k.replace('_', '-')}={v}" for k, v in overrides.items()]


def run_minicnn(model, overrides, seed, backend):
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "minicnn", "train", model, f"--seed={seed}", f"--out={out}",
                   *options(overrides), *([f"--backend={backend}"] if backend else [])]  # fmt: skip
        subprocess.run(command, check=True, cwd=ROOT)
        return json.loads(pathlib.Path(out, "metrics.jsonl").read_text().splitlines()[-1])


def run_torch(model, overrides, seed):
    with tempfile.TemporaryDirectory() as out:
        result = pathlib.Path(out, "result.jsonl")
        command = [sys.executable, str(ROOT / "benchmarks" / "train_torch.py"), model,
                   f"--seed={seed}", f"--json={result}", *options(overrides)]  # fmt: skip
        subprocess.run(command, check=True, cwd=ROOT)
        return json.loads(result.read_text().splitlines()[-1])


def fmt(result) -> str:
    return f"{result['train_loss']:.3f} / {result['train_acc']:.3f} / {result['test_acc']:.3f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(REDUCED))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", help="minicnn backend (default: the fastest installed)")
    parser.add_argument("--json", help="append every result to this file as JSON lines")
    args = parser.parse_args()
    rows = []
    for model in args.models.split(","):
        overrides = REDUCED[model]
        mine = run_minicnn(model, overrides, args.seed, args.backend)
        theirs = run_torch(model, overrides, args.seed)
        recipe = "book" if not overrides else ", ".join(f"{k} {v}" for k, v in overrides.items())
        gap = 100 * (mine["test_acc"] - theirs["test_acc"])
        rows.append(
            f"| {model} | {recipe} | {BOOK[model]} | {fmt(theirs)} | {fmt(mine)} | {gap:+.1f} |"
        )
        if args.json:
            with open(args.json, "a") as file:
                for engine, result in (("minicnn", mine), ("pytorch", theirs)):
                    file.write(
                        json.dumps(dict(result, model=model, engine=engine, recipe=recipe)) + "\n"
                    )
        print("\n".join(rows[-1:]), flush=True)
    print(
        "\n| model | recipe | book (d2l-zh 2.0.0) | PyTorch, same recipe | minicnn | test acc gap (points) |"
    )
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
