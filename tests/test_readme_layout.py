"""The README's "What each folder holds" table names every top-level module and folder of
``funnelkit/``, and every ``funnelkit/`` path it names exists."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "funnelkit"


def _layout_rows():
    text = (ROOT / "README.md").read_text()
    section = text.split("## What each folder holds", 1)[1].split("\n## ", 1)[0]
    return [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]


def _named(rows):
    """``funnelkit/x.py``, ``funnelkit/x/`` and bare ``y.py`` after a ``funnelkit/`` path in a row."""
    names = set()
    for row in rows:
        if "funnelkit/" not in row:
            continue
        for word in re.findall(r"`([^`]+)`", row):
            names.add(word.removeprefix("funnelkit/").rstrip("/"))
    return names


def test_the_layout_table_names_every_top_level_module_and_folder():
    here = {p.name for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir()
                                                    if p.is_dir() and (p / "__init__.py").is_file()}
    assert here - _named(_layout_rows()) == set()


def test_every_funnelkit_path_the_layout_table_names_exists():
    for row in _layout_rows():
        for path in re.findall(r"`(funnelkit/[^`]+)`", row):
            assert (ROOT / path).exists(), path
