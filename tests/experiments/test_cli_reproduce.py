"""``funnelkit reproduce``: every result listed in its help, a run that prints the table it writes,
options a result does not take refused by name (folders, --root and --runs, only passed to the
results that use them), missing data reported without a traceback."""

import json

import pytest

from funnelkit.cli.main import main
from funnelkit.experiments import DESCRIPTIONS, RESULTS
from funnelkit.experiments.shipped import SHIPPED_RUNS

from .conftest import files_in


def test_help_lists_every_result(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["reproduce", "--help"])
    assert exit.value.code == 0
    text = capsys.readouterr().out
    assert list(DESCRIPTIONS) == list(RESULTS)
    for name in ("fig2", "table1", "table2", "fig3", "table3", "fig4", "table4", "table8"):
        assert f"  {name} " in text
    assert "--inception-weights" in text and "--root" in text and "--runs" in text


def test_reproduce_writes_the_files_and_prints_the_table(tmp_path, capsys):
    assert main(["reproduce", "table8", "--preset", "paper", "--out", str(tmp_path), "--runs", str(tmp_path / "runs"),
                 "--root", str(tmp_path / "data")]) == 0
    printed = capsys.readouterr().out
    assert files_in(tmp_path) == ["table8.json", "table8.md"]
    assert (tmp_path / "table8.md").read_text() in printed and "7,286,164" in printed


@pytest.mark.parametrize("args, message", [
    (["fig2", "--download"], "fig2 takes no --download"),
    (["table8", "--steps", "5"], "table8 takes no --steps"),
    (["table8", "--inception-weights", "w.pth"], "table8 takes no --inception-weights"),
    (["table4", "--preset", "huge"], "unknown preset 'huge'"),
    (["table4", "--steps", "0"], "--steps must be at least 1"),
    (["table9"], "unknown result 'table9'"),
])
def test_bad_options_fail_clearly_and_write_nothing(tmp_path, capsys, args, message):
    assert main(["reproduce", *args, "--out", str(tmp_path / "out"), "--runs", str(tmp_path / "runs")]) == 2
    assert message in capsys.readouterr().err
    assert files_in(tmp_path) == []


def test_missing_data_is_reported_with_the_file_and_nothing_is_written(tmp_path, capsys):
    code = main(["reproduce", "table1", "--preset", "paper", "--root", str(tmp_path / "maf"),
                 "--out", str(tmp_path / "out"), "--runs", str(tmp_path / "runs")])
    error = capsys.readouterr().err
    assert code == 2 and "power/data.npy" in error and "Traceback" not in error
    assert files_in(tmp_path) == []


def test_reproduce_shipped_loads_the_shipped_runs_instead_of_training(tmp_path, capsys):
    args = ["reproduce", "table4", "--out", str(tmp_path / "out"), "--runs", str(tmp_path / "runs"), "--shipped"]
    assert main(args) == 0
    shipped = len(list(SHIPPED_RUNS.glob("*/*/checkpoint.pt")))
    assert f"copied {shipped} shipped run(s)" in capsys.readouterr().out
    stored = json.loads((tmp_path / "out" / "table4.json").read_text())
    assert len(stored["ours"]) == 7 and {row["status"] for row in stored["ours"].values()} == {"loaded"}
    # the shipped runs are the quick preset's: other presets or step counts are refused, nothing written
    for extra in (["--preset", "paper"], ["--steps", "5"]):
        assert main(["reproduce", "table2", "--out", str(tmp_path / "o2"), "--runs", str(tmp_path / "r2"), "--shipped",
                     *extra]) == 2
        assert "--shipped" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists() and not (tmp_path / "r2").exists()
