"""The sizes of the paper's four-circles models (Fig. 2, A.5) and their presets, without torch: the
dashboard reads them before torch is loaded; :mod:`funnelkit.models.plane` builds the models.
"""

from dataclasses import dataclass

MODEL_NAMES = ("f-nsf", "nsf")


@dataclass(frozen=True)
class PlaneConfig:
    """Sizes of a plane model; the defaults are the paper's text (A.5)."""

    num_layers: int = 2  # spline layers of the NSF; in "f-nsf" the last one is the funnel's F
    hidden_features: int = 256
    num_bins: int = 50
    num_blocks: int = 2
    tail_bound: float = 4.0
    mixing: str = "reverse"
    activation: str = "relu"
    unused_context_features: int = 0  # the authors' code gives each base MADE an unused context
    mixing_before_funnel: bool = True  # the authors' code puts none between the last base layer and the funnel
    funnel_layers: int = 1  # spline layers inside the funnel's F
    funnel_tail_bound: float = 4.0
    decoder_layers: int = 2
    decoder_hidden_features: int = 64
    decoder_num_bins: int = 10


PRESETS = {
    "paper": PlaneConfig(),
    "authors-code": PlaneConfig(
        num_layers=3, hidden_features=64, num_bins=10, mixing="lu", activation="leaky_relu",
        unused_context_features=1, mixing_before_funnel=False, funnel_layers=2, funnel_tail_bound=1.0,
    ),
    "quick": PlaneConfig(hidden_features=64, num_bins=16, decoder_hidden_features=32, decoder_num_bins=8),
}
