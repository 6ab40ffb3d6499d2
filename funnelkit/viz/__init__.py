"""Figures shared by the notebooks, the command line and the dashboard.

``figures``: matplotlib (static, for notebooks, files and the paper's figures);
``interactive``: plotly (for the dashboard). Both work on light and dark themes.
"""

from . import figures

__all__ = ["figures"]
