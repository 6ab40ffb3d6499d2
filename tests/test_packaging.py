"""The project's set-up files stay in step, and the library stays free of the dashboard."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for name, extra in project["optional-dependencies"].items():
        requirements += [r for r in extra if not r.startswith("funnelkit")]
    return requirements


def test_environment_yml_lists_the_same_packages_as_pyproject():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert sorted(r for r in pip if r != "-e .") == sorted(_pyproject_requirements())
    python = next(d for d in environment["dependencies"] if isinstance(d, str) and d.startswith("python="))
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert required == ">=3.11" and python == "python=3.11"


def test_funnelkit_never_imports_streamlit_or_ipywidgets():
    code = "import sys, funnelkit, funnelkit.cli.main, funnelkit.experiments, funnelkit.viz.figures; " \
           "print(sorted(m for m in sys.modules if m.split('.')[0] in ('streamlit', 'ipywidgets')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    for path in (ROOT / "funnelkit").rglob("*.py"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            assert not stripped.startswith(("import streamlit", "from streamlit", "import ipywidgets", "from ipywidgets")), path


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / "README.md").read_text()
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("package", ["funnelkit", "funnelkit.models"])
def test_no_name_imported_on_use_is_also_a_submodule(package):
    """A package that imports its names on first use (PEP 562) breaks when one of them is also the name of a
    submodule: once that submodule is imported, the package's attribute is the module, not the name."""
    import importlib
    import pkgutil

    module = importlib.import_module(package)
    names = set(getattr(module, "_NAMES"))
    assert names & {m.name for m in pkgutil.iter_modules(module.__path__)} == set()
