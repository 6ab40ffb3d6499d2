"""The teaching notebooks run, in quick mode, as a reader would run them.

Each notebook is executed with nbclient in a temporary copy (outputs are never written back) with
FUNNELKIT_QUICK=1 and MPLBACKEND=Agg (``tests/notebook_client.py``, which also says why its client
polls the shell channel in slices). The notebooks carry their own asserts (a density integrates
to 1, sampling then encoding gives z back, ...), so a wrong step fails here, not only a crash.
The fast tests check what a reader sees without running anything: the committed notebooks hold
their outputs, no stored error, and a ``parameters`` cell that reads FUNNELKIT_QUICK.
"""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
#: The teaching track (00-07), the appendix of checks, and the reproduction track (reproduce/).
NAMES = ["00_derivation_eq6.ipynb", "01_build_a_funnel.ipynb", "02_four_circles.ipynb", "03_layers.ipynb",
         "04_tabular.ipynb", "05_images.ipynb", "06_temperature_and_quality.ipynb", "07_anomaly_detection.ipynb",
         "appendix_checks.ipynb", "reproduce/fig2_table8.ipynb", "reproduce/table1.ipynb",
         "reproduce/table2_fig3.ipynb", "reproduce/table3_fig4.ipynb", "reproduce/table4.ipynb"]


def _read(name):
    return nbformat.read(NOTEBOOKS / name, as_version=4)


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_has_outputs_and_no_errors(name):
    notebook = _read(name)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, f"{name} has no code cells"
    unexecuted = [i for i, cell in enumerate(code) if cell.source.strip() and cell.execution_count is None]
    assert not unexecuted, f"{name}: code cells {unexecuted} were committed without running (execute it in quick mode)"
    errors = [output.get("ename") for cell in code for output in cell.outputs if output.output_type == "error"]
    assert not errors, f"{name} was committed with errors: {errors}"
    images = sum("image/png" in output.get("data", {}) for cell in code for output in cell.outputs)
    assert images >= 3, f"{name} should show its figures on GitHub, found {images} images"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_has_a_parameters_cell_reading_funnelkit_quick(name):
    notebook = _read(name)
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name} needs exactly one cell tagged 'parameters'"
    source = tagged[0].source
    for variable in ("QUICK", "SEED", "DEVICE", "FUNNELKIT_QUICK"):
        assert variable in source, f"{name}: the parameters cell should define or read {variable}"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_in_quick_mode(name, tmp_path):
    from .notebook_client import run_notebook

    try:
        notebook = run_notebook(NOTEBOOKS / name, tmp_path)
    except nbclient.exceptions.CellExecutionError as error:
        pytest.fail(f"{name} failed in quick mode:\n{error}")
    ran = [cell for cell in notebook.cells if cell.cell_type == "code" and cell.source.strip()]
    assert all(cell.execution_count is not None for cell in ran)
    errors = [output for cell in ran for output in cell.outputs if output.output_type == "error"]
    assert not errors
