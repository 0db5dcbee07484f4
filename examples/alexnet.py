"""D2L 8.1 Deep Convolutional Neural Networks (AlexNet), layer by layer.

    python examples/alexnet.py              # 224x224, as the book
    python examples/alexnet.py --size 193   # the smallest it takes

Prints each top-level block's output shape, as the book does, then mc.summary's table;
--train then trains it with the book's recipe (--epochs, --limit for a shorter run).
"""

from _network_example import main

if __name__ == "__main__":
    main("alexnet", __doc__)
