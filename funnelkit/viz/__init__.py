"""Figures shared by the notebooks, the command line and the dashboard.

``figures``: matplotlib (static, for notebooks, files and the paper's figures);
``interactive``: plotly (for notebooks and the dashboard's Latents and Watch it move tabs);
``canvas_plots``: the dashboard's three live plots of a 2-D run, as data that ``canvas_plots.js`` draws
in the browser, updated in place; ``plot_values``: the numbers both plotly and canvas plots show. All work on
light and dark themes. Each is imported on first use, so the dashboard never loads matplotlib for its plotly
figures, and its first page loads no plotting library at all.
"""

import importlib

__all__ = ["figures", "interactive"]


def __getattr__(name):
    if name in __all__:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
