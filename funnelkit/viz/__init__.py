"""Figures shared by the notebooks, the command line and the dashboard.

``figures``: matplotlib (static, for notebooks, files and the paper's figures);
``interactive``: plotly (for the dashboard). Both work on light and dark themes. Each is imported on
first use, so the dashboard never loads matplotlib for its plotly figures.
"""

import importlib

__all__ = ["figures", "interactive"]


def __getattr__(name):
    if name in __all__:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
