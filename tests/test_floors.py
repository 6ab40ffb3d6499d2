"""The package's floors: an import only ever points down. The faces' support code
(``funnelkit/app/``, ``funnelkit/cli/``) may use the library; the library never imports them, and
neither face imports the other. ``layers/`` and ``models/`` import nothing from the floors above."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "funnelkit"
FACES = ("app", "cli")
ABOVE_MODELS = ("app", "cli", "experiments", "train", "runs", "distributed", "viz", "digits", "fidelity")


def funnelkit_imports(path, root=PACKAGE.parent):
    """The top-level parts of funnelkit (``app``, ``models``, ``runs``, ...) that ``path`` (a file under
    ``root``/funnelkit) imports anywhere in it."""
    package = path.relative_to(root).parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            targets = [(*base, *node.module.split("."))] if node.module else [(*base, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            targets = [tuple(node.module.split("."))]
        elif isinstance(node, ast.Import):
            targets = [tuple(a.name.split(".")) for a in node.names]
        else:
            continue
        found |= {t[1] for t in targets if len(t) > 1 and t[0] == "funnelkit"}
    return found


def library_files():
    """Every module but the faces' own (``__main__.py`` is ``python -m funnelkit``, the command line)."""
    return [p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] not in (*FACES, "__main__.py")]


@pytest.mark.parametrize("face", FACES)
def test_the_library_never_imports_a_face(face):
    offenders = [str(p.relative_to(PACKAGE)) for p in library_files() if face in funnelkit_imports(p)]
    assert offenders == []


def test_neither_face_imports_the_other():
    for face, other in (("app", "cli"), ("cli", "app")):
        offenders = [str(p.relative_to(PACKAGE)) for p in (PACKAGE / face).rglob("*.py") if other in funnelkit_imports(p)]
        assert offenders == [], face


@pytest.mark.parametrize("floor", ["layers", "models"])
def test_the_maths_floors_import_nothing_above_them(floor):
    offenders = {str(p.relative_to(PACKAGE)): funnelkit_imports(p) & set(ABOVE_MODELS)
                 for p in (PACKAGE / floor).rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_detector_resolves_relative_and_absolute_imports(tmp_path):
    path = tmp_path / "funnelkit" / "models" / "probe.py"
    path.parent.mkdir(parents=True)
    path.write_text("from ..app import live\nfrom .. import cli\nimport funnelkit.runs\nfrom . import base\n"
                    "def f():\n    from ..viz import figures\n")
    assert funnelkit_imports(path, root=tmp_path) == {"app", "cli", "runs", "viz", "models"}
