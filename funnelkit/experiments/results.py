"""Results files: ``RESULT.json`` and ``RESULT.md`` (a Markdown table, "paper | ours"), and pictures.

Every file is written atomically (:func:`funnelkit.files.write_atomically`): a reader never sees
half a table, and an interrupted run leaves the previous file in place.

Every result names the data it used. :func:`data_record` turns a loader's answer into
``{"name", "source", "stand_in"}``, and :func:`data_line` into the sentence the Markdown file
prints; a stand-in is labelled "STAND-IN", so a number on it is never read as the paper's.
"""

import io
import json
import math
import time
from pathlib import Path

import torch

from ..checkpoints import versions
from ..files import write_atomically
from ..paths import shown_in_text


# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------

def pm(mean, error=None, digits=2):
    """``"1.23 +- 0.04"`` (or just ``"1.23"``); ``"-"`` for a missing value."""
    if mean is None or (isinstance(mean, float) and not math.isfinite(mean)):
        return "-"
    if error is None:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} +- {error:.{digits}f}"


def count(n):
    """An integer with thousands separators, or ``"-"``."""
    return "-" if n is None else f"{int(n):,}"


def table(header, rows, align=None):
    """A Markdown table; ``align`` is a string of ``l``/``r`` per column (default: all left)."""
    align = align or "l" * len(header)
    if len(align) != len(header):
        raise ValueError(f"align needs one 'l' or 'r' per column ({len(header)}), got {align!r}")
    if any(len(row) != len(header) for row in rows):
        raise ValueError(f"every row needs {len(header)} cells, like the header {header!r}")
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Data labels
# --------------------------------------------------------------------------------------------

def data_record(name, source, stand_in, role=None):
    """What one result used as data: ``{"name", "source", "stand_in"[, "role"]}``."""
    record = {"name": name, "source": source, "stand_in": bool(stand_in)}
    if role:
        record["role"] = role
    return record


def data_line(record):
    """The Markdown bullet of a :func:`data_record`, with "STAND-IN" in front of stand-ins."""
    label = "**STAND-IN** (not the paper's data; numbers are not comparable with the paper's): " \
        if record["stand_in"] else ""
    role = f"{record['role']}: " if record.get("role") else ""
    return f"- {role}{label}{record['name']} -- {record['source']}"


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

def plain(value):
    """JSON-safe: tuples to lists, tensors and numpy arrays to lists, non-finite floats to None.

    What every JSON file the experiments write holds: results (:func:`write_result`) and run
    folders' ``metrics.json`` (:mod:`funnelkit.experiments.runs`, :mod:`funnelkit.experiments.shipped`).
    """
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, torch.Tensor):
        return plain(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    if callable(getattr(value, "tolist", None)):  # numpy scalars and arrays
        return plain(value.tolist())
    return value


def environment():
    """Where the numbers were made: the versions checkpoints record, the number of torch threads
    and the time."""
    return {**versions(), "torch_threads": torch.get_num_threads(), "written": time.strftime("%Y-%m-%d %H:%M:%S %z")}


def write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_atomically(path, lambda file: file.write(text.encode("utf-8")))


def write_result(out, name, result, markdown):
    """Write ``out/name.json`` (``result`` plus the environment) and ``out/name.md``; return the paths.

    Paths inside the kit's checkout are written relative to it.
    """
    out = Path(out)
    payload = {**plain(result), "environment": environment()}
    text = shown_in_text(json.dumps(payload, indent=2, allow_nan=False) + "\n")
    json_path = write_text(out / f"{name}.json", text)
    md_path = write_text(out / f"{name}.md", shown_in_text(markdown if markdown.endswith("\n") else markdown + "\n"))
    return json_path, md_path


def save_figure(figure, path, dpi=110):
    """Save a matplotlib figure as PNG atomically, then close it."""
    import matplotlib.pyplot as plt  # only to close the figure: writing results needs no plotting library

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    return write_atomically(path, lambda file: file.write(buffer.getvalue()))


def image_grid(images, nrow=8, padding=2):
    """uint8 images (N, C, H, W) tiled into one (C, H', W') uint8 picture, ``nrow`` per row."""
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(f"expected uint8 images of shape (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
    n, channels, height, width = images.shape
    columns = min(nrow, n)
    rows = math.ceil(n / columns)
    grid = torch.full((channels, rows * (height + padding) + padding, columns * (width + padding) + padding),
                      255, dtype=torch.uint8)
    for i in range(n):
        top = padding + (i // columns) * (height + padding)
        left = padding + (i % columns) * (width + padding)
        grid[:, top:top + height, left:left + width] = images[i]
    return grid


def save_image_grid(images, path, nrow=8):
    """Tile uint8 images (N, C, H, W) into a PNG at ``path`` (atomically); grey if C is 1."""
    from PIL import Image

    grid = image_grid(images.detach().cpu(), nrow)
    array = grid[0].numpy() if grid.shape[0] == 1 else grid.permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return write_atomically(path, lambda file: file.write(buffer.getvalue()))


__all__ = ["count", "data_line", "data_record", "environment", "image_grid", "plain", "pm", "save_figure",
           "save_image_grid", "table", "write_result", "write_text"]
