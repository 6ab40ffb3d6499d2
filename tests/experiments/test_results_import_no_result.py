"""Every paper result is a module over shared parts: no result module imports another result
(at the top or inside a function), and the names the others used to import from Table 2 and
Table 4 are the shared modules' own objects."""

import ast
from pathlib import Path

import pytest

from funnelkit.experiments import RESULTS, anomaly_runs, image_runs, table1, table2, table4, tabular_runs

EXPERIMENTS = Path(__file__).resolve().parents[2] / "funnelkit" / "experiments"
RESULT_MODULES = ("fig2", "fig4", "table1", "table2", "table3", "table4", "table8")


def _imported_modules(path):
    """The sibling modules of ``funnelkit.experiments`` that a file imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module} if node.module else {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("funnelkit.experiments."):
            found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[2] for a in node.names if a.name.startswith("funnelkit.experiments.")}
    return {name.split(".")[0] for name in found}


def test_every_result_has_a_module_here():
    assert {entry.__module__.rsplit(".", 1)[1] for entry in RESULTS.values()} == set(RESULT_MODULES)


@pytest.mark.parametrize("name", RESULT_MODULES)
def test_a_result_imports_no_other_result(name):
    others = set(RESULT_MODULES) - {name}
    assert _imported_modules(EXPERIMENTS / f"{name}.py") & others == set()


def test_the_command_line_runs_and_the_gallery_take_the_shared_parts_not_a_result():
    for path in (EXPERIMENTS / "commands.py", EXPERIMENTS.parent / "app" / "gallery" / "sampling.py"):
        assert {"table2", "table4"} & _imported_modules(path) == set(), path


@pytest.mark.parametrize("name", ["commands", "trainable", "four_circles_experiment", "tabular_runs",
                                  "image_experiments", "image_runs", "anomaly_runs"])
def test_the_experiments_of_the_command_line_import_no_result(name):
    assert _imported_modules(EXPERIMENTS / f"{name}.py") & set(RESULT_MODULES) == set()


def test_table1_hands_on_the_tabular_runs_objects_themselves():
    for name in ("PRESETS", "StandIn", "Table1Settings", "load_data", "CLASSROOM_STEPS", "CLASSROOM_GLOW_STEPS"):
        assert getattr(table1, name) is getattr(tabular_runs, name), name


def test_the_detector_sees_an_import_inside_a_function(tmp_path):
    path = tmp_path / "example.py"
    path.write_text("def f():\n    from .table2 import samples_uint8\n    from . import table4\n")
    assert _imported_modules(path) == {"table2", "table4"}


def test_table2_and_table4_hand_on_the_shared_objects_themselves():
    for name in ("PRESETS", "ImageSettings", "SPLIT_SEED", "choose_image_settings", "load_columns", "samples_uint8",
                 "steps_of", "train_image_models"):
        assert getattr(table2, name) is getattr(image_runs, name), name
    for name in ("PRESETS", "MODELS", "BITS", "Table4Settings", "load_data", "row_key", "score"):
        assert getattr(table4, name) is getattr(anomaly_runs, name), name
