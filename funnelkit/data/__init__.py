"""Data: four circles with its true density, other 2-D toys, the MAF tabular sets, images and
their dequantisation."""

from .four_circles import four_circles, four_circles_log_prob, four_circles_log_prob_quadrature
from .cache import DatasetCorruptError, DatasetNotFoundError, cache_dir
from .dequantize import dequantize, preprocess, quantize, reduce_bits, to_uint8_images
from .images import IMAGE_DATASETS, ImageData, OfflineDataWarning, image_dataset
from .tabular import TABULAR_DATASETS, tabular
from .toys import TOYS, checkerboard, eight_gaussians, toy, two_moons

__all__ = [
    "IMAGE_DATASETS",
    "ImageData",
    "OfflineDataWarning",
    "dequantize",
    "image_dataset",
    "preprocess",
    "quantize",
    "reduce_bits",
    "to_uint8_images",
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
