"""D2L 8.3 Network in Network (NiN), block by block.

    python examples/nin.py

Prints each top-level block's output shape, as the book does, then mc.summary's table;
--train then trains it with the book's recipe (--epochs, --limit for a shorter run).
"""

from _network_example import main

if __name__ == "__main__":
    main("nin", __doc__)
