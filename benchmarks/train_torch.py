"""The same training run in PyTorch: the book's recipe, the same Fashion-MNIST files, the
same shuffled order per epoch, so a minicnn result can be held against PyTorch's.

    python benchmarks/train_torch.py lenet                      # the book's recipe
    python benchmarks/train_torch.py resnet18 --resize 32 --limit 6000 --epochs 3

Prints the book's two closing lines, and with --json appends a JSON line of the result.
The PyTorch networks are the book's code, in tests/torch_models.py. By default they start
from the very weights a minicnn run with the same --seed starts from (the book's xavier
init, drawn by minicnn and copied across through the shared state_dict keys), and their
dropout layers (AlexNet, VGG) zero the very values minicnn's do: the masks come from
minicnn's generator, drawn in the same order (:class:`SharedDropout`). So the two runs
differ only in floating-point rounding. --torch-init and --torch-dropout draw with torch
instead.
"""

import argparse
import json
import pathlib
import sys
import time

import numpy
import torch
from torch import nn

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
import torch_models  # noqa: E402

import minicnn as mc  # noqa: E402
from minicnn.data import DataLoader, FashionMNIST  # noqa: E402  (reads the files, sets the order)
from minicnn.train import RECIPES, init_weights  # noqa: E402


def batches(loader: DataLoader, epoch: int, resize, device="cpu"):
    """The batches minicnn's loader would give in ``epoch``, as torch tensors on ``device``."""
    order = loader.order(epoch)
    for start in range(0, len(loader) * loader.batch_size, loader.batch_size):
        indices = order[start : start + loader.batch_size]
        X = torch.from_numpy(loader.images[indices]).to(device).float() / 255
        # NumPy may give the size-1 channel axis any stride, and torch then takes the batch
        # for channels-last (N, H, W, C) and runs every layer in that layout (LeNet-BN's
        # step 26 ms against 9). A user's loader gives the standard NCHW strides; so here:
        X = X.view(X.shape)
        if resize:
            X = nn.functional.interpolate(
                X, size=(resize, resize), mode="bilinear", align_corners=False
            )
        yield X, torch.from_numpy(loader.labels[indices]).to(device)


class SharedDropout(nn.Module):
    """``nn.Dropout`` drawing its mask as minicnn's Dropout does::

        mask = generator.random(x.shape, dtype=float32) >= p;  y = x * mask / (1 - p)

    from minicnn's generator (seeded by ``mc.manual_seed`` and advanced by the init draws
    exactly as in a minicnn run), so both engines drop the same values at every step."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        draws = mc.backend.cpu_generator().random(tuple(x.shape), dtype=numpy.float32)
        keep = torch.from_numpy(draws >= self.p).to(x.device)
        return x * keep * (1 / (1 - self.p))


def share_dropout(net: nn.Module) -> nn.Module:
    """Replace every ``nn.Dropout`` in ``net`` with a :class:`SharedDropout` of the same p."""
    for name, child in net.named_children():
        if isinstance(child, nn.Dropout):
            setattr(net, name, SharedDropout(child.p))
        else:
            share_dropout(child)
    return net


def initial_net(name, seed, torch_init):
    """The book's network with the book's init: minicnn's draws (the default) or torch's."""
    torch.manual_seed(seed)
    net = getattr(torch_models, name)()
    if torch_init:

        def xavier(m):
            if type(m) in (nn.Linear, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)

        net.apply(xavier)
        return net
    mc.manual_seed(seed)  # the same draws as `minicnn train NAME --seed SEED`
    twin = mc.models.get(name)
    init_weights(twin)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in twin.state_dict().items()})
    return net


def train(
    name, epochs, lr, batch_size, resize, limit, seed, torch_init=False, torch_dropout=False,
    device="cpu",
):  # fmt: skip
    """The book's train_ch6, line for line."""
    net = initial_net(name, seed, torch_init).to(device)
    if not torch_dropout:
        share_dropout(net)
    train_loader = DataLoader(
        FashionMNIST(train=True), batch_size, shuffle=True, seed=seed, limit=limit
    )
    test_loader = DataLoader(FashionMNIST(train=False), batch_size, limit=limit)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    seconds = examples = 0
    for epoch in range(epochs):
        net.train()
        loss_sum = correct = count = 0
        for X, y in batches(train_loader, epoch, resize, device):
            start = time.perf_counter()
            optimizer.zero_grad()
            y_hat = net(X)
            loss = loss_fn(y_hat, y)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                loss_sum += float(loss) * len(y)
                correct += int((y_hat.argmax(1) == y).sum())
                count += len(y)
            seconds += time.perf_counter() - start
        examples += count
        net.eval()
        with torch.no_grad():
            right = total = 0
            for X, y in batches(test_loader, 0, resize, device):
                right += int((net(X).argmax(1) == y).sum())
                total += len(y)
        result = dict(
            model=name, engine="pytorch", epoch=epoch + 1, train_loss=loss_sum / count,
            train_acc=correct / count, test_acc=right / total, examples_per_sec=examples / seconds,
        )  # fmt: skip
        print(
            f"epoch {epoch + 1}: loss {result['train_loss']:.3f}, train acc {result['train_acc']:.3f}, "
            f"test acc {result['test_acc']:.3f}",
            flush=True,
        )
    print(
        f"loss {result['train_loss']:.3f}, train acc {result['train_acc']:.3f}, "
        f"test acc {result['test_acc']:.3f}"
    )
    print(
        f"{result['examples_per_sec']:.1f} examples/sec on {device} (pytorch {torch.__version__})"
    )
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", choices=list(RECIPES))
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--resize", type=int)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--torch-init", action="store_true", help="draw the init with torch")
    parser.add_argument(
        "--torch-dropout", action="store_true", help="draw dropout masks with torch"
    )
    parser.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    parser.add_argument("--json", help="append the result as a JSON line to this file")
    args = parser.parse_args()
    recipe = RECIPES[args.model]
    result = train(
        args.model,
        args.epochs or recipe.num_epochs,
        args.lr or recipe.lr,
        args.batch_size or recipe.batch_size,
        args.resize if args.resize is not None else recipe.resize,
        args.limit,
        args.seed,
        args.torch_init,
        args.torch_dropout,
        args.device,
    )
    if args.json:
        with open(args.json, "a") as file:
            file.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
