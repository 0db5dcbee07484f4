"""D2L 8.4 Multi-Branch Networks (GoogLeNet), stage by stage.

    python examples/googlenet.py

Prints each top-level block's output shape, as the book does, then mc.summary's table;
--train then trains it with the book's recipe (--epochs, --limit for a shorter run).
"""

from _network_example import main

if __name__ == "__main__":
    main("googlenet", __doc__)
