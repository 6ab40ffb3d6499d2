"""The 2-D models of the paper's four-circles experiment (Fig. 2, A.5).

* ``"f-nsf"``: a neural spline flow whose last layer is a funnel from 2-D to 1-D. The funnel
  drops x_1 (the paper's x_{1:m-1}), maps x_2 to z with an autoregressive RQ spline
  conditioned on x_1, and models p_phi(x_1 | z) with a conditional NSF.
* ``"nsf"``: the dimension-preserving baseline, 2-D to 2-D.

Presets (``PRESETS``):

* ``"paper"`` follows the text of A.5: two autoregressive RQ layers, 50 bins, tail bound 4,
  two residual blocks of 256 units; p_phi an NSF with 64 units and 10 bins.
* ``"authors-code"`` follows ``experiments/plane_data_generation.py`` of the authors' code,
  which differs from the text: 64 units and 10 bins everywhere, LU-linear layers between the
  spline layers, leaky ReLU, an unused context input in every base layer, three base layers in
  the NSF, and a funnel whose own spline has tail bound 1 and two layers. It reproduces the
  parameter counts of that code (NSF 62,970; F-NSF 118,130).
* ``"quick"``: small enough to train on a laptop CPU in about a minute.
"""

from __future__ import annotations

from dataclasses import replace

from ..layers import Funnel, flow_decoder, mixing_layer, rq_autoregressive_stack
from ..validation import check_choice, lowercase
from .funnel_flow import FunnelFlow
from .plane_sizes import MODEL_NAMES, PRESETS, PlaneConfig



def plane_config(name, preset="paper", **overrides):
    """The :class:`PlaneConfig` of a preset, with any field overridden."""
    name = lowercase(name)
    check_choice(name, MODEL_NAMES, "plane model")
    check_choice(preset, tuple(PRESETS), "preset")
    config = PRESETS[preset]
    if name == "f-nsf" and preset == "authors-code":
        config = replace(config, num_layers=3)  # two base layers, then the funnel (see module doc)
    try:
        return replace(config, **overrides)
    except TypeError as error:
        raise ValueError(f"unknown plane model setting: {error}") from None


def plane_model(name: str, preset: str = "paper", **overrides) -> FunnelFlow:
    """Build ``"f-nsf"`` (2-D -> 1-D) or ``"nsf"`` (2-D -> 2-D) for four circles and other toys."""
    name = lowercase(name)
    config = plane_config(name, preset, **overrides)
    spline = dict(
        hidden_features=config.hidden_features, num_bins=config.num_bins,
        num_blocks=config.num_blocks, activation=config.activation,
    )
    base_layers = config.num_layers - 1 if name == "f-nsf" else config.num_layers
    layers = list(
        rq_autoregressive_stack(
            2, base_layers, context_features=config.unused_context_features,
            mixing=config.mixing, tail_bound=config.tail_bound, **spline,
        )._transforms
    )
    if name == "f-nsf":
        if config.mixing_before_funnel:
            layers.append(mixing_layer(2, config.mixing))
        layers.append(
            Funnel(
                features=2,
                bijection=rq_autoregressive_stack(
                    1, config.funnel_layers, context_features=1, mixing=config.mixing,
                    tail_bound=config.funnel_tail_bound, **spline,
                ),
                decoder=flow_decoder(
                    1, context_features=1, num_layers=config.decoder_layers,
                    hidden_features=config.decoder_hidden_features, num_bins=config.decoder_num_bins,
                    num_blocks=config.num_blocks, tail_bound=config.tail_bound,
                    activation=config.activation, mixing=config.mixing,
                ),
                dropped=(0,),
            )
        )
    record = {"builder": "plane", "name": name, "preset": preset, "overrides": dict(overrides)}
    return FunnelFlow(layers, data_shape=2, config=record)

