"""Funnel layers: the paper's Eq. 6 and its parts."""

from .context import join_context
from .decoders import GaussianDecoder, flow_decoder
from .funnel import Funnel
from .slice import Slice
from .splines import mixing_layer, rq_autoregressive, rq_autoregressive_stack
from .splitters import CoordinateSplitter

__all__ = [
    "CoordinateSplitter",
    "Funnel",
    "GaussianDecoder",
    "Slice",
    "flow_decoder",
    "join_context",
    "mixing_layer",
    "rq_autoregressive",
    "rq_autoregressive_stack",
]
