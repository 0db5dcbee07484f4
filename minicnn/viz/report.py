"""One report page per run: ``runs/MODEL/report.html``, a single self-contained file.

It shows the recipe and the machine, the final line in the book's format, the training
curves, the predictions, the confusion matrix, the first layer's filters, one image's
feature maps and the per-layer summary table. The pictures are embedded (base64 PNG),
so the page can be mailed or archived on its own. ``minicnn train`` writes it at the
end of a run; ``minicnn report RUN_DIR`` rebuilds it from the run's files.
"""

from __future__ import annotations

import base64
import html
import json
import os
import platform
from pathlib import Path

from ._figure import write_atomically

#: The pictures of a run, in the page's order: file name -> heading.
PICTURES = {
    "curves.png": "Training curves",
    "predictions.png": "Predictions (the book's predict_ch3)",
    "confusion.png": "Confusion matrix",
    "filters.png": "First-layer filters",
    "featuremaps.png": "Feature maps of test image 0",
}


def read_metrics(run_dir) -> list[dict]:
    """The run's epochs (metrics.jsonl), or an error saying what is missing."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(
            f"{run_dir}: no metrics.jsonl, so no finished epoch to report; "
            "train first (minicnn train MODEL --out RUN_DIR)"
        )
    epochs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not epochs:
        raise ValueError(f"{path}: no epoch recorded yet")
    return epochs


def read_run(run_dir) -> dict:
    """run.json: the model, recipe and machine the run was made with ({} if absent)."""
    path = Path(run_dir) / "run.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def machine() -> dict:
    """Where a run ran: CPU, cores, Python and the libraries that computed it."""
    import numpy

    from .. import __version__
    from ..backend import current_backend
    from ..threads import get_num_threads

    backend = current_backend()
    facts = {
        "cpu": _cpu_model(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "minicnn": __version__,
        "numpy": numpy.__version__,
        "backend": backend.name,
        "device": backend.device,
        "threads": get_num_threads(),
    }
    try:
        import numba

        facts["numba"] = numba.__version__
    except ImportError:
        pass
    return facts


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write_run_pictures(run_dir, net, test_iter, test_predictions=None) -> None:
    """Draw the pictures of a trained network into ``run_dir``: predictions, confusion
    matrix, first-layer filters, and the feature maps of test image 0 (at most six
    convolution layers, spread from the first to the last). The confusion matrix counts
    ``test_predictions`` (``History.test_predictions``) when given, else a pass over
    ``test_iter``."""
    from .inside import conv_layers, feature_maps, filters
    from .predictions import confusion, confusion_counts, confusion_matrix, predictions

    run_dir = Path(run_dir)
    image, _ = test_iter.example(0)
    predictions(net, test_iter, path=run_dir / "predictions.png")
    if test_predictions:
        counts = confusion_counts(test_predictions)
    else:
        counts = confusion_matrix(net, test_iter)
    confusion(counts, path=run_dir / "confusion.png")
    filters(net, path=run_dir / "filters.png")
    feature_maps(net, image, layers=_spread(conv_layers(net), 6), path=run_dir / "featuremaps.png")


def _spread(names: list, most: int) -> list:
    """At most ``most`` of ``names``, evenly spread from the first to the last."""
    if len(names) <= most:
        return names
    return [names[round(k * (len(names) - 1) / (most - 1))] for k in range(most)]


def final_line(epochs: list[dict], backend: str = "", device: str = "cpu") -> str:
    """The book's two closing lines, from the run's metrics."""
    last = epochs[-1]
    examples = sum(e["examples"] for e in epochs)
    seconds = sum(e["seconds"] for e in epochs)
    where = f"{device} ({backend})" if backend else device
    return (
        f"loss {last['train_loss']:.3f}, train acc {last['train_acc']:.3f}, "
        f"test acc {last['test_acc']:.3f}\n{examples / seconds:.1f} examples/sec on {where}"
    )


def write_report(run_dir, net=None, test_iter=None, test_predictions=None) -> Path:
    """Write ``run_dir/report.html``. Given the trained ``net`` and the ``test_iter`` it
    was evaluated on (and that evaluation's ``test_predictions``, if kept), the pictures
    are drawn first; otherwise the run's own are used."""
    run_dir = Path(run_dir)
    epochs = read_metrics(run_dir)
    run = read_run(run_dir)
    if net is not None and test_iter is not None:
        write_run_pictures(run_dir, net, test_iter, test_predictions)
    table = _summary_table(net, run) if net is not None else ""
    page = _page(run_dir, run, epochs, table)
    path = run_dir / "report.html"
    write_atomically(path, lambda file: file.write(page.encode()))
    return path


def _summary_table(net, run) -> str:
    from ..summary import summary

    size = run.get("recipe", {}).get("resize") or getattr(net, "resolution", 28)
    result = summary(net, (1, getattr(net, "in_channels", 1), size, size))
    header = ("layer", "type", "output shape", "algorithm", "receptive field", "params", "FLOPs")
    rows = [(r.path, r.type, str(r.output_shape), r.algorithm, r.receptive_field,
             f"{r.params:,}", f"{r.flops:,}") for r in result.rows]  # fmt: skip
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                     for row in rows)  # fmt: skip
    return (f'<table id="summary"><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>'
            f"<p>{result.total_params:,} parameters, {result.total_flops / 1e6:,.2f} MFLOPs "
            f"per image</p>")  # fmt: skip


def _page(run_dir: Path, run: dict, epochs: list[dict], table: str) -> str:
    facts = run.get("machine", {})
    title = f"minicnn: {run.get('model', run_dir.name)}"
    recipe = run.get("recipe", {})
    recipe_rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                          for k, v in {**recipe, **facts}.items())  # fmt: skip
    closing = final_line(epochs, facts.get("backend", ""), facts.get("device", "cpu"))
    figures = []
    for name, heading in PICTURES.items():
        picture = run_dir / name
        if picture.is_file():
            data = base64.b64encode(picture.read_bytes()).decode()
            figures.append(f'<h2>{html.escape(heading)}</h2>\n'
                           f'<img alt="{html.escape(heading)}" src="data:image/png;base64,{data}">')  # fmt: skip
    epochs_rows = "".join(
        f"<tr><td>{e['epoch']}</td><td>{e['train_loss']:.3f}</td><td>{e['train_acc']:.3f}</td>"
        f"<td>{e['test_acc']:.3f}</td><td>{e['examples_per_sec']:.1f}</td></tr>" for e in epochs
    )
    summary = f"<h2>The network, layer by layer</h2>\n{table}" if table else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: Helvetica, Arial, sans-serif; max-width: 980px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0; font-size: 13px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; }}
pre {{ background: #f4f4f4; padding: 0.8em; }}
img {{ max-width: 100%; }}
</style></head>
<body>
<h1>{html.escape(title)}</h1>
<h2>The book's closing lines</h2>
<pre id="final">{html.escape(closing)}</pre>
<h2>Recipe and machine</h2>
<table id="recipe">{recipe_rows}</table>
<h2>Epochs</h2>
<table id="epochs"><tr><th>epoch</th><th>train loss</th><th>train acc</th><th>test acc</th><th>examples/s</th></tr>{epochs_rows}</table>
{chr(10).join(figures)}
{summary}
</body></html>
"""
