"""D2L 7.6 Convolutional Neural Networks (LeNet): LeNet-5, layer by layer.

    python examples/lenet.py

Prints each top-level block's output shape, as the book does, then mc.summary's table;
--train then trains it with the book's recipe (--epochs, --limit for a shorter run).
"""

from _network_example import main

if __name__ == "__main__":
    main("lenet", __doc__)
