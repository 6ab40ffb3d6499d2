"""One entry per paper result, each with a ``quick`` and a ``paper`` preset."""

from . import four_circles
from .fig2 import reproduce_fig2

RESULTS = {"fig2": reproduce_fig2}

__all__ = ["RESULTS", "four_circles", "reproduce_fig2"]
