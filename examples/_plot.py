"""``--plot`` for the sections' examples: also save the section's figure (mc.viz)."""

import argparse


def main_with_plot(doc, main, draw, name):
    """Run ``main()``; with --plot, also ``draw(path=...)`` into NAME.png (or --out DIR)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--plot", action="store_true", help=f"also save the figure, {name}.png")
    parser.add_argument("--out", default=".", help="folder for the figure (default: here)")
    args = parser.parse_args()
    main()
    if args.plot:
        path = f"{args.out}/{name}.png"
        draw(path=path)
        print(f"wrote {path}")
