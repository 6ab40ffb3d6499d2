"""Data: four circles with its true density, other 2-D toys, and the MAF tabular sets."""

from .four_circles import four_circles, four_circles_log_prob, four_circles_log_prob_quadrature
from .cache import DatasetCorruptError, DatasetNotFoundError, cache_dir
from .tabular import TABULAR_DATASETS, tabular
from .toys import TOYS, checkerboard, eight_gaussians, toy, two_moons

__all__ = [
    "TABULAR_DATASETS",
    "TOYS",
    "DatasetCorruptError",
    "DatasetNotFoundError",
    "cache_dir",
    "checkerboard",
    "eight_gaussians",
    "four_circles",
    "four_circles_log_prob",
    "four_circles_log_prob_quadrature",
    "tabular",
    "toy",
    "two_moons",
]
