"""docs/equations.md, the index from each equation of the paper to its code, test and notebook: every
name in it exists, and every public class of funnelkit.layers and funnelkit.models cites the paper."""

import ast
import importlib
import inspect
import json
import pkgutil
import re
from pathlib import Path

import pytest

import funnelkit.layers
import funnelkit.models

ROOT = Path(__file__).resolve().parents[1]
INDEX = ROOT / "docs" / "equations.md"
COLUMNS = ["Eq.", "where", "what", "symbol", "test", "notebook", "erratum"]
CITATION = re.compile(r"\bEqs?\. ?\(?\d|\bSec\. ?\d|\bSection \d|\bA\.\d")


def cells(line):
    """The cells of one markdown table row; ``\\|`` is a literal bar inside a cell."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def read_rows():
    lines = [line for line in INDEX.read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    assert cells(lines[0]) == COLUMNS, f"docs/equations.md: the table's columns must be {COLUMNS}"
    rows = [dict(zip(COLUMNS, cells(line))) for line in lines[2:]]
    assert all(len(row) == len(COLUMNS) for row in rows)
    return rows


ROWS = read_rows()


def entries(cell):
    """The items of a cell, separated by <br>; each starts with a backquoted name ("—": none)."""
    return [] if cell == "—" else [item.strip() for item in cell.split("<br>")]


def quoted(item):
    found = re.match(r"`([^`]+)`", item)
    assert found, f"expected a `backquoted` name at the start of {item!r}"
    return found.group(1), item[found.end():].strip()


def resolve(dotted):
    """Import the longest module prefix of ``dotted``, then follow attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            target = getattr(target, name)
        return target
    raise ModuleNotFoundError(dotted)


def test_one_row_per_equation_of_the_paper_in_order():
    assert [row["Eq."] for row in ROWS] == [str(n) for n in range(1, 22)]
    paper_sections = {"Sec. 1", "Sec. 2", "Sec. 3", "A.2", "A.3", "A.4", "A.7.1"}
    assert {row["where"] for row in ROWS} <= paper_sections
    assert all(row["test"] != "—" and row["what"] for row in ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[f"Eq{row['Eq.']}" for row in ROWS])
def test_every_symbol_imports(row):
    symbols = entries(row["symbol"])
    assert symbols or row["Eq."] in {"4", "5"}, "only the delta identities (Eqs. 4-5) have no code"
    for item in symbols:
        name, _ = quoted(item)
        assert name.startswith("funnelkit."), name
        assert resolve(name) is not None


@pytest.mark.parametrize("row", ROWS, ids=[f"Eq{row['Eq.']}" for row in ROWS])
def test_every_test_named_exists(row):
    for item in entries(row["test"]):
        reference, _ = quoted(item)
        path, _, function = reference.partition("::")
        file = ROOT / path
        assert path.startswith("tests/") and file.is_file(), f"Eq. {row['Eq.']}: no test file {path}"
        tree = ast.parse(file.read_text(encoding="utf-8"))
        defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert function in defined, f"Eq. {row['Eq.']}: {path} defines no test {function}"
        assert function.startswith("test_")


def notebook_headings(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    return {line.lstrip("#").strip() for cell in notebook["cells"] if cell["cell_type"] == "markdown"
            for line in "".join(cell["source"]).splitlines() if line.startswith("#")}


@pytest.mark.parametrize("row", ROWS, ids=[f"Eq{row['Eq.']}" for row in ROWS])
def test_every_notebook_section_named_exists(row):
    for item in entries(row["notebook"]):
        path, rest = quoted(item)
        assert rest.startswith("§ "), f"Eq. {row['Eq.']}: write the section as `notebook.ipynb` § heading"
        heading = rest[2:].strip()
        file = ROOT / path
        assert path.startswith("notebooks/") and file.is_file(), f"Eq. {row['Eq.']}: no notebook {path}"
        assert heading in notebook_headings(file), f"Eq. {row['Eq.']}: {path} has no section {heading!r}"


def test_the_printed_errors_are_the_ones_errata_md_lists():
    errata = (ROOT / "docs" / "errata.md").read_text(encoding="utf-8")
    marked = [row["Eq."] for row in ROWS if row["erratum"].startswith("**Erratum**")]
    assert marked == ["7", "16", "20"]
    for number in marked:
        assert f"Eq. {number}" in errata, f"docs/errata.md does not mention Eq. {number}"


def public_classes(package):
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and obj.__module__ == module.__name__ and not name.startswith("_"):
                yield f"{module.__name__}.{name}", obj


CLASSES = [*public_classes(funnelkit.layers), *public_classes(funnelkit.models)]


def test_every_public_layer_and_model_class_cites_the_paper():
    assert len(CLASSES) > 30 and "funnelkit.layers.base.FunnelLayer" in dict(CLASSES)
    silent = [name for name, cls in CLASSES if not CITATION.search(cls.__dict__.get("__doc__") or "")]
    assert not silent, f"class docstrings that name no equation or section of the paper: {silent}"


def test_the_readme_points_to_the_index_on_its_first_screen():
    first_screen = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:25]
    assert any("docs/equations.md" in line for line in first_screen)
