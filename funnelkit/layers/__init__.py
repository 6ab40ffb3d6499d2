"""Funnel layers: the paper's Eq. 6 and its parts, and the layers derived from it (Sec. 3, A.2-A.7)."""

from .._compat import StandardNormal  # the base density N(0, I) (Eq. 1) and the simplest p_phi (Eq. 6, A.3)
from .base import FunnelLayer
from .context import join_context
from .conv_funnel_1d import ConvFunnel1d, ConvFunnel1dStrideOne, ConvFunnel1dStrideOneBound
from .conv_funnel_2d import ConvFunnel2d
from .decoders import GaussianDecoder, flow_decoder
from .funnel import Funnel
from .generative_funnel import GenerativeFunnel
from .mlp_funnel import MLPFunnel, MLPFunnelBound, QRLinear
from .slice import Slice
from .spline_activation import SplineActivation
from .splines import mixing_layer, rq_autoregressive, rq_autoregressive_stack
from .splitters import CoordinateSplitter
from .tile_decoder import TileGaussianDecoder

__all__ = [
    "ConvFunnel1d",
    "ConvFunnel1dStrideOne",
    "ConvFunnel1dStrideOneBound",
    "ConvFunnel2d",
    "CoordinateSplitter",
    "Funnel",
    "FunnelLayer",
    "GaussianDecoder",
    "GenerativeFunnel",
    "MLPFunnel",
    "MLPFunnelBound",
    "QRLinear",
    "Slice",
    "SplineActivation",
    "StandardNormal",
    "TileGaussianDecoder",
    "flow_decoder",
    "join_context",
    "mixing_layer",
    "rq_autoregressive",
    "rq_autoregressive_stack",
]
