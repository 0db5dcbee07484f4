"""D2L 8.6 Residual Networks (ResNet): ResNet-18, stage by stage.

    python examples/resnet.py             # 96x96, the size the book trains at
    python examples/resnet.py --size 224  # the book's walk-through: 64x56x56 ... 512x7x7

Prints each top-level block's output shape, as the book does, then mc.summary's table;
--train then trains it with the book's recipe (--epochs, --limit for a shorter run).
"""

from _network_example import main

if __name__ == "__main__":
    main("resnet18", __doc__)
