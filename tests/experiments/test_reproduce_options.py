"""``funnelkit reproduce`` calls every result through one signature: the options each result is
declared to take (``OPTIONS``) are the ones its entry has, as a parameter or a settings field."""

import dataclasses
import inspect
import sys

import pytest

from funnelkit.experiments import OPTIONS, RESULTS, RUN_GROUPS
from funnelkit.experiments.commands import reproduce_options

ALL = ("root", "runs", "inception_weights", "steps", "download")


def _entry_takes(entry, option):
    """The oracle: what the entry's signature (and, behind ``**overrides``, its settings) takes."""
    parameters = inspect.signature(entry).parameters
    if option in parameters:
        return True
    presets = getattr(sys.modules[entry.__module__], "PRESETS", None)
    if isinstance(presets, dict) and any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return option in {f.name for f in dataclasses.fields(next(iter(presets.values())))}
    return False


@pytest.mark.parametrize("result", list(RESULTS))
def test_the_declared_options_are_the_ones_the_entry_takes(result):
    assert set(OPTIONS[result]) == {o for o in ALL if _entry_takes(RESULTS[result], o)}
    assert set(OPTIONS[result]) <= set(ALL)


def test_folders_go_only_where_used_and_other_options_are_refused_by_name():
    assert reproduce_options("fig2", root="data", runs="runs") == {}
    assert reproduce_options("table1", root="data", runs="r", steps=3) == {"root": "data", "runs": "r", "steps": 3}
    with pytest.raises(ValueError, match="table8 takes no --inception-weights"):
        reproduce_options("table8", inception_weights="w.pth")
    with pytest.raises(ValueError, match="table2 takes no --inception-weights"):
        reproduce_options("table2", inception_weights="w.pth")


def test_every_result_with_runs_is_a_result():
    assert set(RUN_GROUPS) <= set(RESULTS) and set(RESULTS) - set(RUN_GROUPS) == {"fig2", "table8"}
