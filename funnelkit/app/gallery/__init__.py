"""Image runs for the dashboard's Samples and Compare tabs (``app.py`` stays thin: everything it
shows about image models comes from here), one module per job:

* :mod:`.runs`: :func:`find_image_runs` lists the image runs in the shipped and your own run folders
  (``FUNNELKIT_APP_RUNS`` replaces that list) as a :class:`Gallery`; damaged runs are reported, not raised.
* :mod:`.sampling`: :func:`sample_grid` draws ``n`` seeded samples at a temperature (by default only
  the base noise is tempered, as the paper; ``temper`` "all" or "mean" for the decoders' noise too,
  or their means) as one uint8 picture; :func:`png_bytes` encodes it for a download.
* :mod:`.quality`: :func:`digit_quality`, the kit's digit metric (FID on a small MNIST classifier)
  of a model's samples at those settings, beside what real digits score.
* :mod:`.compare`: :func:`comparisons` puts the F-NSF, NSF and VAE of one data set, bit depth and
  latent size side by side; :func:`metrics_rows` is their metrics table.
* :mod:`.settings`: :class:`SampleSettings`, what the tabs show, as URL query values.
* :mod:`.names`: the model and data set names and orders the others share.
"""

from .compare import Comparison, comparisons, find_comparison, metrics_rows
from .names import DATASET_NAMES, MODEL_NAMES, MODEL_ORDER
from .quality import METRIC_SAMPLES, DigitQuality, digit_quality, measures_digits, not_measured_line, real_digit_fid
from .runs import MAKE_RUNS, RUNS_ENV, USER_RUNS, Gallery, ImageRun, find_image_runs, run_folders
from .sampling import (LIMITS, PRESET_TEMPERATURES, RANDOMNESS, TEMPER_LABELS, TEMPER_MODES, check_sample_request,
                       display_factor, file_name, model_bits, png_bytes, sample_grid, sample_images, upscale)
from .settings import SampleSettings

__all__ = ["Comparison", "DATASET_NAMES", "DigitQuality", "Gallery", "ImageRun", "LIMITS", "MAKE_RUNS", "METRIC_SAMPLES",
           "MODEL_NAMES", "MODEL_ORDER", "PRESET_TEMPERATURES", "RANDOMNESS", "RUNS_ENV", "SampleSettings",
           "TEMPER_LABELS", "TEMPER_MODES", "USER_RUNS", "check_sample_request", "comparisons", "digit_quality",
           "display_factor", "file_name", "find_comparison", "find_image_runs", "measures_digits", "metrics_rows",
           "model_bits", "not_measured_line", "png_bytes", "real_digit_fid", "run_folders", "sample_grid",
           "sample_images", "upscale"]
