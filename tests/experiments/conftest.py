"""Shared by the results tests: an empty cache (so only the kit's offline data is found) and
the offline-data warnings silenced (each test checks the data labels itself)."""

import warnings

import pytest

from funnelkit.data.images import OfflineDataWarning


@pytest.fixture(autouse=True)
def _empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FUNNELKIT_CACHE", str(tmp_path / "cache"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OfflineDataWarning)
        yield


def files_in(folder):
    """Every file below ``folder``, as relative path strings (empty if it does not exist)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []
