"""Data: four circles with its true density, and other 2-D toys."""

from .four_circles import four_circles, four_circles_log_prob, four_circles_log_prob_quadrature
from .toys import TOYS, checkerboard, eight_gaussians, toy, two_moons

__all__ = [
    "TOYS",
    "checkerboard",
    "eight_gaussians",
    "four_circles",
    "four_circles_log_prob",
    "four_circles_log_prob_quadrature",
    "toy",
    "two_moons",
]
