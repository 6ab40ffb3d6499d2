"""The tabular models of Table 1 (POWER, GAS, HEPMASS, MINIBOONE, BSDS300; A.6, Table 5).

All flows are coupling flows (Table 1's caption), built as in NSF's UCI experiments, which the
paper replicates:

* ``"nsf"``: ``flow_steps`` x [fixed random permutation, LU-linear (identity init), RQ coupling
  (alternating masks; conditioner a ResidualNet, ReLU, no batch norm; linear tails, tail bound
  3; the identity half warped by an unconditional RQ spline, as NSF's ``uci.py``)], then a final
  LU-linear; base N(0, I).
* ``"glow"``: the same with affine coupling layers.
* ``"f-nsf"`` / ``"f-glow"``: the same, but the coupling of step ``funnel_level`` (0-based) is a
  funnel (Eq. 6) dropping ``dim_reduction`` = k coordinates: x_- (the first k after the step's
  permutation and LU-linear, i.e. the coupling's conditioning features) is dropped, and
  F maps x_+ elementwise with an RQ spline (affine for f-glow) whose parameters come from a
  ResidualNet of x_- (:mod:`funnelkit.layers.conditional_elementwise`). The later steps act on
  D - k features. p_phi(x_- | z) is "the same type of flow as is used in the modelling, with half
  the number of flow steps and one third as many hidden features" (A.6): a conditional coupling
  flow on x_- with context z (for k = 1, conditional elementwise steps), except for BSDS300, where
  it is the Gaussian ansatz (MLP 3 x 128, ReLU). The authors' code crashes on its coupling
  funnels with the Gaussian decoder (reference note 6.2 item 1); this is what the text describes.
  Unlike the authors' coupling funnel, x_- is dropped as it is (no unconditional spline warps it
  first): p_phi is a flow and can absorb such a warp. To have fewer parameters than their
  baselines (A.6), the funnels' own residual nets are slightly narrower (``funnel_hidden_features``).
* ``"vae"``: the VAE of A.4 with Table 5's MLP width and depth and latent D - k; its
  ``log_prob`` is the single-sample ELBO, a bound (``exact`` is False).
* ``"f-mlp"``: the F-MLP of A.6 (:func:`funnelkit.models.f_mlp.tabular_f_mlp`), latent D - k.

The presets' configs (``TABULAR_CONFIGS[preset][dataset]``): ``"paper"`` holds Table 5 for each dataset; ``"quick"`` keeps the
structure (same dimension, reduction and decoder type) at a laptop-CPU size: 4 flow steps, 48
hidden features, one residual block, no dropout, funnel level min(level, 2), decoders of 2 steps
and 16 hidden features (Gaussian: 48 x 2), VAE 64 x 2, F-MLP's own quick preset; batch 128,
2,000 steps at learning rate 1e-3 (one CPU thread: about 10-20 ms a step for GLOW, 30-80 ms for
NSF and F-NSF).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
from nflows.flows.base import Flow
from nflows.nn.nets import ResidualNet
from nflows.transforms.base import CompositeTransform
from nflows.transforms.coupling import AffineCouplingTransform, PiecewiseRationalQuadraticCouplingTransform
from nflows.transforms.permutations import Permutation
from nflows.utils.torchutils import create_alternating_binary_mask
from torch.nn import functional as F

from .._compat import LULinear, StandardNormal
from ..layers.conditional_elementwise import ConditionalAffine, ConditionalRQSpline
from ..layers.decoders import GaussianDecoder
from ..layers.funnel import Funnel
from ..validation import check_choice, check_int, check_positive_int, lowercase
from .f_mlp import tabular_f_mlp
from .funnel_flow import FunnelFlow
from .vae import MLP, VAE, GaussianMLPDecoder

TABULAR_MODELS = ("glow", "f-glow", "nsf", "f-nsf", "vae", "f-mlp")
TABULAR_DATASETS = ("power", "gas", "hepmass", "miniboone", "bsds300")
FUNNEL_MODELS = ("f-glow", "f-nsf")
REDUCED_MODELS = ("f-glow", "f-nsf", "vae", "f-mlp")  # latent D - dim_reduction


@dataclass(frozen=True)
class TabularConfig:
    """Table 5 (A.6) for one dataset, plus the choices the paper leaves to NSF's code or to us."""

    dimension: int
    data_points: int  # training points (Table 5, for reference)
    batch_size: int
    steps: int  # training steps
    lr: float  # the flows' learning rate
    flow_steps: int
    residual_blocks: int
    hidden_features: int
    num_bins: int
    dropout: float
    dim_reduction: int
    funnel_level: int  # 0-based index of the flow step whose coupling is the funnel
    vae_width: int
    vae_depth: int
    vae_lr: float  # the VAE's learning rate: Table 5 (Table 6's scanned rates, 3e-4 to 5e-5, do not include them)
    tail_bound: float = 3.0
    unconditional_transform: bool = True  # NSF's uci.py: RQ couplings warp their identity half too
    decoder: str = "flow"  # p_phi: "flow" (UCI sets) or "gaussian" (BSDS300)
    decoder_flow_steps: int = 0  # 0: flow_steps // 2 (A.6)
    decoder_hidden_features: int = 0  # 0: hidden_features // 3 (A.6)
    funnel_hidden_features: int = 0  # 0: hidden_features; the funnels' own flow, tuned to have fewer parameters
    gaussian_hidden_features: int = 128  # A.6: "three layer with 128 nodes"
    gaussian_hidden_layers: int = 3
    grad_clip_norm: float = 5.0  # A.6: gradient norm clipped at 5
    seed: int = 0  # seeds the fixed random permutations, so a rebuilt model has the same ones

    @property
    def decoder_steps(self):
        return self.decoder_flow_steps or max(1, self.flow_steps // 2)

    @property
    def decoder_hidden(self):
        return self.decoder_hidden_features or max(1, self.hidden_features // 3)

    @property
    def funnel_hidden(self):
        return self.funnel_hidden_features or self.hidden_features


def _paper(dimension, data_points, batch, steps, lr, flow_steps, blocks, hidden, num_bins, dropout, reduction,
           level, vae_width, vae_depth, vae_lr, **extra):
    return TabularConfig(dimension, data_points, batch, steps, lr, flow_steps, blocks, hidden, num_bins, dropout,
                         reduction, level, vae_width, vae_depth, vae_lr, **extra)


# Table 5, column by column. A.6: funnel models "have less parameters than their non-funnel
# baselines", with "tuning to match the numbers of parameters"; the tuning is not given. With
# Table 5's sizes and the decoder A.6 describes, F-GLOW has more parameters than GLOW on POWER,
# GAS, HEPMASS and BSDS300 (F-NSF on POWER and GAS), so ``funnel_hidden_features`` (the width of
# the funnel models' own residual nets; p_phi keeps a third of ``hidden_features``) is the
# largest multiple of 4 for which both funnel models are smaller than their baselines.
_PAPER = {
    "power": _paper(6, 1_615_917, 512, 400_000, 5e-4, 10, 2, 256, 8, 0.0, 2, 2, 256, 2, 3e-3,
                    funnel_hidden_features=248),
    "gas": _paper(8, 852_174, 512, 400_000, 5e-4, 10, 2, 256, 8, 0.1, 2, 2, 64, 8, 5e-3,
                  funnel_hidden_features=248),
    "hepmass": _paper(21, 315_123, 256, 400_000, 5e-4, 20, 1, 128, 8, 0.2, 5, 0, 256, 2, 5e-3,
                      funnel_hidden_features=124),
    "miniboone": _paper(43, 29_556, 128, 200_000, 3e-4, 10, 1, 32, 4, 0.2, 10, 4, 512, 2, 1e-3),
    "bsds300": _paper(63, 1_000_000, 512, 400_000, 5e-4, 10, 1, 128, 8, 0.2, 15, 4, 512, 2, 3e-3,
                      decoder="gaussian", funnel_hidden_features=124),
}


def _quick(config):
    return replace(
        config, batch_size=128, steps=2000, lr=1e-3, flow_steps=4, residual_blocks=1,
        hidden_features=48, funnel_hidden_features=0, dropout=0.0, funnel_level=min(config.funnel_level, 2),
        vae_width=64, vae_depth=2,
        vae_lr=1e-3, gaussian_hidden_features=48, gaussian_hidden_layers=2,
    )


#: The :class:`TabularConfig` of each preset and dataset: ``TABULAR_CONFIGS[preset][dataset]``.
TABULAR_CONFIGS = {
    "paper": _PAPER,
    "quick": {name: _quick(config) for name, config in _PAPER.items()},
}


def tabular_config(dataset, preset="paper", **overrides):
    """The :class:`TabularConfig` of ``dataset`` in ``preset``, with any field overridden."""
    check_choice(dataset, TABULAR_DATASETS, "tabular dataset")
    check_choice(preset, tuple(TABULAR_CONFIGS), "preset")
    try:
        config = replace(TABULAR_CONFIGS[preset][dataset], **overrides)
    except TypeError as error:
        raise ValueError(f"unknown tabular model setting: {error}; expected fields of TabularConfig: "
                         f"{', '.join(asdict(TABULAR_CONFIGS[preset][dataset]))}") from None
    return _validate(config)


def _validate(config):
    """Return ``config`` with its counts as ints; raise ``ValueError`` naming a bad setting."""
    counts = {name: check_positive_int(getattr(config, name), name)
              for name in ("dimension", "flow_steps", "residual_blocks", "hidden_features", "num_bins", "dim_reduction",
                           "vae_width", "vae_depth", "gaussian_hidden_features", "gaussian_hidden_layers")}
    config = replace(config, **counts)
    if config.dim_reduction >= config.dimension:
        raise ValueError(f"dim_reduction must be in [1, dimension={config.dimension}), got {config.dim_reduction}")
    if not 0 <= config.funnel_level < config.flow_steps:
        raise ValueError(f"funnel_level must be in [0, flow_steps={config.flow_steps}), got {config.funnel_level}")
    config = replace(config, **{name: check_int(getattr(config, name), name, low=0,
                                                message="{name} must be an int >= 0 (0: the default rule)")
                                for name in ("decoder_flow_steps", "decoder_hidden_features",
                                             "funnel_hidden_features")})
    if not 0.0 <= config.dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {config.dropout!r}")
    check_choice(config.decoder, ("flow", "gaussian"), "decoder")
    return config


def latent_dim(name, config):
    """D for the dimension-preserving flows, D - dim_reduction for the others."""
    return config.dimension - config.dim_reduction if name in REDUCED_MODELS else config.dimension


# -- building blocks --------------------------------------------------------------------------------
def _linear(features, generator):
    """A fixed random permutation and an LU-linear layer (identity at initialisation)."""
    return [Permutation(torch.randperm(features, generator=generator)), LULinear(features, identity_init=True)]


def _conditioner(config, hidden, context_features):
    def create(in_features, out_features):
        return ResidualNet(in_features, out_features, hidden, context_features=context_features or None,
                           num_blocks=config.residual_blocks, activation=F.relu,
                           dropout_probability=config.dropout, use_batch_norm=False)
    return create


def _coupling(kind, features, step, config, hidden, context_features=0):
    mask = create_alternating_binary_mask(features, even=(step % 2 == 0))
    create = _conditioner(config, hidden, context_features)
    if kind == "rq":
        return PiecewiseRationalQuadraticCouplingTransform(
            mask, create, num_bins=config.num_bins, tails="linear", tail_bound=config.tail_bound,
            apply_unconditional_transform=config.unconditional_transform,
        )
    return AffineCouplingTransform(mask, create)


def _elementwise(kind, features, context_features, config, hidden):
    common = dict(hidden_features=hidden, num_blocks=config.residual_blocks, dropout_probability=config.dropout)
    if kind == "rq":
        return ConditionalRQSpline(features, context_features, num_bins=config.num_bins,
                                   tail_bound=config.tail_bound, **common)
    return ConditionalAffine(features, context_features, **common)


def _flow_step(kind, features, step, config, hidden, generator, context_features=0):
    """[permutation, LU-linear, coupling]; with a context and 1 feature, an elementwise step."""
    if features == 1 and context_features:
        return [LULinear(1, identity_init=True), _elementwise(kind, 1, context_features, config, hidden)]
    if features < 2:
        raise ValueError(f"a coupling layer needs at least 2 features, got {features}: "
                         "choose dimension - dim_reduction >= 2 or put the funnel at the last step")
    return [*_linear(features, generator), _coupling(kind, features, step, config, hidden, context_features)]


def _decoder(kind, config, generator):
    """p_phi(x_- | z) of A.6: a conditional coupling flow (half the steps, a third of the hidden
    features) or, for ``decoder="gaussian"``, a diagonal Gaussian from an MLP."""
    n_drop, n_keep = config.dim_reduction, config.dimension - config.dim_reduction
    if config.decoder == "gaussian":
        return GaussianDecoder(n_drop, n_keep, config.gaussian_hidden_features, config.gaussian_hidden_layers)
    layers = []
    for step in range(config.decoder_steps):
        layers += _flow_step(kind, n_drop, step, config, config.decoder_hidden, generator, context_features=n_keep)
    layers.append(LULinear(n_drop, identity_init=True))
    return Flow(CompositeTransform(layers), StandardNormal([n_drop]))


def _flow_layers(name, config):
    kind = "rq" if name.endswith("nsf") else "affine"
    generator = torch.Generator().manual_seed(config.seed)
    hidden = config.funnel_hidden if name in FUNNEL_MODELS else config.hidden_features
    features, layers = config.dimension, []
    for step in range(config.flow_steps):
        if name in FUNNEL_MODELS and step == config.funnel_level:
            k = config.dim_reduction
            layers += _linear(features, generator)
            layers.append(Funnel(
                features,
                bijection=_elementwise(kind, features - k, k, config, hidden),
                decoder=_decoder(kind, config, generator),
                dropped=tuple(range(k)),
            ))
            features -= k
        else:
            layers += _flow_step(kind, features, step, config, hidden, generator)
    layers.append(LULinear(features, identity_init=True))
    return layers


def _vae(config, record):
    data, latent = config.dimension, config.dimension - config.dim_reduction
    encoder = MLP(data, 2 * latent, config.vae_width, config.vae_depth)
    decoder = GaussianMLPDecoder(latent, data, config.vae_width, config.vae_depth, log_std="head")
    return VAE(encoder, decoder, data, latent, config=record)


def tabular_model(name: str, dataset: str, preset: str = "paper", **overrides) -> FunnelFlow | VAE:
    """Build model ``name`` (glow, f-glow, nsf, f-nsf, vae, f-mlp) for ``dataset`` (power, gas,
    hepmass, miniboone, bsds300). ``overrides`` set any :class:`TabularConfig` field, e.g.
    ``dimension=2, dim_reduction=1`` for a small custom model.

    Every model has ``log_prob``, ``sample(n, temperature=T)``, ``encode``, ``latent_dim``,
    ``data_dim``, ``exact`` and ``config`` (which :func:`funnelkit.models.build` rebuilds from).
    For ``"f-mlp"`` only ``dimension`` and ``dim_reduction`` matter; its own sizes are
    :mod:`funnelkit.models.f_mlp`'s preset of the same name.
    """
    name, dataset = lowercase(name), lowercase(dataset)
    check_choice(name, TABULAR_MODELS, "tabular model")
    config = tabular_config(dataset, preset, **overrides)
    record = {"builder": "tabular", "name": name, "dataset": dataset, "preset": preset,
              "overrides": dict(overrides)}
    if name == "vae":
        return _vae(config, record)
    if name == "f-mlp":
        model = tabular_f_mlp(config.dimension, latent_dim(name, config), preset=preset)
        model.config = record
        return model
    return FunnelFlow(_flow_layers(name, config), data_shape=config.dimension, config=record)


__all__ = ["FUNNEL_MODELS", "TABULAR_DATASETS", "TABULAR_MODELS", "TABULAR_CONFIGS", "TabularConfig",
           "latent_dim", "tabular_config", "tabular_model"]
